import type { Logger } from 'pino';
import {
  batchKeyString,
  compactToEpochSecond,
  epochSecondToParts,
  recordsChecksum,
  type Batch,
  type BatchKey,
} from '../domain/batch.js';
import { parseBatchBody } from '../domain/batch-body.js';
import type { ValueStats } from '../domain/value-stats.js';
import type { CheckStatus, ConsumptionStore, IntervalCheck, IntervalSummary } from '../store/consumption-store.js';
import { peerText } from './peer-text.js';
import { MAX_BATCHES_PER_REQUEST, type WireBatch, type WireSummary } from './sync-protocol.js';

/** What the server can ask of a client about one device (implemented over a SyncConnection). */
export interface SyncPeer {
  digest(device: string, from: number, to: number, interval: number): Promise<DigestAnswer>;
  summaries(device: string, from: number, to: number): Promise<WireSummary[]>;
  batches(device: string, keys: BatchKey[]): Promise<WireBatch[]>;
}

/** A digest answer: the intervals, and the meter's watermark when it sends one (docs/sync-protocol.md). */
export interface DigestAnswer {
  intervals: IntervalSummary[];
  /**
   * Epoch second before which the meter will journal nothing more (what it declares final); undefined when
   * the meter does not say (an older meter).
   */
  final?: number;
}

export interface PeriodResult {
  device: string;
  from: number;
  to: number;
  status: CheckStatus;
  /** Minutes whose digests differed. */
  minutesDiffering: number;
  /** Batches fetched from the client and upserted. */
  repaired: number;
  /** Batches the server has and the client does not know. */
  extraneous: string[];
  deleted: number;
  /**
   * Items of the client's answers dropped unused: digest entries outside the asked range, summaries
   * outside the asked minute, batches not asked for or not matching their own checksum.
   */
  rejected: number;
  /** Exchanges made with the client for this period. */
  exchanges: number;
  /**
   * The period ends after the meter's watermark: it may still journal into it, so nothing was compared or
   * recorded (status 'pending'); the periods after it are not final either.
   */
  beyondFinal: boolean;
}

export interface ReconcileOptions {
  deleteExtraneous: boolean;
  /**
   * The watermark to use when the meter's answers carry none: its hello's, or for a meter that sends none
   * at all, the server's clock minus sync.unwatermarked_lag.
   */
  fallbackFinal: () => number;
  now: () => number;
  log: Logger;
}

const MINUTE = 60;

/**
 * Hierarchical reconciliation of one device over one period [from, to):
 * period digest -> (only if different) minute digests -> (only for differing minutes) batch
 * summaries -> fetch exactly the missing or mismatching batches -> upsert -> verify again.
 * A clean period costs one digest exchange. Results go to ec_checksum: the period row always,
 * minute rows when the period differed. A 'pending' row is written before any repair so that an
 * interrupted repair is never left unrecorded.
 */
export async function reconcilePeriod(
  store: ConsumptionStore,
  peer: SyncPeer,
  device: string,
  from: number,
  to: number,
  o: ReconcileOptions,
): Promise<PeriodResult> {
  // Never record a period that has not ended as checked: it would read as verified once it has.
  if (to > o.now()) throw new Error(`period ending ${new Date(to * 1000).toISOString()} has not ended yet`);
  const period = to - from;
  const range = { device_id: device, from, to };
  const result: PeriodResult = {
    device,
    from,
    to,
    status: 'verified',
    minutesDiffering: 0,
    repaired: 0,
    extraneous: [],
    deleted: 0,
    rejected: 0,
    exchanges: 0,
    beyondFinal: false,
  };
  // What the client says is only believed within what it was asked: everything else is dropped.
  const reject = (what: string, item: unknown) => {
    result.rejected++;
    if (result.rejected <= 10) {
      o.log.warn({ device, from, what, item: peerText(JSON.stringify(item)) }, 'sync: client answer dropped');
    }
  };
  // The meter's watermark: the lowest it declared during this check (a replay started meanwhile lowers it).
  let final = Infinity;
  let declared = true;
  const theirDigests = async (interval: number) => {
    const answer = await peer.digest(device, from, to, interval);
    const f = (answer as { final?: unknown }).final;
    if (typeof f === 'number' && Number.isSafeInteger(f)) final = Math.min(final, f);
    else {
      declared = false;
      final = Math.min(final, o.fallbackFinal());
    }
    return byStart(inRange(answer.intervals, from, to, interval, reject));
  };
  const previous = await store.readIntervalChecks(range);
  const timesOf = (start: number, interval: number) => {
    const p = epochSecondToParts(start);
    return (
      previous.find((c) => c.ec_time === p.ec_time && c.ec_date === p.ec_date && c.interval_seconds === interval)
        ?.check_times ?? 0
    );
  };
  const record = (start: number, interval: number, ours: IntervalSummary | undefined, status: CheckStatus) =>
    store.writeIntervalCheck({
      device_id: device,
      ...epochSecondToParts(start),
      interval_seconds: interval,
      values_count: ours?.samples ?? 0,
      values_checksum: ours?.digest ?? '',
      check_time: Math.round(o.now() * 1000),
      check_times: timesOf(start, interval) + 1,
      status,
    } satisfies IntervalCheck);
  const previousMinutes = previous
    .filter((c) => c.interval_seconds === MINUTE)
    .map((c) => compactToEpochSecond(c.ec_date + c.ec_time));
  /**
   * Records the period, then reads it again: a write that landed after our comparison may have re-opened
   * the period before this record replaced its row, so a period whose data changed meanwhile stays pending.
   */
  const recordPeriod = async (ours: IntervalSummary | undefined, status: CheckStatus): Promise<CheckStatus> => {
    await record(from, period, ours, status);
    if (status !== 'verified' && status !== 'repaired') return status;
    const [now] = await store.intervalSummaries(range, period);
    if (sameInterval(now, ours)) return status;
    await record(from, period, now, 'pending');
    return 'pending';
  };

  result.exchanges++;
  const theirPeriod = (await theirDigests(period)).get(from);
  if (to > final && declared) {
    // The meter may still journal into this period (a replay, a catch-up after an outage): not final yet.
    // (A meter without a watermark is still repaired, but its period is recorded pending.)
    result.status = 'pending';
    result.beyondFinal = true;
    return result;
  }
  const [ourPeriod] = await store.intervalSummaries(range, period);
  if (sameInterval(theirPeriod, ourPeriod)) {
    // Minute rows of an earlier check (a repair, a re-open) must agree with this one.
    const stale = previous.filter((c) => c.interval_seconds === MINUTE && c.status !== 'verified');
    if (stale.length) {
      const ourMinutes = byStart(await store.intervalSummaries(range, MINUTE));
      for (const c of stale) {
        const m = compactToEpochSecond(c.ec_date + c.ec_time);
        await record(m, MINUTE, ourMinutes.get(m), to <= final ? 'verified' : 'pending');
      }
    }
    result.status = await recordPeriod(ourPeriod, to <= final ? 'verified' : 'pending');
    return result;
  }
  await record(from, period, ourPeriod, 'pending');

  result.exchanges++;
  const theirMinutes = await theirDigests(MINUTE);
  const ourMinutes = byStart(await store.intervalSummaries(range, MINUTE));
  const differing: number[] = [];
  for (let m = from; m < to; m += MINUTE) if (!sameInterval(theirMinutes.get(m), ourMinutes.get(m))) differing.push(m);
  result.minutesDiffering = differing.length;

  for (const m of differing) {
    result.exchanges++;
    const theirs = await peer.summaries(device, m, m + MINUTE);
    const ours = await store.readSummaries({ device_id: device, from: m, to: m + MINUTE });
    const ourByKey = new Map(ours.map((s) => [batchKeyString(s), s]));
    const theirKeys = new Set<string>();
    const wanted: BatchKey[] = [];
    for (const t of theirs) {
      if (!isSummaryIn(t, m, m + MINUTE)) {
        reject('summary outside the asked minute', t);
        continue;
      }
      const key = { device_id: device, ec_date: t.ec_date, ec_time: t.ec_time, start_us: t.start_us, end_us: t.end_us };
      const k = batchKeyString(key);
      if (theirKeys.has(k)) continue;
      theirKeys.add(k);
      const mine = ourByKey.get(k);
      if (!sameValues(mine, t)) wanted.push(key);
    }
    const extra = ours.filter((s) => !theirKeys.has(batchKeyString(s)));
    for (let i = 0; i < wanted.length; i += MAX_BATCHES_PER_REQUEST) {
      const keys = wanted.slice(i, i + MAX_BATCHES_PER_REQUEST);
      result.exchanges++;
      const got = await peer.batches(device, keys);
      const valid = acceptBatches(device, keys, got, o);
      result.rejected += got.length - valid.length;
      if (valid.length) await store.upsertBatches(valid);
      result.repaired += valid.length;
    }
    for (const s of extra) {
      result.extraneous.push(batchKeyString(s));
      if (o.deleteExtraneous && (await store.deleteBatch(s))) result.deleted++;
    }
  }
  if (result.rejected) o.log.warn({ device, from, rejected: result.rejected }, 'sync: client answers dropped');
  if (result.extraneous.length) {
    o.log.warn(
      { device, from, count: result.extraneous.length, deleted: result.deleted, keys: result.extraneous.slice(0, 10) },
      'batches on the server unknown to the client',
    );
  }

  // Ask the meter once more: its journal may have changed while we repaired (and its watermark with it).
  result.exchanges++;
  const theirPeriodNow = (await theirDigests(period)).get(from);
  const [ourPeriodAfter] = await store.intervalSummaries(range, period);
  const equalNow = sameInterval(theirPeriodNow, ourPeriodAfter);
  // Settled: still final, and the meter's journal did not change meanwhile (or we now hold exactly it).
  const settled = to <= final && (equalNow || sameInterval(theirPeriodNow, theirPeriod));

  // Verify again, minute by minute, against what the client said; every minute row of the period is
  // rewritten so that all of them agree with this check.
  const after = byStart(await store.intervalSummaries(range, MINUTE));
  const minutes = new Set([...theirMinutes.keys(), ...after.keys(), ...ourMinutes.keys(), ...previousMinutes]);
  for (const m of [...minutes].sort((a, b) => a - b)) {
    const theirs = theirMinutes.get(m);
    const ours = after.get(m);
    // Extraneous batches that are kept leave their minute unresolved: the server holds more than the meter.
    const ok = equalNow || sameInterval(theirs, ours);
    let status: CheckStatus = !differing.includes(m) ? 'verified' : ok ? 'repaired' : 'mismatch-unresolved';
    if (!settled) status = 'pending';
    await record(m, MINUTE, ours, status);
  }
  const status: CheckStatus = !settled ? 'pending' : equalNow ? 'repaired' : 'mismatch-unresolved';
  result.status = await recordPeriod(ourPeriodAfter, status);
  return result;
}

/** Both sides hold the batch with the same values (what the peer sent is not trusted to be complete). */
function sameValues(ours: WireSummary | undefined, theirs: WireSummary): boolean {
  if (ours === undefined) return false;
  return ours.values_checksum === theirs.values_checksum && ours.values_count === theirs.values_count;
}

function sameInterval(a: IntervalSummary | undefined, b: IntervalSummary | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.digest === b.digest && a.batches === b.batches && a.samples === b.samples;
}

function byStart(list: IntervalSummary[]): Map<number, IntervalSummary> {
  return new Map(list.map((i) => [i.start, i]));
}

/** The well-formed digest entries of intervals in [from, to) (one per start); the others are rejected. */
function inRange(
  list: IntervalSummary[],
  from: number,
  to: number,
  interval: number,
  reject: (what: string, item: unknown) => void,
): IntervalSummary[] {
  const out: IntervalSummary[] = [];
  const seen = new Set<number>();
  for (const i of list as unknown[]) {
    const e = (i ?? {}) as Partial<Record<keyof IntervalSummary, unknown>>;
    const ok =
      Number.isSafeInteger(e.start) &&
      (e.start as number) >= from &&
      (e.start as number) < to &&
      (e.start as number) % interval === 0 &&
      !seen.has(e.start as number) &&
      Number.isSafeInteger(e.batches) &&
      Number.isSafeInteger(e.samples) &&
      typeof e.digest === 'string';
    if (!ok) {
      reject('digest entry outside the asked range', i);
      continue;
    }
    seen.add(e.start as number);
    out.push(i as IntervalSummary);
  }
  return out;
}

/** A summary whose key is well formed and whose second lies in [from, to). */
/**
 * Each key field in its own format: the joined key string alone would let "2026120" + "3120000"
 * pass as "20261203120000", and such a row is invisible to day-sliced reads.
 */
function isKeyShaped(b: Pick<WireSummary, 'ec_date' | 'ec_time' | 'start_us' | 'end_us'>): boolean {
  return (
    typeof b.ec_date === 'string' &&
    /^\d{8}$/.test(b.ec_date) &&
    typeof b.ec_time === 'string' &&
    /^\d{6}$/.test(b.ec_time) &&
    typeof b.start_us === 'string' &&
    /^\d{6}$/.test(b.start_us) &&
    typeof b.end_us === 'string' &&
    /^\d{6}$/.test(b.end_us)
  );
}

function isSummaryIn(t: WireSummary, from: number, to: number): boolean {
  if (!t || typeof t !== 'object' || !isKeyShaped(t)) return false;
  const sec = compactToEpochSecond(t.ec_date + t.ec_time);
  return sec >= from && sec < to;
}

/**
 * Only batches of the asked device with an asked key (so within the asked minute), whose values
 * match their own checksum and parse as a body whose fields match the batch's.
 */
function acceptBatches(device: string, keys: BatchKey[], got: WireBatch[], o: ReconcileOptions): Batch[] {
  const asked = new Set(keys.map(batchKeyString));
  const out: Batch[] = [];
  for (const b of got) {
    const k = b && typeof b === 'object' ? batchKeyString({ ...b, device_id: device }) : '';
    let problem: string | undefined;
    let stats: ValueStats | undefined;
    if (!b || typeof b !== 'object' || typeof b.ec_consumption_values !== 'string') problem = 'not a batch';
    else if (!isKeyShaped(b)) problem = 'malformed key';
    else if (b.device_id !== device || !asked.has(k)) problem = 'not requested';
    else if (recordsChecksum(b.ec_consumption_values) !== b.values_checksum) problem = 'checksum does not match values';
    else {
      try {
        // With the records' statistics, for the store to bind (it ignores them with storage.aggregates off).
        const parsed = parseBatchBody(`${device}|${b.ec_date}${b.ec_time}|${b.ec_consumption_values}`, {
          stats: true,
        });
        stats = parsed.values_stats;
        if (parsed.start_us !== b.start_us || parsed.end_us !== b.end_us || parsed.values_count !== b.values_count)
          problem = 'fields do not match values';
      } catch (e) {
        problem = (e as Error).message;
      }
    }
    if (problem) {
      o.log.warn({ device, key: peerText(k), problem: peerText(problem) }, 'sync: client sent an unusable batch');
      continue;
    }
    asked.delete(k); // a key answered twice is stored once
    // Field by field: nothing else the peer put in its object reaches the store.
    out.push({
      device_id: device,
      ec_date: b.ec_date,
      ec_time: b.ec_time,
      start_us: b.start_us,
      end_us: b.end_us,
      ec_consumption_values: b.ec_consumption_values,
      values_count: b.values_count,
      values_checksum: b.values_checksum,
      batch_seq: Number.isSafeInteger(b.batch_seq) ? b.batch_seq : null,
      insert_time: Math.round(o.now() * 1000),
      values_stats: stats,
    });
  }
  return out;
}
