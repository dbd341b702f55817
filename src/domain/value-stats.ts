import { writeLatin1 } from '../latin1.js';

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

/** Where readRecords appends each record's µs offset and value, in order. */
export interface RecordColumns {
  us: number[];
  value: number[];
}

/**
 * The statistics of a record list (count 0, min/max NaN when it holds no record), and, given `into`, each of
 * its records appended there: one pass over its latin1 bytes.
 */
export function readRecords(records: string, into?: RecordColumns): ValueStats {
  scratch = recordBytes(records, scratch);
  return scanRecordBytes(scratch, records.length, records, into);
}

/** The statistics of one record list (count 0, min/max NaN when it holds no record). */
export function valueStats(records: string): ValueStats {
  return readRecords(records);
}

/** Reused by readRecords: everything that reads it runs synchronously, without a callback. */
let scratch: Buffer = Buffer.allocUnsafe(64 * 1024);

/**
 * `records` as latin1 bytes at into[0..n) (`into` itself, or a larger buffer when it is too short) and a 0
 * at [n], the end mark scanRecordBytes stops at. A character above U+00FF (no body can hold one) is written
 * as 'x', so that its low byte cannot pass for a digit or a separator; the index of every character is kept.
 */
export function recordBytes(records: string, into: Buffer, knownAscii = false): Buffer {
  const n = records.length;
  const bytes: Buffer = into.length > n ? into : Buffer.allocUnsafe(Math.max(n + 1, 2 * into.length));
  const ascii = knownAscii || Buffer.byteLength(records, 'utf8') === n;
  const text = ascii ? records : records.replace(/[\u0100-\uffff]/g, 'x');
  writeLatin1(bytes, text, 0);
  bytes[n] = 0;
  return bytes;
}

/**
 * readRecords over the bytes recordBytes wrote, which it changes on the way: each `;` becomes `\n`, the bytes
 * the checksum hashes (batch.ts, recordsChecksumWithStats). So ingest reads the statistics in the checksum's
 * own pass over the record list, at a fraction of a separate pass's cost (docs/performance.md).
 */
export function scanRecordBytes(bytes: Uint8Array, n: number, records: string, into?: RecordColumns): ValueStats {
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
    if (into) {
      into.us.push(us);
      into.value.push(v);
    }
    if (end < n) bytes[end] = NEWLINE;
    i = end + 1;
  }
  return { count, sum, min, max, max_us: maxUs };
}
