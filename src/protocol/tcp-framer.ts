import {
  decodeError,
  contentLengthOf,
  oversizeHead,
  parseHead,
  RejectedRequest,
  requestError,
  type Decoded,
  type Limits,
  type SipRequest,
} from './sip-request.js';
import { findHeadEnd, headText, skipLeadingCrlf } from './head-scan.js';

export interface FramerOutput {
  messages: Decoded[];
  /**
   * The stream can no longer be framed (bad or missing Content-Length, oversize head, garbage): close it after
   * answering.
   */
  close: boolean;
}

/**
 * Frames a TCP byte stream into SIP requests by Content-Length (RFC 3261 18.3), with limits:
 * a head may not exceed maxHeaderBytes and a body maxBodyBytes, so memory per connection is
 * bounded whatever the peer sends. Pipelined requests are all delivered, in order.
 */
export class TcpFramer {
  private buf: Buffer = Buffer.alloc(0);
  /** While a body is awaited: the request, its length, and the body chunks received so far. */
  private pending: { req: SipRequest; length: number; chunks: Buffer[]; have: number } | undefined;
  private closed = false;

  constructor(private readonly limits: Limits) {}

  push(chunk: Buffer): FramerOutput {
    const out: FramerOutput = { messages: [], close: false };
    if (this.closed) return { messages: [], close: true };
    if (this.pending) {
      this.pending.chunks.push(chunk);
      this.pending.have += chunk.length;
      if (this.pending.have < this.pending.length) return out;
      const all = Buffer.concat(this.pending.chunks, this.pending.have);
      const { req, length } = this.pending;
      this.pending = undefined;
      req.body = all.subarray(0, length);
      out.messages.push({ kind: 'request', request: req });
      this.buf = all.subarray(length);
    } else {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    }
    this.drain(out);
    if (out.close) this.closed = true;
    return out;
  }

  /** A message has begun and is not complete yet (its head or its body is still awaited). */
  get midMessage(): boolean {
    return this.pending !== undefined || this.buf.length > 0;
  }

  /** Bytes held for an incomplete message (for tests and metrics). */
  get buffered(): number {
    return this.pending ? this.pending.have : this.buf.length;
  }

  private drain(out: FramerOutput): void {
    for (;;) {
      const start = skipLeadingCrlf(this.buf, 0, this.buf.length);
      this.buf = this.buf.subarray(start);
      if (this.buf.length === 0) return;
      if (this.buf[0] === 0x20 || this.buf[0] === 0x09) {
        out.messages.push({ kind: 'discard', reason: 'stream starts with whitespace' });
        out.close = true;
        return;
      }
      const headEnd = findHeadEnd(this.buf, 0, this.buf.length);
      if (headEnd < 0) {
        if (this.buf.length > this.limits.maxHeaderBytes) this.rejectOversizeHead(out);
        return;
      }
      if (headEnd > this.limits.maxHeaderBytes) {
        this.rejectOversizeHead(out);
        return;
      }
      const head = headText(this.buf, 0, headEnd);
      let req: SipRequest;
      let length: number | undefined;
      try {
        req = parseHead(head);
        length = contentLengthOf(head, req, this.limits);
        if (length === undefined) {
          throw requestError(req, 'EC_SIP_BAD_CONTENT_LENGTH', 'missing (required over TCP)', true);
        }
      } catch (e) {
        const d = decodeError(e);
        // Without a trusted Content-Length the rest of the stream cannot be framed.
        if (d.kind === 'reject') d.rejection = new RejectedRequest(d.rejection.request, d.rejection.error, true);
        out.messages.push(d);
        out.close = true;
        return;
      }
      const bodyStart = headEnd + 4;
      const available = this.buf.length - bodyStart;
      if (available >= length) {
        req.body = this.buf.subarray(bodyStart, bodyStart + length);
        out.messages.push({ kind: 'request', request: req });
        this.buf = this.buf.subarray(bodyStart + length);
        continue;
      }
      // Wait for the rest of the body without re-concatenating the growing buffer per chunk.
      const first = this.buf.subarray(bodyStart);
      this.pending = { req, length, chunks: [first], have: first.length };
      this.buf = Buffer.alloc(0);
      return;
    }
  }

  /** No blank line within maxHeaderBytes: answer 513 if the head so far names a Via, then close. */
  private rejectOversizeHead(out: FramerOutput): void {
    out.close = true;
    const text = headText(this.buf, 0, Math.min(this.buf.length, this.limits.maxHeaderBytes));
    try {
      out.messages.push({ kind: 'reject', rejection: oversizeHead(text, this.limits.maxHeaderBytes, true) });
    } catch (e) {
      out.messages.push(decodeError(e));
    }
  }
}
