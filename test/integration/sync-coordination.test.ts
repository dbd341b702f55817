import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { Journal } from '../../src/client/journal.js';
import { SyncClient } from '../../src/client/sync-client.js';
import { batchKeyString, type Batch } from '../../src/domain/batch.js';
import { CassandraStore } from '../../src/store/cassandra-store.js';
import type { ConsumptionStore } from '../../src/store/consumption-store.js';
import type { DeviceLeases } from '../../src/store/device-leases.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { SyncService, type RoundReport } from '../../src/sync/sync-service.js';
import { makeBatch } from '../helpers/batches.js';
import { testSyncOptions } from '../helpers/sync-options.js';
import { clusterConfig, dropClusterKeyspace, requireCluster } from '../helpers/cassandra-cluster.js';

/**
 * Several receivers on one store (issue 17, must-show 2): two sync services, each with the same
 * meter connected, are asked to run a round at the same moment. The device leases let exactly one
 * of them reconcile each device period: every period is reconciled once (counted over both
 * rounds and by check_times in ec_checksum), every damaged batch is fetched once, and the stored
 * statuses are right. SQLite: one store, in-process leases; Cassandra: two store instances (two
 * driver clients, as two processes would have) on the three-node cluster, leases by lightweight
 * transactions.
 */
const log = pino({ level: process.env.EC_TEST_LOG ?? 'silent' });
const P = 60;
const PERIODS = 3;
const DEVICES = Array.from({ length: 8 }, (_, i) => `coord-${i}`);
const T0 = Date.UTC(2026, 4, 1, 0, 0, 0) / 1000;
const NOW = T0 + PERIODS * P + 61;

/** Per device: all batches (the journal's) and what reached the server (some lost, one corrupt). */
function meterData(
  device: string,
  d: number,
): { all: Batch[]; server: Batch[]; damaged: number; damagedPeriods: number[] } {
  const all = Array.from({ length: PERIODS * P }, (_, i) => makeBatch(device, T0 + i, 4, 0, i + d));
  // Devices with an odd index lose 2 batches in period 0 and get 1 corrupted in period 2; the others arrive intact.
  if (d % 2 === 0) return { all, server: all, damaged: 0, damagedPeriods: [] };
  const lost = new Set([5, 17]);
  const server = all
    .filter((_, i) => !lost.has(i))
    .map((b, i) => (i === 2 * P + 3 ? { ...makeBatch(device, T0 + 2 * P + 5, 4, 0, 999), ...keyOf(b) } : b));
  return { all, server, damaged: 3, damagedPeriods: [T0, T0 + 2 * P] };
}

function keyOf(b: Batch) {
  return { ec_date: b.ec_date, ec_time: b.ec_time, start_us: b.start_us, end_us: b.end_us };
}

interface Backend {
  name: string;
  tag: string;
  /** The two receivers' stores (the same instance for SQLite). */
  stores(): Promise<[ConsumptionStore, ConsumptionStore]>;
  cleanup(): Promise<void>;
  before?(ctx: Mocha.Context): Promise<void>;
}

const keyspace = `ec_coord_${randomBytes(4).toString('hex')}`;
let dir = '';
const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    tag: '',
    async stores() {
      dir = mkdtempSync(join(tmpdir(), 'ec-coord-'));
      const s = new SqliteStore({ dir: join(dir, 'server'), synchronous: 'NORMAL' });
      await s.open();
      return [s, s];
    },
    async cleanup() {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  },
  {
    name: 'cassandra cluster, RF 3',
    tag: ' @full',
    before: (ctx) => requireCluster(ctx),
    async stores() {
      dir = mkdtempSync(join(tmpdir(), 'ec-coord-'));
      const a = new CassandraStore(clusterConfig(keyspace, { requestTimeoutMs: 5000 }));
      await a.open();
      const b = new CassandraStore(clusterConfig(keyspace, { requestTimeoutMs: 5000 }));
      await b.open();
      return [a, b];
    },
    async cleanup() {
      if (dir) rmSync(dir, { recursive: true, force: true });
      await dropClusterKeyspace(keyspace).catch(() => undefined);
    },
  },
];

for (const backend of BACKENDS)
  describe(`sync coordination: two receivers, one store (${backend.name})${backend.tag}`, function () {
    this.timeout(180_000);
    const closers: (() => unknown)[] = [];
    before(async function () {
      await backend.before?.(this);
    });
    after(async () => {
      for (const c of closers.reverse()) await c();
      await backend.cleanup();
    });

    /** Two receivers with the same meter connected, one round asked of both at once. */
    async function race(leases?: DeviceLeases) {
      const [storeA, storeB] = await backend.stores();
      closers.push(
        () => storeA.close(),
        () => storeB !== storeA && storeB.close(),
      );
      const journal = new Journal(join(dir, 'journal'));
      await journal.open();
      closers.push(() => journal.close());
      let damaged = 0;
      const damagedPeriods = new Set<string>();
      for (const [d, device] of DEVICES.entries()) {
        const m = meterData(device, d);
        await journal.upsertBatches(m.all);
        await storeA.upsertBatches(m.server);
        damaged += m.damaged;
        for (const t of m.damagedPeriods) damagedPeriods.add(`${device}@${t}`);
      }
      const receiver = (store: ConsumptionStore) =>
        new SyncService(
          store,
          testSyncOptions({
            periodS: P,
            requestTimeoutMs: 10_000,
            concurrency: 4,
            catchUpOnConnect: false,
            now: () => NOW,
            ...(leases ? { leases } : {}),
          }),
          log,
        );
      const services = [receiver(storeA), receiver(storeB)];
      const clients: SyncClient[] = [];
      for (const s of services) {
        const port = await s.listen();
        closers.push(() => s.close());
        // The same meter on both receivers (e.g. one connection per receiver of its server list).
        const c = new SyncClient(journal, { host: '127.0.0.1', port, devices: DEVICES, retentionS: 300 }, log);
        await c.connect();
        closers.push(() => c.close());
        clients.push(c);
      }

      const rounds: RoundReport[] = await Promise.all(services.map((s) => s.runRound()));
      return { rounds, clients, services, storeB, journal, damaged, damagedPeriods };
    }

    it('a round asked of both at once: each period reconciled once, each damaged batch fetched once', async () => {
      const { rounds, clients, services, storeB, journal, damaged, damagedPeriods } = await race();

      for (const r of rounds) expect(r.errors).to.deep.equal([]);
      const periods = rounds.flatMap((r) => r.periods);
      const seen = new Map<string, number>();
      for (const p of periods) seen.set(`${p.device}@${p.from}`, (seen.get(`${p.device}@${p.from}`) ?? 0) + 1);
      const twice = [...seen].filter(([, n]) => n > 1);
      console.log(
        `      ${periods.length} periods reconciled ` +
          `(A ${rounds[0]!.periods.length}, B ${rounds[1]!.periods.length}), ` +
          `devices left to the other receiver: A ${rounds[0]!.leased.length}, B ${rounds[1]!.leased.length}; ` +
          `batches fetched: ${clients.map((c) => c.stats.batchesResent).join(' + ')}`,
      );
      expect(twice, 'periods reconciled by both receivers').to.deep.equal([]);
      expect(seen.size).to.equal(DEVICES.length * PERIODS);
      // No duplicate repairs: each damaged batch fetched and written once, over both receivers.
      expect(periods.reduce((n, p) => n + p.repaired, 0)).to.equal(damaged);
      expect(clients.reduce((n, c) => n + c.stats.batchesResent, 0)).to.equal(damaged);
      for (const p of periods) {
        expect(p.status, `${p.device}@${p.from}`).to.equal(
          damagedPeriods.has(`${p.device}@${p.from}`) ? 'repaired' : 'verified',
        );
      }

      // What is stored: one check per period, checked once, with the right status; store == journal.
      for (const device of DEVICES) {
        const range = { device_id: device, from: T0, to: T0 + PERIODS * P };
        const checks = (await storeB.readIntervalChecks(range)).filter((c) => c.interval_seconds === P);
        expect(checks.map((c) => [c.ec_time, c.status, c.check_times])).to.deep.equal(
          Array.from({ length: PERIODS }, (_, i) => [
            checks[i]?.ec_time,
            damagedPeriods.has(`${device}@${T0 + i * P}`) ? 'repaired' : 'verified',
            1,
          ]),
        );
        const strip = (x: Batch) => [batchKeyString(x), x.values_checksum];
        expect((await storeB.readBatches(range)).map(strip), device).to.deep.equal(
          (await journal.readBatches(range)).map(strip),
        );
      }

      // A second round at once: everything is settled, nothing is reconciled again.
      const again = await Promise.all(services.map((s) => s.runRound()));
      expect(again.flatMap((r) => r.periods)).to.deep.equal([]);
    });

    if (backend.name === 'sqlite')
      it('control: without the leases the same race reconciles periods on both receivers', async () => {
        await backend.cleanup();
        const always: DeviceLeases = {
          acquire: () => Promise.resolve(true),
          renew: () => Promise.resolve(true),
          release: () => Promise.resolve(),
        };
        const { rounds } = await race(always);
        const periods = rounds.flatMap((r) => r.periods);
        const keys = new Set(periods.map((p) => `${p.device}@${p.from}`));
        expect(periods.length).to.be.greaterThan(keys.size);
      });
  });
