import { batchEpochSecond, type Batch, type BatchKey } from './batch.js';

/**
 * Calls `fn` for each record of a stored record list (`us,value;us,value...`, as the body grammar
 * accepted it), in order. Linear: one indexOf per separator. A record without a comma (a damaged
 * row) is skipped.
 */
export function forEachRecord(records: string, fn: (us: number, value: number) => void): void {
  const n = records.length;
  let at = 0;
  while (at < n) {
    let semi = records.indexOf(';', at);
    if (semi < 0) semi = n;
    const comma = records.indexOf(',', at);
    if (comma > at && comma < semi) fn(Number(records.slice(at, comma)), Number(records.slice(comma + 1, semi)));
    at = semi + 1;
  }
}

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

/**
 * The statistics of one record list (count 0, min/max NaN when it holds no record). It runs at ingest for
 * every batch, so it reads the characters once without slicing: a plain decimal of at most 15 digits is
 * digits / 10^fraction-digits, the correctly rounded quotient of two exact doubles, which is the same double
 * as Number(text) gives (both are the decimal's nearest double); anything else (an exponent, more digits)
 * goes through Number().
 */
export function valueStats(records: string): ValueStats {
  let count = 0;
  let sum = 0;
  let min = NaN;
  let max = NaN;
  let maxUs = 0;
  const n = records.length;
  let i = 0;
  while (i < n) {
    let us = 0;
    let c = records.charCodeAt(i);
    const usStart = i;
    while (c >= 48 && c <= 57) {
      us = us * 10 + (c - 48);
      c = records.charCodeAt(++i);
    }
    const semi = records.indexOf(';', i);
    const end = semi < 0 ? n : semi;
    if (c !== 44 || i === usStart) {
      i = end + 1; // a record without `us,` (a damaged row): skipped, as forEachRecord does
      continue;
    }
    const start = ++i;
    c = records.charCodeAt(i);
    const negative = c === 45;
    if (negative || c === 43) c = records.charCodeAt(++i);
    let mantissa = 0;
    let digits = 0;
    let fraction = 0;
    let dot = false;
    for (;;) {
      if (c >= 48 && c <= 57) {
        mantissa = mantissa * 10 + (c - 48);
        digits++;
        if (dot) fraction++;
      } else if (c === 46 && !dot) dot = true;
      else break;
      c = records.charCodeAt(++i);
    }
    let v: number;
    if (i === end && digits > 0 && digits <= 15 && fraction <= 22) {
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
    i = end + 1;
  }
  return { count, sum, min, max, max_us: maxUs };
}

/** A batch's key with the statistics of its records: what consumption queries add up, never the samples. */
export type BatchAggregate = BatchKey & ValueStats;

export function batchAggregate(b: Batch): BatchAggregate {
  return {
    device_id: b.device_id,
    ec_date: b.ec_date,
    ec_time: b.ec_time,
    start_us: b.start_us,
    end_us: b.end_us,
    ...valueStats(b.ec_consumption_values),
  };
}

/**
 * Statistics of a time bucket (a second, a minute, an hour, a day): `t` its start in epoch ms,
 * `max_at` when (epoch ms) its maximum first occurs, `seconds` how many of its seconds hold data.
 */
export interface Bucket {
  t: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  max_at: number;
  seconds: number;
}

export function emptyBucket(t: number): Bucket {
  return { t, count: 0, sum: 0, min: NaN, max: NaN, max_at: 0, seconds: 0 };
}

/** Adds `b` into `into` (b later in time than what `into` holds: ties of max keep the earlier). */
export function addBucket(into: Bucket, b: Omit<Bucket, 't'>): void {
  if (b.count === 0) return;
  if (into.count === 0 || b.min < into.min) into.min = b.min;
  if (into.count === 0 || b.max > into.max) {
    into.max = b.max;
    into.max_at = b.max_at;
  }
  into.count += b.count;
  into.sum += b.sum;
  into.seconds += b.seconds;
}

/**
 * Batch aggregates (in key order) added up per second: one bucket per second with data. A second
 * holding several sub-second batches is one bucket.
 */
export function secondBuckets(aggregates: Iterable<BatchAggregate>): Bucket[] {
  const out: Bucket[] = [];
  let current: Bucket | undefined;
  for (const a of aggregates) {
    if (a.count === 0) continue;
    const sec = batchEpochSecond(a);
    if (current?.t !== sec * 1000) {
      current = emptyBucket(sec * 1000);
      current.seconds = 1;
      out.push(current);
    }
    addBucket(current, { ...a, max_at: sec * 1000 + a.max_us / 1000, seconds: 0 });
  }
  return out;
}

/** Buckets (ascending t) merged into buckets of `stepMs` aligned to the epoch (UTC days for a day). */
export function coarsen(buckets: Iterable<Bucket>, stepMs: number): Bucket[] {
  const out: Bucket[] = [];
  let current: Bucket | undefined;
  for (const b of buckets) {
    const t = b.t - (b.t % stepMs);
    if (current?.t !== t) {
      current = emptyBucket(t);
      out.push(current);
    }
    addBucket(current, b);
  }
  return out;
}
