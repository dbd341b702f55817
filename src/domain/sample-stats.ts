import { batchEpochSecond, type Batch, type BatchKey } from './batch.js';
import { valueStats, type ValueStats } from './value-stats.js';

export { readRecords, valueStats, type RecordColumns, type ValueStats } from './value-stats.js';

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
