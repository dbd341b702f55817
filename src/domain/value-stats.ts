/**
 * Single-pass readers of a record list (`us,value;us,value...`, as the body grammar accepted it): the
 * per-batch statistics that ingest stores with each batch, and the samples that raw queries return.
 *
 * A value is read without slicing: a plain decimal of at most 15 digits is digits / 10^fraction-digits,
 * the correctly rounded quotient of two exact doubles, which is the same double as Number(text) gives (both
 * are the decimal's nearest double); anything else (an exponent, more digits) goes through Number(). A
 * record whose `us` is not digits followed by a comma (a damaged row) is skipped.
 */

/** count, sum, min and max of a batch's records, and where (µs into its second) its maximum first occurs. */
export interface ValueStats {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** µs offset of the first record holding max. */
  max_us: number;
}

/** Powers of ten that are exact doubles (10^0..10^22). */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

const DIGIT_0 = 48;
const DIGIT_9 = 57;
const COMMA = 44;
const SEMICOLON = 59;
const DOT = 46;
const MINUS = 45;
const PLUS = 43;
const NEWLINE = 10;

/**
 * Calls `fn` for each record of a record list, in order: one pass over its characters. Every read is
 * bounds-checked (charCodeAt past the end is NaN, which deoptimises the loop).
 */
export function forEachRecord(records: string, fn: (us: number, value: number) => void): void {
  const n = records.length;
  let i = 0;
  while (i < n) {
    let us = 0;
    let c = records.charCodeAt(i);
    const usStart = i;
    while (c >= DIGIT_0 && c <= DIGIT_9) {
      us = us * 10 + (c - DIGIT_0);
      c = ++i < n ? records.charCodeAt(i) : 0;
    }
    if (c !== COMMA || i === usStart) {
      const semi = records.indexOf(';', i);
      i = semi < 0 ? n : semi + 1;
      continue;
    }
    const start = ++i;
    c = i < n ? records.charCodeAt(i) : 0;
    const negative = c === MINUS;
    if (negative || c === PLUS) c = ++i < n ? records.charCodeAt(i) : 0;
    let mantissa = 0;
    let digits = 0;
    let fraction = 0;
    let dot = false;
    for (;;) {
      if (c >= DIGIT_0 && c <= DIGIT_9) {
        mantissa = mantissa * 10 + (c - DIGIT_0);
        digits++;
        if (dot) fraction++;
      } else if (c === DOT && !dot) dot = true;
      else break;
      c = ++i < n ? records.charCodeAt(i) : 0;
    }
    let end = i;
    if (c !== SEMICOLON && i < n) {
      const semi = records.indexOf(';', i);
      end = semi < 0 ? n : semi;
    }
    if (end === i && digits > 0 && digits <= 15 && fraction <= 22) {
      const v = mantissa / POW10[fraction]!;
      fn(us, negative ? -v : v);
    } else fn(us, Number(records.slice(start, end)));
    i = end + 1;
  }
}

/** The statistics of one record list (count 0, min/max NaN when it holds no record). */
export function valueStats(records: string): ValueStats {
  const s: ValueStats = { count: 0, sum: 0, min: NaN, max: NaN, max_us: 0 };
  forEachRecord(records, (us, v) => {
    if (s.count === 0 || v < s.min) s.min = v;
    if (s.count === 0 || v > s.max) {
      s.max = v;
      s.max_us = us;
    }
    s.sum += v;
    s.count++;
  });
  return s;
}

/**
 * valueStats of `records` read from its latin1 bytes (`bytes[0..n)`, an ASCII string written there, with
 * bytes[n] === 0 as the end mark), rewriting each `;` to `\n` on the way: the bytes the checksum hashes
 * (batch.ts, recordsChecksumWithStats). Ingest computes the statistics here, in the checksum's own pass over
 * the record list, at about a third of what a separate pass over the string costs (docs/performance.md).
 */
export function statsRewritingSeparators(bytes: Uint8Array, n: number, records: string): ValueStats {
  let count = 0;
  let sum = 0;
  let min = NaN;
  let max = NaN;
  let maxUs = 0;
  let i = 0;
  while (i < n) {
    let us = 0;
    let c = bytes[i]!;
    const usStart = i;
    while (c >= DIGIT_0 && c <= DIGIT_9) {
      us = us * 10 + (c - DIGIT_0);
      c = bytes[++i]!; // stops at the end mark at the latest
    }
    if (c !== COMMA || i === usStart) {
      while (i < n && bytes[i] !== SEMICOLON) i++;
      if (i < n) bytes[i] = NEWLINE;
      i++;
      continue;
    }
    const start = ++i;
    c = bytes[i]!;
    const negative = c === MINUS;
    if (negative || c === PLUS) c = bytes[++i]!;
    let mantissa = 0;
    let digits = 0;
    let fraction = 0;
    let dot = false;
    for (;;) {
      if (c >= DIGIT_0 && c <= DIGIT_9) {
        mantissa = mantissa * 10 + (c - DIGIT_0);
        digits++;
        if (dot) fraction++;
      } else if (c === DOT && !dot) dot = true;
      else break;
      c = bytes[++i]!;
    }
    let end = i;
    while (end < n && bytes[end] !== SEMICOLON) end++;
    let v: number;
    if (end === i && digits > 0 && digits <= 15 && fraction <= 22) {
      v = mantissa / POW10[fraction]!;
      if (negative) v = -v;
    } else v = Number(records.slice(start, end));
    if (count === 0 || v < min) min = v;
    if (count === 0 || v > max) {
      max = v;
      maxUs = us;
    }
    sum += v;
    count++;
    if (end < n) bytes[end] = NEWLINE;
    i = end + 1;
  }
  return { count, sum, min, max, max_us: maxUs };
}
