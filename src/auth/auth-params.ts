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
  const params = new Map<string, string>();
  const scheme = scanCredentials(value, (s, nameStart, nameEnd, v) => {
    const name = s.slice(nameStart, nameEnd).toLowerCase();
    if (params.has(name)) return false;
    params.set(name, v);
    return true;
  });
  return scheme === undefined ? undefined : { scheme, params };
}

/**
 * What the authenticator reads of an Authorization value, in fixed fields: the same scanner and
 * the same answers as parseCredentials (undefined for the same values, a repeated parameter
 * included), without a Map, its entries, nor a lowercased copy of each name. On sipp's 9-parameter
 * value, sliced from a head as the server has it, a quarter cheaper (docs/performance.md, digest).
 */
export interface DigestCredentials {
  scheme: string;
  username: string | undefined;
  realm: string | undefined;
  nonce: string | undefined;
  uri: string | undefined;
  response: string | undefined;
  algorithm: string | undefined;
  cnonce: string | undefined;
  qop: string | undefined;
  nc: string | undefined;
}

export function parseDigestCredentials(value: string): DigestCredentials | undefined {
  // Values by field index: a keyed store c[field] with nine different names went megamorphic.
  const values: (string | undefined)[] = [
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
  ];
  /** Lowercased names of the other parameters, only to refuse a repeat as parseCredentials does. */
  let others: Set<string> | undefined;
  const scheme = scanCredentials(value, (s, nameStart, nameEnd, v) => {
    const field = fieldOf(s, nameStart, nameEnd);
    if (field < 0) {
      const name = s.slice(nameStart, nameEnd).toLowerCase();
      others ??= new Set();
      if (others.has(name)) return false;
      others.add(name);
      return true;
    }
    if (values[field] !== undefined) return false;
    values[field] = v;
    return true;
  });
  if (scheme === undefined) return undefined;
  return {
    scheme,
    username: values[0],
    realm: values[1],
    nonce: values[2],
    uri: values[3],
    response: values[4],
    algorithm: values[5],
    cnonce: values[6],
    qop: values[7],
    nc: values[8],
  };
}

/** In the order of the fields above: parseDigestCredentials stores by index. */
const FIELDS = ['username', 'realm', 'nonce', 'uri', 'response', 'algorithm', 'cnonce', 'qop', 'nc'];
/** Indexes into FIELDS by name length. */
const FIELD_BY_LENGTH: (number[] | undefined)[] = [];
FIELDS.forEach((f, index) => (FIELD_BY_LENGTH[f.length] ??= []).push(index));

/** The index in FIELDS of a parameter name (any case), or -1; compares in place, without a slice. */
function fieldOf(s: string, start: number, end: number): number {
  const candidates = FIELD_BY_LENGTH[end - start];
  if (candidates === undefined) return -1;
  for (const index of candidates) if (namedAt(s, start, FIELDS[index]!)) return index;
  return -1;
}

/**
 * Whether s at `start` spells `lower` in any case. Names are token characters: among them only
 * A-Z become a lowercase letter with bit 0x20 set, so this is what toLowerCase() === lower says.
 */
function namedAt(s: string, start: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) {
    if ((s.charCodeAt(start + k) | 0x20) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * The scanner both readers share: returns the scheme, or undefined when the value is not
 * `scheme *(param)` or `put` refuses a parameter (a repeat). A parameter's name is s[nameStart, nameEnd).
 */
function scanCredentials(
  s: string,
  put: (s: string, nameStart: number, nameEnd: number, value: string) => boolean,
): string | undefined {
  let i = skipSpace(s, 0);
  const schemeStart = i;
  while (i < s.length && isIn(TOKEN, s.charCodeAt(i))) i++;
  if (i === schemeStart || i >= s.length || !isSpace(s.charCodeAt(i))) return undefined;
  const scheme = s.slice(schemeStart, i);
  let nextBackslash = -1;
  for (;;) {
    // skipSpace only where there is a space: meters (sipp among them) send none, and the calls
    // were a third of this function's time (docs/performance.md, Figures behind the code).
    if (isSpace(s.charCodeAt(i))) i = skipSpace(s, i);
    const nameStart = i;
    while (i < s.length && isIn(TOKEN, s.charCodeAt(i))) i++;
    if (i === nameStart) return undefined;
    const nameEnd = i;
    if (isSpace(s.charCodeAt(i))) i = skipSpace(s, i);
    if (s.charCodeAt(i) !== 0x3d) return undefined;
    i++;
    if (isSpace(s.charCodeAt(i))) i = skipSpace(s, i);
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
    if (!put(s, nameStart, nameEnd, v)) return undefined;
    if (isSpace(s.charCodeAt(i))) i = skipSpace(s, i);
    if (i >= s.length) return scheme;
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
