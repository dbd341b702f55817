import { expect } from 'chai';
import { batchEpochSecond, recordsChecksum, type Batch } from '../../src/domain/batch.js';
import { credentialFor } from '../../src/domain/device-credential.js';
import type { DeviceRecord } from '../../src/domain/device-record.js';
import { summarizeIntervals } from '../../src/domain/interval-digest.js';
import type { ConsumptionStore, IntervalCheck } from '../../src/store/consumption-store.js';
import { makeBatch } from '../helpers/batches.js';
import { queryContract } from './query-contract.js';

export interface ContractTarget {
  /**
   * A fresh, unopened store. Each call may return a store over the same data (reopen) when `same` is true.
   * Stores are opened with a sync period of SYNC_PERIOD_S (writes re-open recorded periods).
   */
  create(opts: { same: boolean }): ConsumptionStore | Promise<ConsumptionStore>;
  /** A device id no other test uses (backends may keep data between tests). */
  device(): string;
  /** Runs of the query property (a remote backend takes longer per run). */
  propertyRuns?: number;
}

/** A batch's aggregate computed here, without the code under test. */
function directAggregate(b: Batch) {
  const recs = b.ec_consumption_values.split(';').map((r) => r.split(',').map(Number) as [number, number]);
  const values = recs.map(([, v]) => v);
  const max = Math.max(...values);
  return {
    device_id: b.device_id,
    ec_date: b.ec_date,
    ec_time: b.ec_time,
    start_us: b.start_us,
    end_us: b.end_us,
    count: recs.length,
    sum: values.reduce((a, v) => a + v, 0),
    min: Math.min(...values),
    max,
    max_us: recs.find(([, v]) => v === max)![0],
  };
}

// 2016-09-09T15:05:05Z, the second of the protocol's example vector.
const T0 = Date.UTC(2016, 8, 9, 15, 5, 5) / 1000;

/** The sync period the contract's stores are opened with (10 minutes: T0 lies in the one of 15:00). */
export const SYNC_PERIOD_S = 600;

/**
 * THE store contract: every backend runs exactly this suite (the aedes-persistence pattern).
 * Adding a store method means adding its behaviour here.
 */
export function storeContract(name: string, target: ContractTarget): void {
  describe(`store contract: ${name}`, function () {
    this.timeout(60_000);
    let store: ConsumptionStore;

    beforeEach(async () => {
      store = await target.create({ same: false });
      await store.open();
    });
    afterEach(async () => {
      await store.close();
    });

    const strip = (b: Batch) => ({
      ...b,
      insert_time: Number(b.insert_time),
      batch_seq: b.batch_seq === null ? null : Number(b.batch_seq),
    });

    it('returns what was written, field for field', async () => {
      const dev = target.device();
      const b = { ...makeBatch(dev, T0, 5, 123), batch_seq: 42 };
      await store.upsertBatches([b]);
      const rows = await store.readBatches({ device_id: dev, from: T0, to: T0 + 1 });
      expect(rows.map(strip)).to.deep.equal([b]);
    });

    it('returns large batches (1000 records, ~12 kB of records) exactly as written, replacement included', async () => {
      const dev = target.device();
      const a = { ...makeBatch(dev, T0, 1000, 0, 3), batch_seq: 7 };
      const b = makeBatch(dev, T0 + 1, 1000, 0, 4);
      await store.upsertBatches([a, b]);
      const c = makeBatch(dev, T0 + 1, 1000, 0, 5);
      await store.upsertBatches([c]);
      const rows = await store.readBatches({ device_id: dev, from: T0, to: T0 + 2 });
      expect(rows.map(strip)).to.deep.equal([a, c]);
      expect(rows.map((r) => recordsChecksum(r.ec_consumption_values))).to.deep.equal([
        a.values_checksum,
        c.values_checksum,
      ]);
    });

    it('upsert of the same key replaces the row (idempotent)', async () => {
      const dev = target.device();
      const a = makeBatch(dev, T0, 3, 0, 1);
      const b = { ...makeBatch(dev, T0, 3, 0, 2), start_us: a.start_us, end_us: a.end_us };
      await store.upsertBatches([a]);
      await store.upsertBatches([a]);
      await store.upsertBatches([b]);
      const rows = await store.readBatches({ device_id: dev, from: T0, to: T0 + 1 });
      expect(rows).to.have.length(1);
      expect(rows[0]!.values_checksum).to.equal(b.values_checksum);
    });

    it('keeps several sub-second batches of one second, ordered by start_us', async () => {
      const dev = target.device();
      const parts = [makeBatch(dev, T0, 2, 500_000), makeBatch(dev, T0, 2, 0), makeBatch(dev, T0, 2, 250_000)];
      await store.upsertBatches(parts);
      const rows = await store.readBatches({ device_id: dev, from: T0, to: T0 + 1 });
      expect(rows.map((r) => r.start_us)).to.deep.equal(['000000', '250000', '500000']);
    });

    it('reads only the named device and the half-open range [from, to)', async () => {
      const dev = target.device();
      const other = target.device();
      await store.upsertBatches([
        makeBatch(dev, T0 - 1),
        makeBatch(dev, T0),
        makeBatch(dev, T0 + 9),
        makeBatch(dev, T0 + 10),
        makeBatch(other, T0),
      ]);
      const rows = await store.readBatches({ device_id: dev, from: T0, to: T0 + 10 });
      expect(rows.map((r) => batchEpochSecond(r))).to.deep.equal([T0, T0 + 9]);
      expect(rows.every((r) => r.device_id === dev)).to.equal(true);
    });

    it('reads across UTC midnight in key order', async () => {
      const dev = target.device();
      const midnight = Date.UTC(2016, 8, 10) / 1000;
      await store.upsertBatches([makeBatch(dev, midnight + 1), makeBatch(dev, midnight - 2), makeBatch(dev, midnight)]);
      const rows = await store.readBatches({ device_id: dev, from: midnight - 5, to: midnight + 5 });
      expect(rows.map((r) => batchEpochSecond(r))).to.deep.equal([midnight - 2, midnight, midnight + 1]);
    });

    it('refuses reads longer than one day (callers page)', async () => {
      let error: unknown;
      try {
        await store.readBatches({ device_id: target.device(), from: T0, to: T0 + 86_401 });
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(RangeError);
    });

    it('batch aggregates: key, count, sum, min, max (and where the max is) of each batch, in key order', async () => {
      const dev = target.device();
      const bs = [makeBatch(dev, T0, 7, 0, 2), makeBatch(dev, T0, 3, 600_000, 3), makeBatch(dev, T0 + 2, 1000, 0, 4)];
      await store.upsertBatches(bs);
      const got = await store.readBatchAggregates({ device_id: dev, from: T0, to: T0 + 3 });
      expect(got).to.deep.equal(bs.map(directAggregate));
      expect(await store.readBatchAggregates({ device_id: dev, from: T0 + 1, to: T0 + 2 })).to.deep.equal([]);
    });

    it('binds the aggregates a batch carries (values_stats, from ingest) without reading its records', async () => {
      const dev = target.device();
      const b = makeBatch(dev, T0, 5, 0, 2);
      // Deliberately not its records' statistics: what is read back can only come from values_stats.
      const carried = { count: 5, sum: 123456.5, min: -7.25, max: 9999.5, max_us: 424242 };
      await store.upsertBatches([{ ...b, values_stats: carried }, makeBatch(dev, T0 + 1, 3, 0, 3)]);
      const got = await store.readBatchAggregates({ device_id: dev, from: T0, to: T0 + 2 });
      expect(got[0]).to.deep.equal({ ...directAggregate(b), ...carried });
      expect(directAggregate(b).sum).to.not.equal(carried.sum);
      // A batch without them (a test's, an older writer's) has them computed by the store.
      expect(got[1]).to.deep.equal(directAggregate(makeBatch(dev, T0 + 1, 3, 0, 3)));
    });

    it('summaries equal the batches without values', async () => {
      const dev = target.device();
      const bs = [makeBatch(dev, T0, 4), makeBatch(dev, T0 + 1, 6)];
      await store.upsertBatches(bs);
      const sums = await store.readSummaries({ device_id: dev, from: T0, to: T0 + 2 });
      expect(sums.map((s) => [s.ec_time, s.values_count, s.values_checksum])).to.deep.equal(
        bs.map((b) => [b.ec_time, b.values_count, b.values_checksum]),
      );
      expect(sums[0]).to.not.have.property('ec_consumption_values');
    });

    it('per-interval counts and digests match the definition', async () => {
      const dev = target.device();
      const minute = Math.floor(T0 / 60) * 60;
      const bs = [
        makeBatch(dev, minute, 10),
        makeBatch(dev, minute + 59, 20),
        makeBatch(dev, minute + 60, 30),
        makeBatch(dev, minute + 125, 5),
      ];
      await store.upsertBatches(bs);
      const got = await store.intervalSummaries({ device_id: dev, from: minute, to: minute + 180 }, 60);
      expect(got.map((g) => [g.start, g.batches, g.samples])).to.deep.equal([
        [minute, 2, 30],
        [minute + 60, 1, 30],
        [minute + 120, 1, 5],
      ]);
      expect(got).to.deep.equal(summarizeIntervals(bs, 60));
      // A change in any batch changes its interval's digest and only that one.
      const changed = { ...bs[1]!, ec_consumption_values: '1,1', values_checksum: recordsChecksum('1,1') };
      await store.upsertBatches([changed]);
      const after = await store.intervalSummaries({ device_id: dev, from: minute, to: minute + 180 }, 60);
      expect(after[0]!.digest).to.not.equal(got[0]!.digest);
      expect(after.slice(1)).to.deep.equal(got.slice(1));
    });

    it('deletes one batch by key', async () => {
      const dev = target.device();
      const a = makeBatch(dev, T0, 2, 0);
      const b = makeBatch(dev, T0, 2, 600_000);
      await store.upsertBatches([a, b]);
      expect(await store.deleteBatch(a)).to.equal(true);
      expect(await store.deleteBatch(a)).to.equal(false);
      const rows = await store.readBatches({ device_id: dev, from: T0, to: T0 + 1 });
      expect(rows.map((r) => r.start_us)).to.deep.equal([b.start_us]);
    });

    it('writes and reads interval checks (ec_checksum)', async () => {
      const dev = target.device();
      const check: IntervalCheck = {
        device_id: dev,
        ec_date: '20160909',
        ec_time: '150500',
        interval_seconds: 60,
        values_count: 30,
        values_checksum: 'd41d8cd98f00b204e9800998ecf8427e',
        check_time: 1_700_000_000_000,
        check_times: 1,
        status: 'verified',
      };
      await store.writeIntervalCheck(check);
      await store.writeIntervalCheck({ ...check, check_times: 2, status: 'repaired' });
      const got = await store.readIntervalChecks({ device_id: dev, from: T0 - 5, to: T0 + 60 });
      expect(got.map((c) => ({ ...c, check_time: Number(c.check_time) }))).to.deep.equal([
        { ...check, check_times: 2, status: 'repaired' },
      ]);
    });

    describe('re-opening recorded sync periods', () => {
      const checkAt = (dev: string, ec_time: string, interval_seconds: number, status: IntervalCheck['status']) =>
        store.writeIntervalCheck({
          device_id: dev,
          ec_date: '20160909',
          ec_time,
          interval_seconds,
          values_count: 3,
          values_checksum: 'd41d8cd98f00b204e9800998ecf8427e',
          check_time: 1_700_000_000_000,
          check_times: 1,
          status,
        });
      const statuses = async (dev: string) =>
        (await store.readIntervalChecks({ device_id: dev, from: T0 - 305, to: T0 + 295 })).map(
          (c) => `${c.ec_time}/${c.interval_seconds} ${c.status}`,
        );
      const replacedOf = async (dev: string) =>
        (await store.readReplacements(0, 100_000)).filter((r) => r.device_id === dev);

      it('a write with other values re-opens the period and its minute, and is noted as a replacement', async () => {
        const dev = target.device();
        const b = makeBatch(dev, T0, 3, 0, 1);
        await store.upsertBatches([b]);
        await checkAt(dev, '150000', SYNC_PERIOD_S, 'verified');
        await checkAt(dev, '150500', 60, 'repaired');
        await checkAt(dev, '150600', 60, 'verified');
        // The same row again (a retransmission, a replay): nothing re-opened, nothing noted.
        await store.upsertBatches([{ ...b, insert_time: b.insert_time + 1000 }]);
        expect(await statuses(dev)).to.deep.equal(['150000/600 verified', '150500/60 repaired', '150600/60 verified']);
        expect(await replacedOf(dev)).to.deep.equal([]);

        const other = makeBatch(dev, T0, 3, 0, 2);
        expect(other.values_checksum).to.not.equal(b.values_checksum);
        await store.upsertBatches([other]);
        expect(await statuses(dev)).to.deep.equal(['150000/600 pending', '150500/60 pending', '150600/60 verified']);
        const replaced = await replacedOf(dev);
        expect(replaced.map(({ id: _id, replaced_ms: _ms, ...r }) => r)).to.deep.equal([
          {
            device_id: dev,
            ec_date: b.ec_date,
            ec_time: b.ec_time,
            start_us: b.start_us,
            end_us: b.end_us,
            old_count: b.values_count,
            old_checksum: b.values_checksum,
            new_count: other.values_count,
            new_checksum: other.values_checksum,
          },
        ]);
        expect(replaced[0]!.replaced_ms).to.be.closeTo(Date.now(), 60_000);
        // Paging: nothing after the last one seen.
        expect(await store.readReplacements(replaced[0]!.id, 10)).to.satisfy((l: { device_id: string }[]) =>
          l.every((r) => r.device_id !== dev),
        );
      });

      it('a new batch re-opens its minute and period; a later check counts again; unresolved stays', async () => {
        const dev = target.device();
        await checkAt(dev, '150000', SYNC_PERIOD_S, 'verified');
        await checkAt(dev, '150500', 60, 'mismatch-unresolved');
        await checkAt(dev, '150600', 60, 'verified');
        await store.upsertBatches([makeBatch(dev, T0 + 60, 3, 0, 1)]); // 15:06:05
        expect(await statuses(dev)).to.deep.equal([
          '150000/600 pending',
          '150500/60 mismatch-unresolved',
          '150600/60 pending',
        ]);
        expect(await replacedOf(dev)).to.deep.equal([]);
        // The next check's record stands (until the next write).
        await checkAt(dev, '150000', SYNC_PERIOD_S, 'verified');
        await checkAt(dev, '150600', 60, 'verified');
        expect(await statuses(dev)).to.deep.equal([
          '150000/600 verified',
          '150500/60 mismatch-unresolved',
          '150600/60 verified',
        ]);
        // A write into another period (15:10) re-opens nothing here.
        await store.upsertBatches([makeBatch(dev, T0 + 300, 3, 0, 1)]);
        expect(await statuses(dev)).to.deep.equal([
          '150000/600 verified',
          '150500/60 mismatch-unresolved',
          '150600/60 verified',
        ]);
      });
    });

    it('a write of 1,000 batches in one call is all there afterwards', async () => {
      const dev = target.device();
      const bs = Array.from({ length: 1000 }, (_, i) =>
        makeBatch(dev, T0 + Math.floor(i / 4), 10, (i % 4) * 250_000, i),
      );
      await store.upsertBatches(bs);
      const rows = await store.readSummaries({ device_id: dev, from: T0, to: T0 + 250 });
      expect(rows).to.have.length(1000);
    });

    it('keeps device credentials: add, read, list, replace (rotate), remove; they survive reopen', async () => {
      const dev = target.device();
      const other = target.device();
      const c1 = credentialFor(dev, 'ec-server', 'first-secret', 1_700_000_000_000);
      await store.putCredential(c1);
      await store.putCredential(credentialFor(other, 'ec-server', 'other', 1_700_000_000_001));
      expect(await store.readCredential(dev)).to.deep.equal(c1);
      expect(await store.readCredential(`${dev}-none`)).to.equal(undefined);
      const rotated = credentialFor(dev, 'ec-server', 'second-secret', 1_700_000_000_500, c1.created_ms);
      await store.putCredential(rotated);
      await store.close();
      store = await target.create({ same: true });
      await store.open();
      expect(await store.readCredential(dev)).to.deep.equal(rotated);
      const listed = (await store.listCredentials()).filter((c) => c.device_id === dev || c.device_id === other);
      expect(listed.map((c) => c.device_id)).to.deep.equal([dev, other].sort());
      expect(await store.removeCredential(dev)).to.equal(true);
      expect(await store.removeCredential(dev)).to.equal(false);
      expect(await store.readCredential(dev)).to.equal(undefined);
      expect(await store.readCredential(other)).to.not.equal(undefined);
    });

    it('changes the credentials version token at every add, rotate, remove, seen by other processes', async () => {
      const dev = target.device();
      const v0 = await store.credentialsVersion();
      await store.putCredential(credentialFor(dev, 'ec-server', 's1', 1_700_000_000_000));
      const v1 = await store.credentialsVersion();
      expect(v1, 'add').to.not.equal(v0).and.not.equal('');
      await store.putCredential(credentialFor(dev, 'ec-server', 's2', 1_700_000_000_100, 1_700_000_000_000));
      const v2 = await store.credentialsVersion();
      expect(v2, 'rotate').to.not.equal(v1);
      // Another process (the CLI, another receiver) reads the same token from the shared store.
      await store.close();
      store = await target.create({ same: true });
      await store.open();
      expect(await store.credentialsVersion(), 'after reopen').to.equal(v2);
      expect(await store.removeCredential(dev)).to.equal(true);
      const v3 = await store.credentialsVersion();
      expect(v3, 'remove').to.not.equal(v2);
      expect(await store.removeCredential(dev)).to.equal(false);
      expect(await store.credentialsVersion(), 'removing nothing changes nothing').to.equal(v3);
    });

    it('keeps device registry rows: upsert replaces by device, pages list each row once, survive reopen', async () => {
      const ids = Array.from({ length: 7 }, () => target.device());
      const row = (device_id: string, n: number): DeviceRecord => ({
        device_id,
        first_seen_ms: 1_700_000_000_000 + n,
        last_seen_ms: 1_700_000_100_000 + n,
        last_seq: n % 2 === 0 ? null : 9_007_199_254 + n,
        day: '20231114',
        batches_today: n,
        samples_today: n * 1000,
      });
      await store.upsertDevices(ids.map((id, n) => row(id, n)));
      await store.upsertDevices([{ ...row(ids[3]!, 3), last_seen_ms: 1_700_000_200_000, batches_today: 99 }]);
      await store.upsertDevices([]);
      await store.close();
      store = await target.create({ same: true });
      await store.open();
      const seen: DeviceRecord[] = [];
      let after: string | undefined;
      for (let pages = 0; pages < 10_000; pages++) {
        const page = await store.listDevices({ limit: 3, ...(after === undefined ? {} : { after }) });
        expect(page.length).to.be.at.most(3);
        seen.push(...page);
        if (page.length < 3) break;
        after = page[page.length - 1]!.device_id;
      }
      const ours = seen.filter((r) => ids.includes(r.device_id));
      expect(new Set(seen.map((r) => r.device_id)).size, 'each row once').to.equal(seen.length);
      const expected = ids.map((id, n) =>
        n === 3 ? { ...row(id, 3), last_seen_ms: 1_700_000_200_000, batches_today: 99 } : row(id, n),
      );
      const byId = (a: DeviceRecord, b: DeviceRecord) => (a.device_id < b.device_id ? -1 : 1);
      expect(ours.sort(byId)).to.deep.equal(expected.sort(byId));
    });

    it('data survives close and reopen', async () => {
      const dev = target.device();
      const b = makeBatch(dev, T0, 7);
      await store.upsertBatches([b]);
      await store.close();
      store = await target.create({ same: true });
      await store.open();
      const rows = await store.readBatches({ device_id: dev, from: T0, to: T0 + 1 });
      expect(rows.map(strip)).to.deep.equal([b]);
    });

    queryContract(
      () => store,
      () => target.device(),
      target.propertyRuns ?? 40,
    );
  });
}
