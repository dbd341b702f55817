import sip from 'sip';
import type { SipRequest } from './sip-request.js';

export interface ResponseSpec {
  status: number;
  reason: string;
  headers?: Record<string, string>;
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
  const via = (req.headers.via ?? []).slice();
  const top = via[0];
  if (top) {
    const params = { ...top.params };
    if (top.host !== source.address) params.received = source.address;
    if ('rport' in params) params.rport = String(source.port);
    via[0] = { ...top, params };
  }
  const to = req.headers.to;
  const response = sip.makeResponse(req.message, spec.status, spec.reason, {
    headers: { Server: SERVER_HEADER, ...spec.headers },
  });
  response.version = '2.0';
  response.headers.via = via;
  if (to) {
    response.headers.to = to.params?.tag ? to : { ...to, params: { ...to.params, tag: toTag } };
  }
  return Buffer.from(sip.stringify(response), 'latin1');
}
