import { batchEpochSecond } from '../domain/batch.js';
import { coarsen, emptyBucket, addBucket, readRecords, secondBuckets, type Bucket } from '../domain/sample-stats.js';
import type { CheckStatus, ConsumptionStore, IntervalCheck } from '../store/consumption-store.js';
import { FINAL_STATUSES } from '../store/minute-rollups.js';
import { DAY_MS, STEP_MS, type Step } from './query-params.js';

/** Seconds of batches read at a time for raw samples: 10 s of a 1 kHz meter is ~170 kB of record text. */
const RAW_CHUNK_S = 10;
/** Seconds of batch aggregates read at a time (one small row per batch). */
const AGGREGATE_CHUNK_S = 3600;

/** Raw samples of one read: times (epoch ms, µs precision) and values, ascending. */
export interface RawChunk {
  t: number[];
  value: number[];
}

/** A sync period as GET /api/devices/:id/sync lists it. */
export interface SyncPeriod {
  /** Epoch ms. */
  start: number;
  end: number;
  status: CheckStatus;
  /** When it was last checked, epoch ms, and how many times. */
  checked_at: number;
  checks: number;
}

/** One UTC day of a device (GET /api/devices/:id/daily, `ec-server daily`). */
export interface DayStats {
  day: string;
  total: number;
  mean: number | null;
  peak: number | null;
  peak_at: number | null;
  min: number | null;
  samples: number;
  /** Share of the day's seconds that hold data, 0..1. */
  coverage: number;
  /** The worst status of the day's sync periods; 'unchecked' when sync checked none. */
  sync_status: CheckStatus | 'unchecked';
}

/** Worst first: a day's status is the worst of its periods'. */
const STATUS_ORDER: readonly CheckStatus[] = ['mismatch-unresolved', 'pending', 'repaired', 'verified'];

/**
 * The read side's queries over a store: buckets of any step, raw samples, daily statistics and sync periods.
 * Everything is read one UTC day (or less) at a time and yielded as it is read, so memory stays bounded for
 * any span; buckets never straddle a day, since every step divides a day.
 */
export class ConsumptionQuery {
  constructor(private readonly store: ConsumptionStore) {}

  /** Buckets of `step` in [from, to) (epoch ms, whole buckets), ascending; buckets without data are omitted. */
  async *buckets(device: string, step: Exclude<Step, 'raw'>, from: number, to: number): AsyncGenerator<Bucket[]> {
    const stepMs = STEP_MS[step];
    for (let day = from; day < to; day = nextDay(day)) {
      const end = Math.min(nextDay(day), to);
      if (step === '1s') {
        for (let s = day; s < end; s += AGGREGATE_CHUNK_S * 1000) {
          yield await this.seconds(device, s / 1000, Math.min(end, s + AGGREGATE_CHUNK_S * 1000) / 1000);
        }
      } else {
        yield coarsen(await this.minutes(device, day / 1000, end / 1000), stepMs);
      }
    }
  }

  /** Raw samples with t in [from, to) (epoch ms), ascending, a minute of batches at a time. */
  async *raw(device: string, from: number, to: number): AsyncGenerator<RawChunk> {
    const fromS = Math.floor(from / 1000);
    const toS = Math.ceil(to / 1000);
    for (let s = fromS; s < toS; s += RAW_CHUNK_S) {
      const batches = await this.store.readBatches({ device_id: device, from: s, to: Math.min(toS, s + RAW_CHUNK_S) });
      const chunk: RawChunk = { t: [], value: [] };
      const records = { us: [] as number[], value: [] as number[] };
      for (const b of batches) {
        const base = batchEpochSecond(b) * 1000;
        records.us.length = 0;
        records.value.length = 0;
        readRecords(b.ec_consumption_values, records); // one pass over its bytes (domain/value-stats.ts)
        for (let k = 0; k < records.us.length; k++) {
          const t = base + records.us[k]! / 1000;
          if (t >= from && t < to) {
            chunk.t.push(t);
            chunk.value.push(records.value[k]!);
          }
        }
      }
      // Sub-second batches of one second are in key order (start_us), which is time order unless they overlap.
      if (!isAscending(chunk.t)) sortTogether(chunk);
      if (chunk.t.length > 0) yield chunk;
    }
  }

  /** One entry per UTC day in [from, to) (whole days, epoch ms), days without data included. */
  async *daily(device: string, from: number, to: number): AsyncGenerator<DayStats> {
    for (let day = from; day < to; day = nextDay(day)) {
      const end = Math.min(nextDay(day), to);
      const total = emptyBucket(day);
      for (const m of await this.minutes(device, day / 1000, end / 1000)) addBucket(total, m);
      const checks = topLevel(
        await this.store.readIntervalChecks({ device_id: device, from: day / 1000, to: end / 1000 }),
      );
      const has = total.count > 0;
      yield {
        day: new Date(day).toISOString().slice(0, 10),
        total: total.sum,
        mean: has ? total.sum / total.count : null,
        peak: has ? total.max : null,
        peak_at: has ? total.max_at : null,
        min: has ? total.min : null,
        samples: total.count,
        coverage: total.seconds / ((end - day) / 1000),
        sync_status: STATUS_ORDER.find((s) => checks.some((c) => c.status === s)) ?? 'unchecked',
      };
    }
  }

  /** Sync periods starting in [from, to) (epoch ms), ascending; minute checks inside a listed period left out. */
  async *sync(device: string, from: number, to: number): AsyncGenerator<SyncPeriod[]> {
    const fromS = Math.floor(from / 1000);
    const toS = Math.ceil(to / 1000);
    for (let s = fromS; s < toS; s = Math.min(toS, (Math.floor(s / 86_400) + 1) * 86_400)) {
      const end = Math.min(toS, (Math.floor(s / 86_400) + 1) * 86_400);
      const checks = topLevel(await this.store.readIntervalChecks({ device_id: device, from: s, to: end }));
      yield checks.map((c) => {
        const start = batchEpochSecond(c) * 1000;
        return {
          start,
          end: start + c.interval_seconds * 1000,
          status: c.status,
          checked_at: c.check_time,
          checks: c.check_times,
        };
      });
    }
  }

  /** Per-second buckets of [from, to) (epoch seconds, within one day). */
  private async seconds(device: string, from: number, to: number): Promise<Bucket[]> {
    return secondBuckets(await this.store.readBatchAggregates({ device_id: device, from, to }));
  }

  /**
   * Per-minute buckets of [from, to) (epoch seconds, minute aligned, within one day): the minute rollups of
   * periods sync has verified or repaired, and for the other minutes (the open period, unchecked ones) the
   * batches' aggregates added up on the fly. A rollup row without such a check (written just before a crash)
   * is not used.
   */
  private async minutes(device: string, from: number, to: number): Promise<Bucket[]> {
    const range = { device_id: device, from, to };
    const dayStart = from - (from % 86_400);
    const checks = await this.store.readIntervalChecks({ device_id: device, from: dayStart, to });
    const final = new Set<number>();
    for (const c of checks) {
      if (!FINAL_STATUSES.has(c.status)) continue;
      const start = batchEpochSecond(c);
      for (let m = start; m < start + c.interval_seconds; m += 60) final.add(m);
    }
    const rolled = new Map<number, Bucket>();
    if (final.size > 0) {
      for (const r of await this.store.readMinuteRollups(range)) if (final.has(r.t / 1000)) rolled.set(r.t / 1000, r);
    }
    const out: Bucket[] = [];
    let open: number | undefined;
    const flush = async (end: number) => {
      for (let s = open!; s < end; s += AGGREGATE_CHUNK_S)
        out.push(...(await this.fromBatches(device, s, Math.min(end, s + AGGREGATE_CHUNK_S))));
      open = undefined;
    };
    for (let m = from; m < to; m += 60) {
      const r = rolled.get(m);
      if (r === undefined) {
        open ??= m;
        continue;
      }
      if (open !== undefined) await flush(m);
      if (r.count > 0) out.push(r);
    }
    if (open !== undefined) await flush(to);
    return out;
  }

  /** Per-minute buckets of [from, to) added up from the batches' aggregates. */
  private async fromBatches(device: string, from: number, to: number): Promise<Bucket[]> {
    return coarsen(await this.seconds(device, from, to), 60_000);
  }
}

function nextDay(ms: number): number {
  return (Math.floor(ms / DAY_MS) + 1) * DAY_MS;
}

/** Checks not inside a longer check of the list (the sync periods, without the minutes of a repaired one). */
function topLevel(checks: IntervalCheck[]): IntervalCheck[] {
  const spans = checks.map((c) => {
    const start = batchEpochSecond(c);
    return { c, start, end: start + c.interval_seconds };
  });
  return spans
    .filter(
      (a) => !spans.some((b) => b !== a && b.start <= a.start && b.end >= a.end && b.end - b.start > a.end - a.start),
    )
    .sort((a, b) => a.start - b.start || b.end - a.end)
    .map((a) => a.c);
}

function isAscending(t: number[]): boolean {
  for (let i = 1; i < t.length; i++) if (t[i]! < t[i - 1]!) return false;
  return true;
}

function sortTogether(chunk: RawChunk): void {
  const order = chunk.t.map((_, i) => i).sort((a, b) => chunk.t[a]! - chunk.t[b]!);
  chunk.t = order.map((i) => chunk.t[i]!);
  chunk.value = order.map((i) => chunk.value[i]!);
}
