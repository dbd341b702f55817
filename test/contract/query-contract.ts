import { expect } from 'chai';
import fc from 'fast-check';
import { epochSecondToParts, recordsChecksum, type Batch } from '../../src/domain/batch.js';
import type { CheckStatus, ConsumptionStore } from '../../src/store/consumption-store.js';
import { ConsumptionQuery } from '../../src/query/consumption-query.js';
import { STEP_MS } from '../../src/query/query-params.js';
import { columns, directBuckets, expectSameColumns, samplesOf } from '../helpers/direct-stats.js';

/** 2026-12-01T22:00:00Z: the window of the property runs across a UTC midnight. */
const W0 = Date.UTC(2026, 11, 1, 22) / 1000;
const WINDOW_S = 4 * 3600;

interface Spec {
  sec: number;
  startUs: number;
  values: number[];
}

const spec: fc.Arbitrary<Spec> = fc.record({
  sec: fc.integer({ min: 0, max: WINDOW_S - 1 }),
  startUs: fc.integer({ min: 0, max: 999_000 }),
  values: fc.array(fc.integer({ min: -1_000_000, max: 1_000_000 }), { minLength: 1, maxLength: 12 }),
});

function toBatch(device: string, s: Spec, seed = 0): Batch {
  const step = Math.max(1, Math.floor((999_999 - s.startUs) / s.values.length));
  const values = s.values.map((v, i) => `${s.startUs + i * step},${(v + seed) / 100}`).join(';');
  return {
    device_id: device,
    ...epochSecondToParts(W0 + s.sec),
    start_us: String(s.startUs).padStart(6, '0'),
    end_us: String(s.startUs + (s.values.length - 1) * step).padStart(6, '0'),
    ec_consumption_values: values,
    values_count: s.values.length,
    values_checksum: recordsChecksum(values),
    batch_seq: null,
    insert_time: 1_700_000_000_000,
  };
}

/** What the store holds after upserts: the last batch written per key. */
function latest(batches: readonly Batch[]): Batch[] {
  const byKey = new Map(batches.map((b) => [`${b.ec_date}${b.ec_time}.${b.start_us}-${b.end_us}`, b]));
  return [...byKey.values()];
}

async function collect<T>(chunks: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const c of chunks) out.push(...c);
  return out;
}

/** Every step's buckets over the window, from the query layer, in the reference's form. */
async function everyStep(q: ConsumptionQuery, device: string) {
  const from = W0 * 1000;
  const to = (W0 + WINDOW_S) * 1000;
  const out: Record<string, Record<string, number[]>> = {};
  for (const step of ['1s', '1m', '1h', '1d'] as const) {
    const ms = STEP_MS[step];
    const lo = Math.floor(from / ms) * ms;
    const hi = Math.ceil(to / ms) * ms;
    const got = await collect(q.buckets(device, step, lo, hi));
    out[step] = columns(got.map((b) => ({ ...b, mean: b.sum / b.count })));
  }
  return out;
}

function expectEveryStep(
  got: Record<string, Record<string, number[]>>,
  want: Record<string, Record<string, number[]>>,
) {
  for (const step of Object.keys(want)) expectSameColumns(got[step]!, want[step]!, step);
}

function expected(batches: readonly Batch[]) {
  const from = W0 * 1000;
  const to = (W0 + WINDOW_S) * 1000;
  const out: Record<string, Record<string, number[]>> = {};
  for (const step of ['1s', '1m', '1h', '1d'] as const) {
    const ms = STEP_MS[step];
    out[step] = columns(directBuckets(batches, ms, Math.floor(from / ms) * ms, Math.ceil(to / ms) * ms));
  }
  return out;
}

/**
 * Minute rollups and consumption queries, for every backend (called inside the store contract's describe).
 * Must-show 2: for random data, every step's count/sum/min/max/mean equals a direct computation from the raw
 * samples, before sync, with rollups of verified periods, and after a repair changed a rolled-up period.
 */
export function queryContract(store: () => ConsumptionStore, device: () => string, runs: number): void {
  const check = (dev: string, hour: number, status: CheckStatus) => {
    const p = epochSecondToParts(W0 + hour * 3600);
    return store().writeIntervalCheck({
      device_id: dev,
      ...p,
      interval_seconds: 3600,
      values_count: 0,
      values_checksum: '',
      check_time: Date.now(),
      check_times: 1,
      status,
    });
  };

  it('minute rollups: every minute of the range, empty ones included, equal to the samples; rewritten', async () => {
    const dev = device();
    const bs = [
      toBatch(dev, { sec: 5, startUs: 0, values: [100, -700, 300] }),
      toBatch(dev, { sec: 65, startUs: 10, values: [900] }),
    ];
    await store().upsertBatches(bs);
    expect(await store().finaliseRollups({ device_id: dev, from: W0, to: W0 + 180 })).to.equal(3);
    const got = await store().readMinuteRollups({ device_id: dev, from: W0, to: W0 + 180 });
    expect(got.map((b) => [b.t, b.count, b.sum, b.min, b.max, b.max_at, b.seconds])).to.deep.equal([
      [W0 * 1000, 3, -3, -7, 3, W0 * 1000 + 5000 + 666.666, 1],
      [(W0 + 60) * 1000, 1, 9, 9, 9, (W0 + 65) * 1000 + 0.01, 1],
      [(W0 + 120) * 1000, 0, 0, NaN, NaN, 0, 0],
    ]);
    await store().upsertBatches([toBatch(dev, { sec: 5, startUs: 0, values: [200, 200, 200] })]);
    await store().finaliseRollups({ device_id: dev, from: W0, to: W0 + 60 });
    const again = await store().readMinuteRollups({ device_id: dev, from: W0, to: W0 + 60 });
    expect(again.map((b) => [b.count, b.sum])).to.deep.equal([[3, 6]]);
  });

  it('a verified or repaired check writes its period rollups, a pending one does not', async () => {
    const dev = device();
    await store().upsertBatches([toBatch(dev, { sec: 10, startUs: 0, values: [500] })]);
    await check(dev, 0, 'pending');
    expect(await store().readMinuteRollups({ device_id: dev, from: W0, to: W0 + 3600 })).to.deep.equal([]);
    await check(dev, 0, 'verified');
    const rows = await store().readMinuteRollups({ device_id: dev, from: W0, to: W0 + 3600 });
    expect(rows.length).to.equal(60);
    expect(rows.filter((r) => r.count > 0).map((r) => [r.t, r.sum])).to.deep.equal([[W0 * 1000, 5]]);
  });

  it(`property (${runs} runs): every step equals the samples, with rollups, across a repair after rollup`, async () => {
    const q = new ConsumptionQuery(store());
    await fc.assert(
      fc.asyncProperty(
        fc.array(spec, { minLength: 1, maxLength: 40 }),
        fc.subarray([0, 1, 2, 3]),
        fc.array(spec, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        async (specs, verifiedHours, repairSpecs, repairHour) => {
          const dev = device();
          let written = specs.map((s) => toBatch(dev, s));
          await store().upsertBatches(written);
          expectEveryStep(await everyStep(q, dev), expected(latest(written)));
          for (const h of verifiedHours) await check(dev, h, 'verified');
          expectEveryStep(await everyStep(q, dev), expected(latest(written)));
          // A repair of one (perhaps rolled-up) hour: batches replaced (same keys, other values) and added.
          const inHour = (s: Spec) => ({ ...s, sec: repairHour * 3600 + (s.sec % 3600) });
          const replaced = specs.filter((s) => Math.floor(s.sec / 3600) === repairHour).map((s) => toBatch(dev, s, 77));
          const repaired = [...replaced, ...repairSpecs.map((s) => toBatch(dev, inHour(s), 3))];
          await store().upsertBatches(repaired);
          written = [...written, ...repaired];
          await check(dev, repairHour, 'repaired');
          expectEveryStep(await everyStep(q, dev), expected(latest(written)));
          const samples = samplesOf(latest(written));
          const days = await collect(
            (async function* () {
              for await (const d of q.daily(dev, Date.UTC(2026, 11, 1), Date.UTC(2026, 11, 3))) yield [d];
            })(),
          );
          expect(days.reduce((n, d) => n + d.samples, 0)).to.equal(samples.length);
          expect(Math.max(...days.filter((d) => d.peak !== null).map((d) => d.peak!))).to.equal(
            Math.max(...samples.map((s) => s.v)),
          );
        },
      ),
      { numRuns: runs, seed: 16_002, endOnFailure: true },
    );
  });
}
