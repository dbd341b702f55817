import type { Aor, Headers, Message, Via } from 'sip';

/**
 * The fast path of head parsing, for the plain requests meters send all day: one Via, single-line
 * headers, token parameters, no quoting. It returns exactly what `sip.parse` returns for such a
 * head (a differential test holds it to that over the wire fixtures and thousands of mutations),
 * in about a quarter of the time: `sip.parse` runs a general regex per header and per parameter,
 * which was the largest single cost of the receive path under load.
 *
 * Anything outside that subset returns undefined and goes to the general parser (general-head.ts),
 * so the answers to unusual or hostile requests are decided in one place only.
 */

const START_LINE = /^([A-Z]+) (sips?:[^\s]+) SIP\/2\.0$/;
const COLON = 0x3a;
// eslint-disable-next-line no-control-regex -- the class is every Latin-1 code unit, NUL included, on purpose
const BEYOND_LATIN1 = /[^\x00-\xff]/;

/**
 * Whether the head holds a CR or LF that is not part of a CRLF (the general parser refuses it
 * with a 400): what /\r(?!\n)|(?<!\r)\n/ finds, by indexOf hops that only move forward (linear).
 * The regex was the lean parser's largest per-head cost that grows with the head (figures:
 * docs/performance.md, digest authentication's cost).
 */
function hasBareCrOrLf(head: string): boolean {
  for (let i = head.indexOf('\r'); i >= 0; i = head.indexOf('\r', i + 2)) {
    if (head.charCodeAt(i + 1) !== 0x0a) return true;
  }
  for (let i = head.indexOf('\n'); i >= 0; i = head.indexOf('\n', i + 1)) {
    if (head.charCodeAt(i - 1) !== 0x0d) return true;
  }
  return false;
}

/**
 * Header and parameter names as they are spelled on the wire, mapped to their canonical
 * (lowercase, compact forms expanded) constants. Property keys must be internalized strings: a
 * name freshly sliced from the head was looked up in V8's string table on every `in` and store,
 * which was a third of this parser's time. Unknown names still work, the slow way.
 */
const HEADER_NAMES = new Map<string, string>();
for (const n of [
  'via',
  'from',
  'to',
  'call-id',
  'cseq',
  'contact',
  'max-forwards',
  'content-type',
  'content-length',
  'x-ec-count',
  'x-ec-checksum',
  'x-ec-seq',
  'user-agent',
  'expires',
  'allow',
  'accept',
  'require',
  'supported',
  'date',
  'authorization',
  'subject',
  'content-encoding',
  'timestamp',
]) {
  HEADER_NAMES.set(n, n);
  HEADER_NAMES.set(
    n.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase()),
    n,
  );
}
HEADER_NAMES.set('Call-ID', 'call-id');
HEADER_NAMES.set('CSeq', 'cseq');
HEADER_NAMES.set('X-EC-Count', 'x-ec-count');
HEADER_NAMES.set('X-EC-Checksum', 'x-ec-checksum');
HEADER_NAMES.set('X-EC-Seq', 'x-ec-seq');

function headerName(raw: string): string {
  const known = HEADER_NAMES.get(raw);
  if (known !== undefined) return known;
  const lower = raw.toLowerCase();
  return COMPACT[lower] ?? lower;
}

const PARAM_NAMES = new Map<string, string>();
for (const n of [
  'branch',
  'tag',
  'rport',
  'received',
  'transport',
  'lr',
  'maddr',
  'ttl',
  'user',
  'method',
  'expires',
  'q',
]) {
  PARAM_NAMES.set(n, n);
}

function paramName(raw: string): string {
  return PARAM_NAMES.get(raw) ?? raw.toLowerCase();
}
/** Header name characters: [A-Za-z0-9-.!*_+`'~] (the `sip` package's token set for names). */
const NAME_CHARS = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!*_+`'~")
  NAME_CHARS[c.charCodeAt(0)] = 1;

function isNameChar(c: number): boolean {
  return c < 128 && NAME_CHARS[c] === 1;
}

/** Skips what the regex `\s*` would within latin1: \t \n \v \f \r space and no-break space. */
function skipSpace(s: string, from: number, to: number): number {
  let i = from;
  for (; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0)) break;
  }
  return i;
}
const TOKEN = "[\\w\\-.!%*_+`'~]+";
const PARAMS = `((?:;${TOKEN}(?:=${TOKEN})?)*)`;
const VIA = new RegExp(`^SIP/(2\\.0)/([A-Za-z]+) ([A-Za-z0-9.\\-]+)(?::(\\d{1,5}))?${PARAMS}$`);
/** `<uri>;params`, `name <uri>;params`, `"name" <uri>;params` (no escapes, no spaces in the URI). */
const AOR_BRACKETED = new RegExp(`^((?:${TOKEN})(?:[ \\t]+${TOKEN})*|"[^"\\\\]*")?[ \\t]*<([^>\\s]+)>${PARAMS}$`);
const AOR_BARE = new RegExp(`^([^\\s;<>"@,]+@[^\\s;<>",]+|[^\\s;<>",]+)${PARAMS}$`);
const CSEQ = /^(\d{1,10}) ([A-Z]+)$/;

/** Null prototype: a header named "constructor" must not find Object's. */
const COMPACT: Record<string, string | undefined> = Object.assign(Object.create(null) as object, {
  i: 'call-id',
  m: 'contact',
  e: 'contact-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
});

/**
 * Headers `sip` parses into structures we do not mirror here: such a head takes the general parser.
 * Authorization is not among them: every authenticated MESSAGE carries one, and both parsers keep
 * it as text for the authenticator's own linear reader (auth/auth-params.ts), unlike `sip`.
 */
const NOT_LEAN = new Set([
  'route',
  'record-route',
  'path',
  'www-authenticate',
  'proxy-authenticate',
  'proxy-authorization',
  'authentication-info',
  'refer-to',
]);

export function parseHeadLean(head: string): Message | undefined {
  const length = head.length;
  let eol = head.indexOf('\r\n');
  if (eol < 0) eol = length;
  const start = START_LINE.exec(eol === length ? head : head.slice(0, eol));
  if (!start) return undefined;
  const headers: Headers = {};
  // Header lines are scanned by hand rather than split and matched with a regex per line (the
  // largest cost of this function); the scan accepts exactly what `^(name)\s*:\s*(.*)$` did.
  // The regex's \s has members beyond latin1: such heads (never seen from the wire, which is
  // decoded as latin1) go to the general parser, and so does a lone CR or LF, which it refuses.
  if (BEYOND_LATIN1.test(head) || hasBareCrOrLf(head)) return undefined;
  for (let pos = eol + 2; pos <= length; pos = eol + 2) {
    eol = head.indexOf('\r\n', pos);
    if (eol < 0) eol = length;
    let i = pos;
    while (i < eol && isNameChar(head.charCodeAt(i))) i++;
    if (i === pos) return undefined;
    const name = headerName(head.slice(pos, i));
    i = skipSpace(head, i, eol);
    if (i >= eol || head.charCodeAt(i) !== COLON) return undefined;
    i = skipSpace(head, i + 1, eol);
    // `in` also sees Object.prototype's names ("__proto__", "constructor"): those take the slow path too.
    if (name in headers || NOT_LEAN.has(name)) return undefined;
    const value = head.slice(i, eol);
    switch (name) {
      case 'via': {
        const via = parseVia(value);
        if (!via) return undefined;
        headers.via = [via];
        break;
      }
      case 'to':
      case 'from': {
        const aor = parseAor(value);
        if (!aor) return undefined;
        headers[name] = aor;
        break;
      }
      case 'contact': {
        // sip's own '*' test never matches (it compares its parser state): '*' parses as a bare AOR.
        const aor = parseAor(value);
        if (!aor) return undefined;
        headers.contact = [aor];
        break;
      }
      case 'cseq': {
        const c = CSEQ.exec(value);
        if (!c) return undefined;
        headers.cseq = { seq: +c[1]!, method: c[2]! };
        break;
      }
      case 'content-length':
        headers['content-length'] = +value;
        break;
      default:
        headers[name] = value;
    }
  }
  return { method: start[1]!, uri: start[2]!, version: '2.0', headers, content: '' };
}

function parseVia(value: string): Via | undefined {
  const m = VIA.exec(value);
  if (!m) return undefined;
  return { version: m[1]!, protocol: m[2]!, host: m[3]!, port: m[4] ? +m[4] : undefined, params: parseParams(m[5]!) };
}

function parseAor(value: string): Aor | undefined {
  const b = AOR_BRACKETED.exec(value);
  if (b) return { name: b[1], uri: b[2]!, params: parseParams(b[3]!) };
  const bare = AOR_BARE.exec(value);
  if (bare) return { name: undefined, uri: bare[1]!, params: parseParams(bare[2]!) };
  return undefined;
}

/** `;a=b;c` (already validated by the caller's regex) to `{a: 'b', c: null}`, names lowercased as `sip` does. */
function parseParams(s: string): Record<string, string | undefined> {
  const params: Record<string, string | null> = {};
  if (s.length === 0) return params as Record<string, string | undefined>;
  const parts = s.split(';');
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    const eq = p.indexOf('=');
    if (eq < 0) params[paramName(p)] = null;
    else params[paramName(p.slice(0, eq))] = p.slice(eq + 1);
  }
  return params as Record<string, string | undefined>;
}
