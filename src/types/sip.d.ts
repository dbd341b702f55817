/**
 * Typings for the parts of npm `sip` 0.0.6 that ec-server uses. The package has none.
 * We use only its pure functions (parse, stringify, makeResponse); sockets are ours
 * (see src/transport/), because its own transports crash on socket errors and buffer without limit.
 */
declare module 'sip' {
  export interface SipUri {
    schema: string;
    user?: string;
    password?: string;
    host: string;
    port?: number;
    params: Record<string, string | null>;
    headers: Record<string, string>;
  }
  export interface Via {
    version: string;
    protocol: string;
    host: string;
    port?: number;
    params: Record<string, string | undefined>;
  }
  export interface Aor {
    name?: string;
    uri: string;
    params: Record<string, string | undefined>;
  }
  export interface CSeq {
    seq: number;
    method: string;
  }
  export interface Headers {
    via?: Via[];
    to?: Aor;
    from?: Aor;
    'call-id'?: string;
    cseq?: CSeq;
    'content-length'?: number;
    'content-type'?: string;
    [name: string]: unknown;
  }
  export interface Message {
    method?: string;
    uri?: string;
    status?: number;
    reason?: string;
    version: string;
    headers: Headers;
    content?: string;
  }
  /** Parses a whole message (latin1 string); undefined when the start line or a header line is unparsable. */
  export function parse(s: string | Buffer): Message | undefined;
  export function stringify(m: Message): string;
  export function makeResponse(
    rq: Message,
    status: number,
    reason?: string,
    extension?: { headers?: Record<string, unknown>; content?: string },
  ): Message;
  export function parseUri(s: string): SipUri | undefined;
  export function stringifyUri(u: SipUri | string): string;
}
