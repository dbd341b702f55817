/**
 * Reads a credentials header value (RFC 3261 25.1 `credentials`, RFC 7616 3.4):
 *
 *     Digest username="m7", realm="ec-server", nonce="...", uri="sip:h", response="...",
 *            algorithm=MD5, cnonce="...", qop=auth-int, nc=00000001
 *
 * A hand-written scanner, linear in the value: the `sip` package's auth regexes are not. Names are
 * lowercased; quoted values are unquoted (backslash escapes removed). undefined for anything that
 * is not `scheme *(param)`, or when a parameter repeats.
 */
export interface Credentials {
  scheme: string;
  params: Map<string, string>;
}

const TOKEN = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~") TOKEN[c.charCodeAt(0)] = 1;
/** Unquoted values: tokens, and what hex nonce counts or URIs without quotes may hold. */
const BARE_VALUE = TOKEN.slice();
for (const c of ':/@=') BARE_VALUE[c.charCodeAt(0)] = 1;

export function parseCredentials(value: string): Credentials | undefined {
  const s = value;
  let i = skipSpace(s, 0);
  const schemeStart = i;
  while (i < s.length && isIn(TOKEN, s.charCodeAt(i))) i++;
  if (i === schemeStart || i >= s.length || !isSpace(s.charCodeAt(i))) return undefined;
  const scheme = s.slice(schemeStart, i);
  const params = new Map<string, string>();
  let nextBackslash = -1;
  for (;;) {
    i = skipSpace(s, i);
    const nameStart = i;
    while (i < s.length && isIn(TOKEN, s.charCodeAt(i))) i++;
    if (i === nameStart) return undefined;
    const name = s.slice(nameStart, i).toLowerCase();
    i = skipSpace(s, i);
    if (s.charCodeAt(i) !== 0x3d) return undefined;
    i = skipSpace(s, i + 1);
    let v: string;
    const close = s.charCodeAt(i) === 0x22 ? s.indexOf('"', i + 1) : -1;
    // The next backslash at or after i, found by a scan that only ever moves forward (linear).
    if (nextBackslash < i) nextBackslash = indexOrEnd(s, '\\', i);
    if (close > 0 && nextBackslash > close) {
      // A quoted value without escapes (all that meters send): one slice.
      v = s.slice(i + 1, close);
      i = close + 1;
    } else if (s.charCodeAt(i) === 0x22) {
      let out = '';
      let from = ++i;
      for (;;) {
        if (i >= s.length) return undefined;
        const c = s.charCodeAt(i);
        if (c === 0x22) break;
        if (c === 0x5c) {
          out += s.slice(from, i);
          from = ++i; // the escaped character is kept by the next slice
        }
        i++;
      }
      v = out + s.slice(from, i);
      i++;
    } else {
      const valueStart = i;
      while (i < s.length && isIn(BARE_VALUE, s.charCodeAt(i))) i++;
      if (i === valueStart) return undefined;
      v = s.slice(valueStart, i);
    }
    if (params.has(name)) return undefined;
    params.set(name, v);
    i = skipSpace(s, i);
    if (i >= s.length) return { scheme, params };
    if (s.charCodeAt(i) !== 0x2c) return undefined;
    i++;
  }
}

function indexOrEnd(s: string, what: string, from: number): number {
  const at = s.indexOf(what, from);
  return at < 0 ? s.length : at;
}

const isSpace = (c: number) => c === 0x20 || c === 0x09;
const isIn = (set: Uint8Array, c: number) => c < 128 && set[c] === 1;

function skipSpace(s: string, from: number): number {
  let i = from;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i;
}
