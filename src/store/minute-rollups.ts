import { coarsen, emptyBucket, secondBuckets, type BatchAggregate, type Bucket } from '../domain/sample-stats.js';
import type { CheckStatus } from './consumption-store.js';
import type { DaySlice } from './day-slices.js';

/**
 * Minute rollups (`ec_rollup_minute`): per device and minute, the count, sum, min, max (and when) of its
 * samples and how many of its seconds hold data. They are written when sync records a period as verified or
 * repaired (the store's writeIntervalCheck), from the batches' aggregates, for every minute of the period,
 * empty ones included: a row then means "this minute is final", and a query over a day of a 1 kHz meter
 * reads ~1,440 rows instead of 86,400 batches. A later repair of the period writes them again.
 */

/** Sync statuses after which a period's data is final (the client's and the server's digests agree). */
export const FINAL_STATUSES: ReadonlySet<CheckStatus> = new Set<CheckStatus>(['verified', 'repaired']);

/** Every minute of [from, to) (epoch seconds, minute aligned) from the batches' aggregates, empty minutes too. */
export function minuteRollups(aggregates: readonly BatchAggregate[], from: number, to: number): Bucket[] {
  const filled = new Map(coarsen(secondBuckets(aggregates), 60_000).map((b) => [b.t, b]));
  const out: Bucket[] = [];
  for (let m = from - (from % 60); m < to; m += 60) out.push(filled.get(m * 1000) ?? emptyBucket(m * 1000));
  return out;
}

/** The `ec_minute` (hhmm) bounds [lo, hi) of the minutes that start within a day slice. */
export function minuteBounds(s: DaySlice): { lo: string; hi: string } {
  const ceil = (hhmmss: string): string => {
    const h = Number(hhmmss.slice(0, 2));
    const m = Number(hhmmss.slice(2, 4)) + (hhmmss.endsWith('00') ? 0 : 1);
    const minutes = h * 60 + m;
    return `${String(Math.floor(minutes / 60)).padStart(2, '0')}${String(minutes % 60).padStart(2, '0')}`;
  };
  return { lo: ceil(s.fromTime), hi: ceil(s.toTime) };
}

/** A stored rollup row's columns (both backends). */
export interface RollupRow {
  ec_date: string;
  ec_minute: string;
  samples: number;
  values_sum: number;
  values_min: number | null;
  values_max: number | null;
  max_at: number | null;
  seconds: number;
}

export function rollupRow(b: Bucket): RollupRow {
  const iso = new Date(b.t).toISOString();
  const has = b.count > 0;
  return {
    ec_date: iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10),
    ec_minute: iso.slice(11, 13) + iso.slice(14, 16),
    samples: b.count,
    values_sum: b.sum,
    values_min: has ? b.min : null,
    values_max: has ? b.max : null,
    max_at: has ? b.max_at : null,
    seconds: b.seconds,
  };
}

export function bucketOfRow(r: RollupRow): Bucket {
  const d = r.ec_date;
  const t = Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8)));
  const minute = Number(r.ec_minute.slice(0, 2)) * 60 + Number(r.ec_minute.slice(2, 4));
  return {
    t: t + minute * 60_000,
    count: Number(r.samples),
    sum: Number(r.values_sum),
    min: r.values_min === null ? NaN : Number(r.values_min),
    max: r.values_max === null ? NaN : Number(r.values_max),
    max_at: r.max_at === null ? 0 : Number(r.max_at),
    seconds: Number(r.seconds),
  };
}
