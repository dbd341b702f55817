import type { Aor, Headers, Message, Via } from 'sip';
import { EcError } from '../errors.js';

/**
 * The general SIP head parser: every head the lean parser (lean-head.ts) declines comes here:
 * folded lines, repeated headers, several Vias, quoted display names, quoted parameter values,
 * IPv6 hosts, whitespace around separators. It is a hand-written scanner that reads each character
 * a bounded number of times, so its time is linear in the head whatever the bytes: the `sip`
 * package's parser, which it replaces on the wire path, runs regexes that are super-linear on
 * whitespace inside AORs and headers (a 2-KB datagram stalled the event loop for seconds).
 *
 * It returns the message in the shape `sip.parse` gives (the response serializer and the
 * transaction layer read that shape), plus the first problem found in a header line. A problem
 * does not stop the parse: the Via is still read, so that the request can be answered with a 400
 * naming the problem (RFC 3261 21.4.1) instead of being dropped.
 */

export interface GeneralHead {
  message: Message;
  /** The first header problem, e.g. "From: whitespace inside <...>"; undefined when the head is clean. */
  problem?: string;
}

const SP = 0x20;
const HT = 0x09;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** RFC 3261 25.1 token characters: alphanum and -.!%*_+`'~ */
const TOKEN_CHARS = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~") {
  TOKEN_CHARS[c.charCodeAt(0)] = 1;
}
/** Parameter values: tokens plus what IPv6 addresses need in `received=` and `maddr=`. */
const PARAM_VALUE_CHARS = TOKEN_CHARS.slice();
for (const c of ':[]') PARAM_VALUE_CHARS[c.charCodeAt(0)] = 1;
/** Hosts: hostnames, IPv4, and bracketed IPv6 references. */
const HOST_CHARS = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.') HOST_CHARS[c.charCodeAt(0)] = 1;

const isToken = (c: number) => c < 256 && TOKEN_CHARS[c] === 1;
const isSpace = (c: number) => c === SP || c === HT;

/** Compact header names (RFC 3261 7.3.3). A Map: a name like "__proto__" must find nothing. */
const COMPACT = new Map([
  ['i', 'call-id'],
  ['m', 'contact'],
  ['e', 'contact-encoding'], // sic: as `sip` (and the lean parser) name it; nothing reads it
  ['l', 'content-length'],
  ['c', 'content-type'],
  ['f', 'from'],
  ['s', 'subject'],
  ['k', 'supported'],
  ['t', 'to'],
  ['v', 'via'],
]);

/** Headers that may appear once only: a second one is a 400 naming it, never a silent choice. */
const SINGLE = new Set([
  'from',
  'to',
  'call-id',
  'cseq',
  'content-type',
  'max-forwards',
  'x-ec-count',
  'x-ec-checksum',
  'x-ec-seq',
]);

/** Wire spelling of header names in problem texts. */
const DISPLAY = new Map([
  ['call-id', 'Call-ID'],
  ['cseq', 'CSeq'],
]);
const display = (name: string) => DISPLAY.get(name) ?? name.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase());

/** A header problem found while scanning; caught in parseHeadGeneral and reported as a 400. */
class Problem extends EcError {
  constructor(detail: string) {
    super('EC_SIP_BAD_HEADER', detail);
  }
}

/** A cursor over one header value; every method moves forward only. */
class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): number {
    return this.i < this.s.length ? this.s.charCodeAt(this.i) : -1;
  }
  skipSpace(): void {
    while (this.i < this.s.length && isSpace(this.s.charCodeAt(this.i))) this.i++;
  }
  /**
   * What the regex `\s` matches within latin1 (\t \n \v \f \r space, no-break space): around the
   * colon of a header line, where the lean parser (and `sip`) allow it.
   */
  skipRegexSpace(): void {
    for (; this.i < this.s.length; this.i++) {
      const c = this.s.charCodeAt(this.i);
      if (!((c >= 0x09 && c <= 0x0d) || c === SP || c === 0xa0)) break;
    }
  }
  /** A run of characters of `set` (possibly empty). */
  run(set: Uint8Array): string {
    const from = this.i;
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c >= 256 || set[c] !== 1) break;
      this.i++;
    }
    return this.s.slice(from, this.i);
  }
  expect(c: number, what: string): void {
    if (this.peek() !== c) throw new Problem(what);
    this.i++;
  }
  /** A quoted-string (RFC 3261 25.1) with its quotes and escapes kept as they are on the wire. */
  quoted(): string {
    const from = this.i;
    this.expect(DQUOTE, 'expected a quoted string');
    for (; this.i < this.s.length; this.i++) {
      const c = this.s.charCodeAt(this.i);
      if (c === BACKSLASH) this.i++;
      else if (c === DQUOTE) {
        this.i++;
        return this.s.slice(from, this.i);
      }
    }
    throw new Problem('unterminated quoted string');
  }
}

/**
 * Parses a head (start line and header lines, without the blank line). Returns undefined when the
 * start line is not a SIP request or response line: there is nothing to answer.
 */
export function parseHeadGeneral(head: string): GeneralHead | undefined {
  const lines = logicalLines(head);
  const start = parseStartLine(lines.lines[0] ?? '');
  if (!start) return undefined;
  const headers: Headers = {};
  let problem = lines.problem;
  for (let n = 1; n < lines.lines.length; n++) {
    const line = lines.lines[n]!;
    const cur = new Cursor(line);
    const rawName = cur.run(TOKEN_CHARS);
    cur.skipRegexSpace();
    if (rawName === '' || cur.peek() !== 0x3a) {
      problem ??= `header line ${n + 1} is not "name: value"`;
      continue;
    }
    const lower = rawName.toLowerCase();
    const name = COMPACT.get(lower) ?? lower;
    cur.i++;
    cur.skipRegexSpace();
    // Trailing whitespace stays in the value, as the lean parser (and `sip`) keep it.
    const value = line.slice(cur.i);
    try {
      addHeader(headers, name, value);
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      problem ??= `${display(name)}: ${e.message}`;
    }
  }
  return { message: { ...start, headers, content: '' }, problem };
}

/**
 * Physical lines joined into logical ones: a line that starts with SP or HT continues the previous
 * one (RFC 3261 7.3.1 folding; the fold is read as one space). A CR or LF that is not part of a
 * CRLF is a problem: header values may not contain them, and echoing one would split a response.
 */
function logicalLines(head: string): { lines: string[]; problem?: string } {
  const lines: string[] = [];
  let problem: string | undefined;
  for (let pos = 0; pos <= head.length;) {
    let eol = head.indexOf('\r\n', pos);
    if (eol < 0) eol = head.length;
    let line = head.slice(pos, eol);
    if (line.includes('\r') || line.includes('\n')) {
      // Every such line is cleaned, not only the first: a value is echoed in the 400's headers.
      problem ??= `line ${lines.length + 1} holds a CR or LF that does not end it`;
      line = line.replace(/[\r\n]/g, ' ');
    }
    const first = line.charCodeAt(0);
    if (lines.length > 0 && (first === SP || first === HT)) {
      lines[lines.length - 1] += ' ' + line.trim();
    } else {
      lines.push(line);
    }
    pos = eol + 2;
  }
  return { lines, problem };
}

type StartLine = Pick<Message, 'method' | 'uri' | 'status' | 'reason' | 'version'>;

/** `METHOD SP Request-URI SP SIP/x.y` or `SIP/x.y SP code SP reason`. */
function parseStartLine(line: string): StartLine | undefined {
  const sp1 = line.indexOf(' ');
  if (sp1 <= 0) return undefined;
  const first = line.slice(0, sp1);
  if (first.startsWith('SIP/')) {
    const version = versionOf(first);
    const sp2 = line.indexOf(' ', sp1 + 1);
    const code = line.slice(sp1 + 1, sp2 < 0 ? line.length : sp2);
    if (version === undefined || !/^[1-6]\d\d$/.test(code)) return undefined;
    return { version, status: +code, reason: sp2 < 0 ? '' : line.slice(sp2 + 1) };
  }
  for (let i = 0; i < first.length; i++) if (!isToken(first.charCodeAt(i))) return undefined;
  const sp2 = line.indexOf(' ', sp1 + 1);
  if (sp2 < 0) return undefined;
  const uri = line.slice(sp1 + 1, sp2);
  if (uri === '' || /\s/.test(uri)) return undefined;
  const version = versionOf(line.slice(sp2 + 1));
  if (version === undefined) return undefined;
  return { method: first, uri, version };
}

function versionOf(s: string): string | undefined {
  const m = /^SIP\/(\d{1,3}\.\d{1,3})$/.exec(s);
  return m ? m[1] : undefined;
}

function addHeader(headers: Headers, name: string, value: string): void {
  // Names that would reach Object.prototype through `headers[name]`.
  if (name === '__proto__' || name === 'constructor' || name === 'prototype') {
    throw new Problem('not a header name we accept');
  }
  const before = headers[name];
  if (before !== undefined && SINGLE.has(name)) throw new Problem('header repeated');
  switch (name) {
    case 'via':
      (headers.via ??= []).push(...listOf(value, parseVia));
      return;
    case 'to':
    case 'from':
      headers[name] = parseAor(new Cursor(value), true);
      return;
    case 'contact':
      if (before === undefined) headers.contact = [];
      (headers.contact as Aor[]).push(...listOf(value, (c) => parseAor(c, false)));
      return;
    case 'cseq':
      headers.cseq = parseCSeq(value);
      return;
    case 'content-length':
      headers['content-length'] = +value;
      return;
    case 'www-authenticate':
    case 'proxy-authenticate':
      // One challenge per line, kept apart: challenges contain commas themselves.
      if (before === undefined) headers[name] = [];
      (headers[name] as string[]).push(value);
      return;
    default:
      // Repeated headers of other names read as one comma-separated list (RFC 3261 7.3.1).
      // Only this branch writes these names, so an earlier value is a string.
      headers[name] = before === undefined ? value : `${before as string},${value}`;
  }
}

/** A comma-separated list of items (Via, Contact): each item parser stops at its comma. */
function listOf<T>(value: string, item: (c: Cursor) => T): T[] {
  const cur = new Cursor(value);
  const out: T[] = [];
  for (;;) {
    cur.skipSpace();
    out.push(item(cur));
    cur.skipSpace();
    if (cur.done) return out;
    cur.expect(0x2c, `unexpected ${JSON.stringify(value[cur.i])} at character ${cur.i + 1}`);
  }
}

/** `SIP / 2.0 / UDP host [: port] *(;param)` (RFC 3261 20.42), whitespace allowed around separators. */
function parseVia(cur: Cursor): Via {
  const protocolName = cur.run(TOKEN_CHARS);
  if (protocolName.toUpperCase() !== 'SIP') throw new Problem('expected SIP/2.0/transport');
  cur.skipSpace();
  cur.expect(0x2f, 'expected SIP/2.0/transport');
  cur.skipSpace();
  const version = cur.run(TOKEN_CHARS);
  cur.skipSpace();
  cur.expect(0x2f, 'expected SIP/2.0/transport');
  cur.skipSpace();
  const protocol = cur.run(TOKEN_CHARS);
  if (!/^\d+\.\d+$/.test(version) || protocol === '') throw new Problem('expected SIP/2.0/transport');
  const spaced = cur.i;
  cur.skipSpace();
  if (cur.i === spaced) throw new Problem('expected a space before sent-by');
  const host = parseHost(cur);
  cur.skipSpace();
  let port: number | undefined;
  if (cur.peek() === 0x3a) {
    cur.i++;
    cur.skipSpace();
    const digits = cur.run(DIGITS);
    if (digits === '' || digits.length > 5) throw new Problem('bad port in sent-by');
    port = +digits;
  }
  return { version, protocol, host, port, params: parseParams(cur) };
}

const DIGITS = new Uint8Array(256);
for (const c of '0123456789') DIGITS[c.charCodeAt(0)] = 1;

function parseHost(cur: Cursor): string {
  if (cur.peek() === 0x5b) {
    const from = cur.i;
    const close = cur.s.indexOf(']', from);
    if (close < 0 || !/^\[[0-9A-Fa-f:.]+\]$/.test(cur.s.slice(from, close + 1))) throw new Problem('bad IPv6 host');
    cur.i = close + 1;
    return cur.s.slice(from, cur.i);
  }
  const host = cur.run(HOST_CHARS);
  if (host === '') throw new Problem('missing host');
  return host;
}

/** `*( LWS ; LWS name [ LWS = LWS (token | quoted-string) ] )`; names lowercased as `sip` does. */
function parseParams(cur: Cursor): Record<string, string | undefined> {
  const params: Record<string, string | undefined> = {};
  for (;;) {
    const before = cur.i;
    cur.skipSpace();
    if (cur.peek() !== 0x3b) {
      cur.i = before;
      return params;
    }
    cur.i++;
    cur.skipSpace();
    const name = cur.run(TOKEN_CHARS).toLowerCase();
    if (name === '') throw new Problem('empty parameter name');
    if (name === '__proto__') throw new Problem('parameter name __proto__');
    const afterName = cur.i;
    cur.skipSpace();
    if (cur.peek() === 0x3d) {
      cur.i++;
      cur.skipSpace();
      const value = cur.peek() === DQUOTE ? cur.quoted() : cur.run(PARAM_VALUE_CHARS);
      if (value === '') throw new Problem(`parameter ${name} has an empty value`);
      params[name] = value;
    } else {
      cur.i = afterName;
      params[name] = null as unknown as undefined; // `sip` keeps a valueless parameter as null
    }
  }
}

/**
 * name-addr (`["display name"] <uri> *params`) or addr-spec (`uri *params`, RFC 3261 20.10).
 * The URI is kept as text, as `sip` keeps it. `single`: the whole value is one AOR (To, From);
 * otherwise a comma ends it (Contact lists).
 */
function parseAor(cur: Cursor, single: boolean): Aor {
  const start = cur.i;
  let name: string | undefined;
  if (cur.peek() === DQUOTE) {
    name = cur.quoted();
    cur.skipSpace();
    if (cur.peek() !== 0x3c) throw new Problem('expected <URI> after the display name');
  } else {
    // Display-name tokens up to '<'; anything else means there is no '<' form here.
    while (isToken(cur.peek()) || isSpace(cur.peek())) cur.i++;
    if (cur.peek() === 0x3c) {
      const text = cur.s.slice(start, cur.i).trim();
      name = text === '' ? undefined : text;
    } else {
      cur.i = start;
    }
  }
  let uri: string;
  if (cur.peek() === 0x3c) {
    cur.i++;
    const close = cur.s.indexOf('>', cur.i);
    if (close < 0) throw new Problem('"<" without ">"');
    uri = cur.s.slice(cur.i, close);
    if (uri === '') throw new Problem('empty <>');
    if (/\s/.test(uri)) throw new Problem('whitespace inside <...>');
    cur.i = close + 1;
  } else {
    const from = cur.i;
    while (!cur.done) {
      const c = cur.peek();
      if (c === 0x3b || c === SP || c === HT || c === 0x3c || c === 0x3e || c === DQUOTE || (!single && c === 0x2c)) {
        break;
      }
      cur.i++;
    }
    uri = cur.s.slice(from, cur.i);
    if (uri === '') throw new Problem('missing URI');
  }
  const params = parseParams(cur);
  if (single) {
    cur.skipSpace();
    if (!cur.done) throw new Problem(`unexpected ${JSON.stringify(cur.s[cur.i])} after the address`);
  }
  return { name, uri, params };
}

/** `number LWS method` (RFC 3261 20.16). */
function parseCSeq(value: string): { seq: number; method: string } {
  const cur = new Cursor(value);
  const digits = cur.run(DIGITS);
  if (digits === '' || digits.length > 10) throw new Problem('expected "number METHOD"');
  cur.skipSpace();
  const method = cur.run(TOKEN_CHARS);
  cur.skipSpace();
  if (method === '' || !cur.done) throw new Problem('expected "number METHOD"');
  return { seq: +digits, method };
}
