/**
 * The Cassandra backend against a real node on 127.0.0.1:9042 (scripts/cassandra/cassandra.sh).
 *
 * - No node: the suite FAILS when CI is set or EC_REQUIRE_CASSANDRA=1; otherwise it says so loudly
 *   and skips.
 * - Each run uses its own keyspace ec_test_<random>, dropped at the end.
 * - The outage describe stops and restarts the node with cassandra.sh; it comes last.
 * - The independent-reader test uses the Python cassandra-driver in a venv: $EC_PYVENV, default
 *   ~/.cache/ec-server/pyvenv, which scripts/test-all.sh creates at setup (python3 -m venv + pip).
 */
import { expect } from 'chai';
import cassandra from 'cassandra-driver';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CassandraConfig } from '../../src/config/cassandra-options.js';
import type { Batch } from '../../src/domain/batch.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { CassandraStore, partitionRoutingKey } from '../../src/store/cassandra-store.js';
import { storeContract, SYNC_PERIOD_S } from '../contract/store-contract.js';
import { makeBatch } from '../helpers/batches.js';
import { cassandraSh, dropKeyspace, HOST, missing, PORT, requireNode, storeConfig } from '../helpers/cassandra-node.js';

const run = promisify(execFile);
const KEYSPACE = `ec_test_${randomBytes(4).toString('hex')}`;
// dist/test/full -> repository root
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CQL_READ = join(REPO, 'scripts/cassandra/cql-read.py');
const PYVENV = process.env.EC_PYVENV ?? join(homedir(), '.cache/ec-server/pyvenv');

const T0 = Date.UTC(2016, 8, 9, 15, 5, 5) / 1000;

function config(overrides: Partial<CassandraConfig> = {}): CassandraConfig {
  return storeConfig(KEYSPACE, overrides);
}

describe('cassandra backend (real node on 127.0.0.1:9042)', function () {
  this.timeout(120_000);
  let devices = 0;
  const device = (): string => `dev-${++devices}`;

  before(async function () {
    await requireNode(this);
    console.log(`    keyspace ${KEYSPACE}`);
  });

  after(() => dropKeyspace(KEYSPACE));

  storeContract('cassandra', {
    create: () => new CassandraStore(config(), SYNC_PERIOD_S),
    device,
    propertyRuns: 15,
  });

  describe('cassandra specifics', () => {
    let store: CassandraStore;
    beforeEach(async () => {
      store = new CassandraStore(config());
      await store.open();
    });
    afterEach(() => store.close());

    it('reads across hour partitions in key order', async () => {
      const dev = device();
      const h16 = Date.UTC(2016, 8, 9, 16) / 1000;
      const bs = [
        makeBatch(dev, h16 + 3600),
        makeBatch(dev, h16 - 1),
        makeBatch(dev, h16),
        makeBatch(dev, h16 - 3600),
        makeBatch(dev, h16 + 3599),
      ];
      await store.upsertBatches(bs);
      const rows = await store.readSummaries({ device_id: dev, from: h16 - 3600, to: h16 + 3600 });
      expect(rows.map((r) => r.ec_time)).to.deep.equal(['150000', '155959', '160000', '165959']);
    });

    it('open with create_schema=false works on the existing schema and refuses a missing keyspace', async () => {
      const existing = new CassandraStore(config({ createSchema: false }));
      await existing.open();
      await existing.close();
      const absent = new CassandraStore(config({ createSchema: false, keyspace: `${KEYSPACE}_absent` }));
      let error: unknown;
      try {
        await absent.open();
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(StoreUnavailableError);
      expect((error as Error).message).to.match(/does not exist/);
    });

    it('a group: small live rows in unlogged batches per replica set, large and late ones alone', async () => {
      const synced = new CassandraStore(config(), SYNC_PERIOD_S);
      await synced.open();
      try {
        const now = Math.floor(Date.now() / 1000);
        // Live: in a sync period that ends more than LATE_WRITE_MARGIN_S (60 s) from now, else in the next one.
        const periodEnd = (Math.floor(now / SYNC_PERIOD_S) + 1) * SYNC_PERIOD_S;
        const live = periodEnd - now > 120 ? now : periodEnd + 5;
        const small = Array.from({ length: 25 }, () => makeBatch(device(), live));
        const large = [makeBatch(device(), live, 1000), makeBatch(device(), live, 1000)];
        const late = Array.from({ length: 3 }, () => makeBatch(device(), now - 2 * SYNC_PERIOD_S));
        const group = [...small.slice(0, 12), ...large, ...late, ...small.slice(12)];
        const before = { ...synced.writeCounts };
        await synced.upsertBatches(group);
        // One node: every partition has the same replicas, so 25 small rows are batches of 10, 10 and 5.
        expect({
          rows: synced.writeCounts.rows - before.rows,
          requests: synced.writeCounts.requests - before.requests,
          batches: synced.writeCounts.batches - before.batches,
        }).to.deep.equal({ rows: 30, requests: 3 + 2 + 3, batches: 3 });
        for (const b of group) {
          const rows = await synced.readBatches({
            device_id: b.device_id,
            from: now - 3 * SYNC_PERIOD_S,
            to: live + 1,
          });
          expect(
            rows.map((r) => [r.ec_time, r.values_count, r.values_checksum, r.ec_consumption_values]),
          ).to.deep.equal([[b.ec_time, b.values_count, b.values_checksum, b.ec_consumption_values]]);
        }
      } finally {
        await synced.close();
      }
    });

    it('two writes of one key in a group: one statement each, stamped in group order; the later wins', async () => {
      const dev = device();
      const first = makeBatch(dev, T0, 3, 0, 1);
      const second = makeBatch(dev, T0, 3, 0, 2); // the same key, other values
      expect(second.values_checksum).to.not.equal(first.values_checksum);
      const others = Array.from({ length: 5 }, () => makeBatch(device(), T0));
      const before = { ...store.writeCounts };
      await store.upsertBatches([first, ...others, second]);
      expect({
        requests: store.writeCounts.requests - before.requests,
        batches: store.writeCounts.batches - before.batches,
      }).to.deep.equal({ requests: 7, batches: 0 });
      const rows = await store.readBatches({ device_id: dev, from: T0, to: T0 + 1 });
      expect(rows.map((r) => [r.values_checksum, r.ec_consumption_values])).to.deep.equal([
        [second.values_checksum, second.ec_consumption_values],
      ]);
    });

    it("the rows' routing key hashes to the token Cassandra gives their partition", async () => {
      const client = new cassandra.Client({ contactPoints: [`${HOST}:${PORT}`], localDataCenter: 'datacenter1' });
      await client.connect();
      try {
        const rows = ['dev-ä-1', 'm', 'a-much-longer-device-id-0123456789'].map((d, i) => makeBatch(d, T0 + i * 3600));
        await store.upsertBatches(rows);
        for (const b of rows) {
          const rs = await client.execute(
            `SELECT token(device_id, ec_date, ec_hour) AS t FROM ${KEYSPACE}.ec_consumption ` +
              'WHERE device_id = ? AND ec_date = ? AND ec_hour = ?',
            [b.device_id, b.ec_date, b.ec_time.slice(0, 2)],
            { prepare: true },
          );
          expect(rs.rows).to.have.length(1);
          expect(String(client.metadata.newToken(partitionRoutingKey(b)).getValue())).to.equal(
            String(rs.rows[0]!.get('t')),
          );
        }
      } finally {
        await client.shutdown();
      }
    });

    it('a closed store rejects with StoreUnavailableError', async () => {
      const s = new CassandraStore(config());
      let error: unknown;
      try {
        await s.upsertBatches([makeBatch(device(), T0)]);
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(StoreUnavailableError);
    });
  });

  describe('independent reader (Python cassandra-driver, scripts/cassandra/cql-read.py)', function () {
    this.timeout(300_000);
    const python = join(PYVENV, 'bin', 'python');
    let s: CassandraStore | undefined;
    const store = (): CassandraStore => s!;

    // The reader is installed at setup (scripts/test-all.sh), not here: without it the test fails when
    // Cassandra is required (CI) and says loudly that it was not run otherwise.
    before(async function () {
      const ready =
        existsSync(python) &&
        (await run(python, ['-c', 'import cassandra']).then(
          () => true,
          () => false,
        ));
      if (!ready) missing(this, `no Python venv with cassandra-driver at ${PYVENV} (scripts/test-all.sh creates it)`);
    });
    beforeEach(async () => {
      s = new CassandraStore(config());
      await s.open();
    });
    afterEach(() => s?.close());

    it('sees exactly the rows written through the store, in hour partitions of a TWCS table', async () => {
      const dev = device();
      const h16 = Date.UTC(2016, 8, 9, 16) / 1000;
      const bs: Batch[] = [
        { ...makeBatch(dev, h16 - 1, 5, 0, 1), batch_seq: 9_007_199_254 },
        { ...makeBatch(dev, h16 - 1, 5, 500_000, 2), insert_time: 1_700_000_123_456 },
        { ...makeBatch(dev, h16, 1000, 0, 3), batch_seq: 1 },
      ];
      await store().upsertBatches(bs);
      const { stdout } = await run(
        python,
        [
          CQL_READ,
          '--host',
          HOST,
          '--port',
          String(PORT),
          '--keyspace',
          KEYSPACE,
          '--device',
          dev,
          '--date',
          '20160909',
          '--hour',
          '15',
          '--hour',
          '16',
        ],
        { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      );
      const got = JSON.parse(stdout) as {
        rows: Record<string, unknown>[];
        table: { compaction: Record<string, string>; partition_key: string[]; default_time_to_live: number };
      };
      expect(got.rows).to.deep.equal(bs.map((b) => ({ ...b, ec_hour: b.ec_time.slice(0, 2) })));
      expect(got.table.partition_key).to.deep.equal(['device_id', 'ec_date', 'ec_hour']);
      expect(got.table.compaction.class).to.match(/TimeWindowCompactionStrategy$/);
      expect(got.table.compaction.compaction_window_unit).to.equal('DAYS');
      expect(got.table.compaction.compaction_window_size).to.equal('1');
    });
  });

  // Stops and restarts the node: keep it the last describe of this file.
  describe('outage: node stopped while writing, then restarted (runs last)', function () {
    this.timeout(300_000);
    const TIMEOUT_MS = 2000;
    let store: CassandraStore;
    let stopped = false;

    before(async function () {
      const st = await cassandraSh('status');
      if (st.code !== 0)
        missing(this, 'the node on 9042 is not managed by scripts/cassandra/cassandra.sh, cannot stop it');
      store = new CassandraStore(config({ requestTimeoutMs: TIMEOUT_MS }));
      await store.open();
    });

    after(async function () {
      if (stopped) await cassandraSh('start'); // never leave the node down
      await store?.close();
    });

    // Same store object throughout: no reopen.
    it('writes reject with StoreUnavailableError while the node is down (no hang), succeed after restart', async () => {
      const dev = device();
      const hardLimit = 2 * TIMEOUT_MS + 1000 + 500;
      const acked: Batch[] = [];
      let i = 0;
      const next = (): Batch => makeBatch(dev, T0 + Math.floor(i / 10), 1000, (i++ % 10) * 100_000, i);

      // Writes while up.
      for (let k = 0; k < 5; k++) {
        const b = next();
        await store.upsertBatches([b]);
        acked.push(b);
      }

      // Stop the node while a writer keeps going.
      const outcomes: { at: number; ms: number; ok: boolean; error?: unknown }[] = [];
      const t0 = Date.now();
      stopped = true;
      let stopDone = 0;
      const stopping = cassandraSh('stop').then((r) => {
        stopDone = Date.now();
        return r;
      });
      while (!stopDone || Date.now() - stopDone < 3000) {
        const b = next();
        const at = Date.now();
        try {
          await store.upsertBatches([b]);
          acked.push(b);
          outcomes.push({ at: at - t0, ms: Date.now() - at, ok: true });
        } catch (e) {
          outcomes.push({ at: at - t0, ms: Date.now() - at, ok: false, error: e });
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      const stop = await stopping;
      expect(stop.code, stop.out).to.equal(0);

      const failures = outcomes.filter((o) => !o.ok);
      const firstFailure = failures[0];
      const slowest = Math.max(...outcomes.map((o) => o.ms));
      console.log(
        `    stop took ${stopDone - t0} ms; ${outcomes.length} writes during/after it: ` +
          `${outcomes.length - failures.length} ok, ${failures.length} StoreUnavailableError; ` +
          `first 503 at +${firstFailure?.at} ms (after ${firstFailure?.ms} ms), slowest write ${slowest} ms`,
      );
      expect(failures.length).to.be.greaterThan(0);
      for (const f of failures) expect(f.error).to.be.instanceOf(StoreUnavailableError);
      expect(slowest).to.be.lessThan(hardLimit);
      // After the stop finished every write fails, and fast.
      const afterStop = outcomes.filter((o) => o.at > stopDone - t0);
      expect(afterStop.length).to.be.greaterThan(0);
      expect(afterStop.every((o) => !o.ok)).to.equal(true);

      // Reads fail the same way.
      let readError: unknown;
      try {
        await store.readSummaries({ device_id: dev, from: T0, to: T0 + 10 });
      } catch (e) {
        readError = e;
      }
      expect(readError).to.be.instanceOf(StoreUnavailableError);

      // Start it again (cassandra.sh waits for a real CQL answer), then the same store recovers by itself.
      const s0 = Date.now();
      const start = await cassandraSh('start');
      expect(start.code, start.out).to.equal(0);
      stopped = false;
      const ready = Date.now();
      let attempts = 0;
      let recovered = 0;
      const b = next();
      while (Date.now() - ready < 60_000) {
        attempts++;
        try {
          await store.upsertBatches([b]);
          recovered = Date.now();
          break;
        } catch (e) {
          expect(e).to.be.instanceOf(StoreUnavailableError);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      console.log(
        `    start took ${ready - s0} ms; first write after CQL readiness succeeded after ` +
          `${recovered - ready} ms (${attempts} attempts)`,
      );
      expect(recovered, 'no successful write within 60 s of restart').to.be.greaterThan(0);
      acked.push(b);

      // Everything acknowledged is there.
      const rows = await store.readSummaries({ device_id: dev, from: T0, to: T0 + Math.ceil(i / 10) + 1 });
      const keys = new Set(rows.map((r) => `${r.ec_time}.${r.start_us}`));
      for (const a of acked)
        expect(keys.has(`${a.ec_time}.${a.start_us}`), `${a.ec_time}.${a.start_us}`).to.equal(true);
    });
  });
});
