import sip from 'sip';
import { writeLatin1 } from '../latin1.js';
import type { SipRequest } from './sip-request.js';

export interface ResponseSpec {
  status: number;
  reason: string;
  /** A list writes the header once per value (e.g. one WWW-Authenticate per algorithm). */
  headers?: Record<string, string | readonly string[]>;
}

export interface Source {
  address: string;
  port: number;
}

export const SERVER_HEADER = 'ec-server';

/**
 * Serializes the response to a request per RFC 3261 8.2.6: Via, From, Call-ID and CSeq copied,
 * a To-tag added when the request had none, `received`/`rport` filled in the top Via
 * (RFC 3261 18.2.1, RFC 3581) so that the client sees where we saw it from.
 */
export function serializeResponse(req: SipRequest, spec: ResponseSpec, toTag: string, source: Source): Buffer {
  let s = `SIP/2.0 ${spec.status} ${spec.reason}\r\n`;
  const via = req.headers.via ?? [];
  for (let i = 0; i < via.length; i++) {
    const v = via[i]!;
    if (!v.host) continue;
    // Top Via: `received` set when we saw another address (RFC 3261 18.2.1), `rport` filled in (RFC 3581).
    const params =
      i === 0
        ? withParam(v.params, 'received', v.host !== source.address ? source.address : undefined, String(source.port))
        : stringifyParams(v.params);
    const port = v.port ? `:${v.port}` : '';
    s += `Via: SIP/${v.version || '2.0'}/${v.protocol.toUpperCase()} ${v.host}${port}${params}\r\n`;
  }
  const to = req.headers.to;
  if (to) {
    const tag = withParam(to.params, 'tag', to.params?.tag ? undefined : toTag);
    s += `To: ${to.name ?? ''} <${uriText(to.uri)}>${tag}\r\n`;
  }
  const from = req.headers.from;
  if (from) s += `From: ${stringifyAor(from)}\r\n`;
  const callId = req.headers['call-id'];
  if (callId !== undefined) s += `Call-ID: ${callId}\r\n`;
  const cseq = req.headers.cseq;
  if (cseq) s += `CSeq: ${cseq.seq} ${cseq.method}\r\n`;
  s += `Server: ${SERVER_HEADER}\r\n`;
  if (spec.headers) {
    for (const name in spec.headers) {
      const value = spec.headers[name]!;
      const pretty = prettifyHeaderName(name);
      if (typeof value === 'string') s += `${pretty}: ${value}\r\n`;
      else for (const v of value) s += `${pretty}: ${v}\r\n`;
    }
  }
  s += 'Content-Length: 0\r\n\r\n';
  return latin1Bytes(s);
}

/**
 * Responses are cut from a shared slab: Buffer.from(string) goes through several layers of
 * argument handling and its own 8-kB pool per call, a tenth of the receive loop's time for
 * small batches. A slab stays alive while any response cut from it is cached (Timer J), exactly
 * like Node's pool; a large response gets its own buffer.
 */
const SLAB_BYTES = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

function latin1Bytes(s: string): Buffer {
  // Every character is latin1 (request text is decoded as latin1, the rest is ASCII): one byte each.
  const n = s.length;
  if (n > SLAB_BYTES / 8) return Buffer.from(s, 'latin1');
  if (slabUsed + n > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const start = slabUsed;
  writeLatin1(slab, s, start);
  slabUsed += n;
  return slab.subarray(start, start + n);
}

/*
 * The functions below write exactly what `sip.stringify(sip.makeResponse(...))` writes
 * (test/unit/lean-head.test.ts compares the two over the wire fixtures and thousands of mutated
 * requests), without building the intermediate message objects: this runs once per request.
 */

function stringifyParams(params: Params): string {
  let s = '';
  for (const n in params) {
    const v = params[n];
    s += v ? `;${n}=${v}` : `;${n}`;
  }
  return s;
}

type Params = Record<string, string | null | undefined> | undefined;

/**
 * The params written out as sip.stringify writes `{...params, [name]: value}` (value replaces the
 * param where it stands, or is appended) with, when `rport` is given, an existing rport param's
 * value replaced by it (RFC 3581: filled in, never added). No value and no rport: as they are.
 */
function withParam(params: Params, name: string, value: string | undefined, rport?: string): string {
  if (value === undefined && rport === undefined) return stringifyParams(params);
  let s = '';
  let seen = false;
  for (const n in params) {
    let v = params[n];
    if (n === name && value !== undefined) {
      v = value;
      seen = true;
    } else if (n === 'rport' && rport !== undefined) v = rport;
    s += v ? `;${n}=${v}` : `;${n}`;
  }
  return seen || value === undefined ? s : `${s};${name}=${value}`;
}

function uriText(uri: unknown): string {
  return typeof uri === 'string' ? uri : sip.stringifyUri(uri as Parameters<typeof sip.stringifyUri>[0]);
}

function stringifyAor(aor: { name?: string; uri: unknown; params?: Params }): string {
  return `${aor.name ?? ''} <${uriText(aor.uri)}>${stringifyParams(aor.params)}`;
}

function prettifyHeaderName(s: string): string {
  if (s === 'call-id') return 'Call-ID';
  return s.replace(/\b([a-z])/g, (a) => a.toUpperCase());
}
