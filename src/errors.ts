/**
 * The single error catalogue of ec-server.
 *
 * Every error the server can report has a stable code here. Codes are part of the public
 * surface: they appear in logs and metrics, and request errors map to one SIP status each.
 * The reason phrase sent on the wire is built from the catalogue entry plus details that name
 * the actual problem (e.g. "Bad Content-Length: 500 exceeds the 20-byte body").
 */

export const SIP_ERRORS = {
  // 400 Bad Request: the request cannot be understood or its body is not a valid batch.
  EC_SIP_BAD_REQUEST_LINE: { status: 400, reason: 'Bad Request-Line' },
  EC_SIP_BAD_HEADER: { status: 400, reason: 'Bad header' },
  EC_SIP_MISSING_HEADER: { status: 400, reason: 'Missing header' },
  EC_SIP_BAD_CONTENT_LENGTH: { status: 400, reason: 'Bad Content-Length' },
  EC_SIP_CSEQ_MISMATCH: { status: 400, reason: 'CSeq method does not match request method' },
  EC_BODY_EMPTY: { status: 400, reason: 'Empty body' },
  EC_BODY_BAD_FORMAT: { status: 400, reason: 'Bad batch body' },
  EC_BODY_BAD_DEVICE: { status: 400, reason: 'Bad device id' },
  EC_BODY_BAD_TIMESTAMP: { status: 400, reason: 'Bad timestamp' },
  EC_BODY_BAD_RECORD: { status: 400, reason: 'Bad record' },
  EC_INTEGRITY_BAD_HEADER: { status: 400, reason: 'Bad integrity header' },
  EC_INTEGRITY_COUNT_MISMATCH: { status: 400, reason: 'X-EC-Count mismatch' },
  EC_INTEGRITY_CHECKSUM_MISMATCH: { status: 400, reason: 'X-EC-Checksum mismatch' },
  // 405 / 501: the method is known but not served here / not known at all (RFC 3261 21.4.6, 21.5.2).
  EC_SIP_METHOD_NOT_ALLOWED: { status: 405, reason: 'Method Not Allowed' },
  EC_SIP_METHOD_UNKNOWN: { status: 501, reason: 'Not Implemented' },
  // 413 / 513: body larger than configured, or the whole message (headers) too large to process.
  EC_SIP_BODY_TOO_LARGE: { status: 413, reason: 'Request Entity Too Large' },
  EC_SIP_MESSAGE_TOO_LARGE: { status: 513, reason: 'Message Too Large' },
  // 415: only text/plain batches are understood; the response carries Accept.
  EC_SIP_UNSUPPORTED_MEDIA: { status: 415, reason: 'Unsupported Media Type' },
  EC_SIP_UNSUPPORTED_URI: { status: 416, reason: 'Unsupported URI Scheme' },
  EC_SIP_BAD_EXTENSION: { status: 420, reason: 'Bad Extension' },
  EC_SIP_VERSION: { status: 505, reason: 'Version Not Supported' },
  // 500: a bug met while handling one batch; only that batch is refused (and logged).
  EC_BATCH_INTERNAL: { status: 500, reason: 'Server Internal Error' },
  // 503: the store could not take the batch (down, slow, overloaded); the response carries Retry-After.
  EC_STORE_UNAVAILABLE: { status: 503, reason: 'Store unavailable' },
  EC_SERVER_OVERLOADED: { status: 503, reason: 'Server overloaded' },
  EC_SERVER_STOPPING: { status: 503, reason: 'Server shutting down' },
} as const;

export type SipErrorCode = keyof typeof SIP_ERRORS;

/** A received batch that was not stored: its index in the group, and the error that answers it (a 400). */
export type Rejection = [index: number, code: SipErrorCode, detail: string | undefined];

/** A device's X-EC-Seq skipped ahead: [device, seq received, seq expected]. Logged; sync repairs the gap. */
export type SequenceGap = [device: string, seq: number, expected: number];

/** What writing a group of received batches did, besides storing every batch not rejected. */
export interface ReceivedReport {
  rejected: Rejection[];
  gaps: SequenceGap[];
}

/** Base of every error ec-server raises on purpose. */
export class EcError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A request that must be answered with a SIP error response. `detail` names the problem and
 * becomes part of the reason phrase.
 */
export class SipRequestError extends EcError {
  declare readonly code: SipErrorCode;
  readonly status: number;
  readonly reason: string;
  constructor(
    code: SipErrorCode,
    readonly detail?: string,
    /** Extra response headers, e.g. Accept for 415 or Allow for 405. */
    readonly headers: Record<string, string> = {},
  ) {
    const entry = SIP_ERRORS[code];
    const reason = detail ? `${entry.reason}: ${detail}` : entry.reason;
    super(code, reason);
    this.status = entry.status;
    this.reason = sanitizeReason(reason);
  }
}

/**
 * A datagram or stream segment that is not a request we can answer (no usable Via, a stray
 * response, garbage). RFC 3261 18.3 / 16.3: such messages are discarded silently.
 */
export class SipDiscard extends EcError {
  constructor(detail: string) {
    super('EC_SIP_DISCARDED', detail);
  }
}

/** Configuration problems: the server refuses to start (exit code 2). */
export class ConfigError extends EcError {
  constructor(
    /** Where the bad value came from, e.g. "config file /etc/ec/config.properties". */
    readonly origin: string | undefined,
    readonly key: string | undefined,
    problem: string,
  ) {
    const where = [origin, key ? `key ${key}` : undefined].filter(Boolean).join(', ');
    super('EC_CONFIG_INVALID', where ? `${where}: ${problem}` : problem);
  }
}

/**
 * The store could not durably take or return data (connection lost, timeout, disk full...).
 * `report`: for a failed write of received batches, what was already known about them (the ones
 * refused for their content keep that answer; sequence gaps seen are still logged).
 */
export class StoreUnavailableError extends EcError {
  constructor(
    message: string,
    override readonly cause?: unknown,
    readonly report?: ReceivedReport,
  ) {
    super('EC_STORE_UNAVAILABLE', message);
  }
}

/** Bad command-line usage of a CLI (exit code 2). */
export class UsageError extends EcError {
  constructor(message: string) {
    super('EC_USAGE', message);
  }
}

/** Reason phrases are one line of printable text (RFC 3261 25.1 Reason-Phrase). */
export function sanitizeReason(reason: string): string {
  const clean = reason.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 197)}...` : clean;
}
