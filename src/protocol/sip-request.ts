import type { Message } from 'sip';
import { SipDiscard, SipRequestError } from '../errors.js';
import { parseHeadGeneral } from './general-head.js';
import { parseHeadLean } from './lean-head.js';

/**
 * Turning one framed SIP message (head text + body bytes) into a request we can answer.
 * Framing (where a message starts and ends) is done by datagram-decoder.ts and tcp-framer.ts;
 * both end here, so UDP and TCP requests are judged by the same rules.
 */

export interface SipRequest {
  method: string;
  uri: string;
  version: string;
  /** Headers as parsed by the `sip` package (Via, To, From, CSeq are objects). */
  headers: Message['headers'];
  /** The parsed message in the shape `sip.makeResponse` and `sip.stringify` expect. */
  message: Message;
  body: Buffer;
}

export interface Limits {
  /** Largest head (start line + headers) accepted; larger is a 513. */
  maxHeaderBytes: number;
  /** Largest body accepted; larger is a 413. */
  maxBodyBytes: number;
}

/**
 * Parses the head (start line and headers, without the blank line). Throws SipDiscard for
 * anything that is not a request with a usable Via: there is nobody to answer (RFC 3261 18.3).
 * The head must not start with whitespace (framing strips leading CRLF): the `sip` package's
 * framing regex is quadratic on leading whitespace, which is why we never let it see any.
 */
export function parseHead(head: string): SipRequest {
  // Plain requests take the fast path (lean-head.ts); every other head the general parser
  // (general-head.ts). Both are linear in the head: no wire input reaches the `sip` package's parser.
  const lean = parseHeadLean(head);
  const general = lean ? undefined : parseHeadGeneral(head);
  const message = lean ?? general?.message;
  if (!message) throw new SipDiscard('unparsable start line');
  if (message.status !== undefined || !message.method) throw new SipDiscard('not a request');
  const via = message.headers.via;
  if (!Array.isArray(via) || via.length === 0 || !via[0]?.host) {
    throw new SipDiscard('request without a usable Via');
  }
  const req: SipRequest = {
    method: message.method,
    uri: message.uri ?? '',
    version: message.version,
    headers: message.headers,
    message,
    body: Buffer.alloc(0),
  };
  if (general?.problem !== undefined) throw requestError(req, 'EC_SIP_BAD_HEADER', general.problem);
  return req;
}

/**
 * The answer to a head over the size limit: 513, to the Via read from the head's complete lines
 * within the limit (`text` is the head cut at the limit). Throws SipDiscard when they hold no Via.
 */
export function oversizeHead(text: string, limit: number, fatal: boolean): RejectedRequest {
  const lastLine = text.lastIndexOf('\r\n');
  let req: SipRequest;
  try {
    req = parseHead(lastLine > 0 ? text.slice(0, lastLine) : text);
  } catch (e) {
    // A problem in the lines we read does not matter: the size is what we answer.
    if (!(e instanceof RejectedRequest)) throw e;
    req = e.request;
  }
  return requestError(req, 'EC_SIP_MESSAGE_TOO_LARGE', `headers exceed ${limit} bytes`, fatal);
}

const CONTENT_LENGTH_LINE = /^(?:content-length|l)[ \t]*:(.*)$/gim;

/**
 * The Content-Length of a head, read from the raw text because `sip` accepts "1e3", "0x10" and
 * "-5" as numbers. undefined when absent; a SipRequestError when malformed or repeated.
 */
export function contentLengthOf(head: string, req: SipRequest, limits: Limits): number | undefined {
  let value: number | undefined;
  CONTENT_LENGTH_LINE.lastIndex = 0;
  for (let m = CONTENT_LENGTH_LINE.exec(head); m; m = CONTENT_LENGTH_LINE.exec(head)) {
    const raw = m[1]!.trim();
    if (value !== undefined) throw requestError(req, 'EC_SIP_BAD_CONTENT_LENGTH', 'header repeated');
    if (!/^\d{1,12}$/.test(raw)) {
      throw requestError(req, 'EC_SIP_BAD_CONTENT_LENGTH', `${JSON.stringify(raw.slice(0, 20))} is not a byte count`);
    }
    value = Number(raw);
  }
  if (value !== undefined && value > limits.maxBodyBytes) {
    throw requestError(
      req,
      'EC_SIP_BODY_TOO_LARGE',
      `Content-Length ${value} exceeds the ${limits.maxBodyBytes}-byte limit`,
    );
  }
  return value;
}

/** A SipRequestError that carries the request it answers. */
export class RejectedRequest extends Error {
  constructor(
    readonly request: SipRequest,
    readonly error: SipRequestError,
    /** After this rejection the byte stream cannot be framed any more (TCP: close it). */
    readonly fatal = false,
  ) {
    super(error.message);
  }
}

export function requestError(
  req: SipRequest,
  code: ConstructorParameters<typeof SipRequestError>[0],
  detail?: string,
  fatal = false,
): RejectedRequest {
  return new RejectedRequest(req, new SipRequestError(code, detail), fatal);
}

/** What framing produces for each message: a request to handle, one to reject, or nothing to answer. */
export type Decoded =
  | { kind: 'request'; request: SipRequest }
  | { kind: 'reject'; rejection: RejectedRequest }
  | { kind: 'discard'; reason: string };

export function decodeError(e: unknown): Decoded {
  if (e instanceof RejectedRequest) return { kind: 'reject', rejection: e };
  if (e instanceof SipDiscard) return { kind: 'discard', reason: e.message };
  throw e;
}
