/**
 * The single error catalogue of ec-server.
 *
 * Every error the server can report has a stable code here. Codes are part of the public
 * surface: they appear in logs and metrics, and request errors map to one SIP status each.
 * The reason phrase sent on the wire is built from the catalogue entry plus details that name
 * the actual problem (e.g. "Bad Content-Length: 500 exceeds the 20-byte body").
 *
 * docs/errors.md lists every code; test/unit/error-catalogue.test.ts keeps the two equal and
 * checks that every `EC_*` code written in src/ is catalogued here.
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
  // The stamp is further ahead of the server clock than ingest.max_future_seconds.
  EC_BODY_FUTURE_TIMESTAMP: { status: 400, reason: 'Timestamp in the future' },
  EC_BODY_BAD_RECORD: { status: 400, reason: 'Bad record' },
  EC_INTEGRITY_BAD_HEADER: { status: 400, reason: 'Bad integrity header' },
  EC_INTEGRITY_COUNT_MISMATCH: { status: 400, reason: 'X-EC-Count mismatch' },
  EC_INTEGRITY_CHECKSUM_MISMATCH: { status: 400, reason: 'X-EC-Checksum mismatch' },
  // 401 / 403: digest authentication (src/auth/); a 401 carries WWW-Authenticate challenges.
  EC_AUTH_REQUIRED: { status: 401, reason: 'Unauthorized' },
  EC_AUTH_FAILED: { status: 401, reason: 'Unauthorized' },
  EC_AUTH_STALE: { status: 401, reason: 'Unauthorized' },
  EC_AUTH_REPLAYED: { status: 401, reason: 'Unauthorized' },
  EC_AUTH_FORBIDDEN: { status: 403, reason: 'Forbidden' },
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
  // 500: an unexpected error while handling one request (a bug); logged.
  EC_INTERNAL: { status: 500, reason: 'Server Internal Error' },
  // 503: the store could not take the batch (down, slow, overloaded); the response carries Retry-After.
  EC_STORE_UNAVAILABLE: { status: 503, reason: 'Store unavailable' },
  EC_SERVER_OVERLOADED: { status: 503, reason: 'Server overloaded' },
  EC_SERVER_STOPPING: { status: 503, reason: 'Server shutting down' },
  // The source address sent more than sip.rate_limit requests per second (token bucket).
  EC_SIP_RATE_LIMITED: { status: 503, reason: 'Rate limit exceeded' },
  // The authenticated device sent more than sip.device_rate_limit MESSAGEs per second (token bucket).
  EC_DEVICE_RATE_LIMITED: { status: 503, reason: 'Device rate limit exceeded' },
} as const;

export type SipErrorCode = keyof typeof SIP_ERRORS;

/**
 * Errors that are never a SIP answer: `status` is undefined. Sync codes travel in the sync protocol's
 * error frames (docs/sync-protocol.md); the others end a process or are only logged.
 */
export const OTHER_ERRORS = {
  // SIP input that gets no answer at all (RFC 3261 18.3): logged at debug.
  EC_SIP_DISCARDED: { status: undefined, reason: 'Discarded without an answer' },
  // Startup: the server refuses to start (exit code 2) / cannot bind its sockets (exit code 1).
  EC_CONFIG_INVALID: { status: undefined, reason: 'Invalid configuration' },
  EC_LISTEN_FAILED: { status: undefined, reason: 'Cannot listen' },
  // Sync protocol: a connection that breaks the protocol gets an error frame and is closed.
  EC_SYNC_BAD_JSON: { status: undefined, reason: 'Sync frame is not JSON' },
  EC_SYNC_BAD_FRAME: { status: undefined, reason: 'Bad sync frame' },
  EC_SYNC_FRAME_TOO_LARGE: { status: undefined, reason: 'Sync frame too large' },
  EC_SYNC_VERSION: { status: undefined, reason: 'Unsupported sync protocol version' },
  EC_SYNC_BAD_HELLO: { status: undefined, reason: 'Bad sync hello' },
  EC_SYNC_NO_HELLO: { status: undefined, reason: 'No sync hello' },
  EC_SYNC_UNEXPECTED: { status: undefined, reason: 'Unexpected sync frame' },
  EC_SYNC_TIMEOUT: { status: undefined, reason: 'Sync request timed out' },
  EC_SYNC_BAD_ANSWER: { status: undefined, reason: 'Bad sync answer' },
  EC_SYNC_CLIENT_FAILED: { status: undefined, reason: 'Sync client failed' },
  // Nothing sent or received for sync.idle_timeout seconds.
  EC_SYNC_IDLE: { status: undefined, reason: 'Sync connection idle' },
  // sync.max_connections connections are open already, or a hello's credentials cannot be read just now.
  EC_SYNC_BUSY: { status: undefined, reason: 'Sync service busy' },
  // A hello naming a device without proving its secret (when the device has one, or auth is required).
  EC_SYNC_AUTH_FAILED: { status: undefined, reason: 'Sync hello not authenticated' },
  // Command line: bad usage of a CLI, or an operation it refuses (exit code 2).
  EC_USAGE: { status: undefined, reason: 'Bad usage' },
  // HTTP read API (GET /api/devices/...): a 400 or 404 with {error: code, message}; ec-export exits 2.
  EC_QUERY_BAD_PARAM: { status: undefined, reason: 'Bad query parameter' },
  EC_QUERY_SPAN_TOO_LONG: { status: undefined, reason: 'Query span too long' },
  EC_QUERY_UNKNOWN_DEVICE: { status: undefined, reason: 'Unknown device' },
} as const;

export type OtherErrorCode = keyof typeof OTHER_ERRORS;
export type ErrorCode = SipErrorCode | OtherErrorCode;
export type SyncErrorCode = Extract<OtherErrorCode, `EC_SYNC_${string}`>;

/** Every code, with its SIP status (undefined: never a SIP answer) and reason. */
export const ERRORS: Readonly<Record<ErrorCode, { status: number | undefined; reason: string }>> = {
  ...SIP_ERRORS,
  ...OTHER_ERRORS,
};

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** A received batch that was not stored: its index in the group, and the error that answers it (a 400). */
export type Rejection = [index: number, code: SipErrorCode, detail: string | undefined];

/** A device's X-EC-Seq skipped ahead: [device, seq received, seq expected]. Logged; sync repairs the gap. */
export type SequenceGap = [device: string, seq: number, expected: number];

/** What writing a group of received batches did, besides storing every batch not rejected. */
export interface ReceivedReport {
  rejected: Rejection[];
  gaps: SequenceGap[];
  /** Records (samples) of the batches stored; absent = 0. */
  records?: number;
  /** Per received batch, in order: its records when stored, 0 when refused (the device registry counts them). */
  samples?: number[];
}

/** Base of every error ec-server raises on purpose. */
export class EcError extends Error {
  constructor(
    readonly code: ErrorCode,
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
    /** Extra response headers, e.g. Accept for 415, Allow for 405, WWW-Authenticate (several) for 401. */
    readonly headers: Record<string, string | string[]> = {},
  ) {
    const entry = SIP_ERRORS[code];
    const reason = detail ? `${entry.reason}: ${detail}` : entry.reason;
    // Answered, never logged with a stack: capturing one per refused request was 14 % of a 401's cost
    // under a flood of unauthenticated MESSAGEs (test/full/flood.test.ts).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(code, reason);
    Error.stackTraceLimit = stackTraceLimit;
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

/** Bad command-line usage, or an operation a CLI refuses (e.g. a backup over an existing file): exit code 2. */
export class UsageError extends EcError {
  constructor(message: string) {
    super('EC_USAGE', message);
  }
}

/** A read query the HTTP API answers 400 (bad parameter, span too long) or 404 (unknown device). */
export class QueryError extends EcError {
  constructor(code: Extract<OtherErrorCode, `EC_QUERY_${string}`>, message: string) {
    super(code, message);
  }

  get httpStatus(): number {
    return this.code === 'EC_QUERY_UNKNOWN_DEVICE' ? 404 : 400;
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

/** A sync connection broke the protocol, timed out, or its peer answered with an error frame. */
export class SyncProtocolError extends EcError {
  declare readonly code: SyncErrorCode;
  constructor(code: SyncErrorCode, message: string) {
    super(code, message);
  }
}

/** Reason phrases are one line of printable text (RFC 3261 25.1 Reason-Phrase). */
export function sanitizeReason(reason: string): string {
  const clean = reason.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 197)}...` : clean;
}
