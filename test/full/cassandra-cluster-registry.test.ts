import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { ReceivedBatch } from '../../src/domain/received-batch.js';
import { BatchStage } from '../../src/ingest/batch-stage.js';
import { DeviceRegistry } from '../../src/registry/device-registry.js';
import { CassandraStore } from '../../src/store/cassandra-store.js';
import { makeBatch, receivedOf } from '../helpers/batches.js';
import { clusterConfig, dropClusterKeyspace, requireCluster } from '../helpers/cassandra-cluster.js';

const FLUSH_MS = 10_000;
const T0 = Date.UTC(2026, 6, 1, 12, 0, 0) / 1000;

/**
 * The device registry with two receivers writing ec_device (three-node cluster, RF 3): each flushes
 * what it saw, in any order; the stored row must keep the latest last_seen, the earliest first_seen,
 * and the batches of both.
 */
describe('device registry, two receivers on one cluster @full', function () {
  this.timeout(120_000);
  const keyspace = `ec_reg_${randomBytes(4).toString('hex')}`;
  let stores: CassandraStore[] = [];
  let now = T0 * 1000;

  before(async function () {
    await requireCluster(this);
    for (let i = 0; i < 3; i++) {
      const s = new CassandraStore(clusterConfig(keyspace, { requestTimeoutMs: 5000 }));
      await s.open();
      stores.push(s);
    }
  });
  after(async () => {
    for (const s of stores) await s.close();
    stores = [];
    await dropClusterKeyspace(keyspace).catch(() => undefined);
  });

  const registry = (store: CassandraStore) =>
    new DeviceRegistry(store, { offlineAfterMs: 60_000, flushMs: FLUSH_MS }, () => now);
  /** `n` batches of `device` received one a second from `fromS` (the clock follows). */
  function receive(reg: DeviceRegistry, device: string, fromS: number, n: number): void {
    const received: ReceivedBatch[] = [];
    for (let i = 0; i < n; i++)
      received.push({ ...receivedOf(makeBatch(device, fromS + i)), insert_time: (fromS + i) * 1000 });
    now = (fromS + n) * 1000;
    reg.observe(received, new BatchStage().run(received).report);
  }

  it('a meter moves from A to B; A flushes its older sighting last: last_seen keeps B, counts add up', async () => {
    const [a, b] = [registry(stores[0]!), registry(stores[1]!)];
    receive(a, 'moving', T0, 10); // A: T0 .. T0+9
    receive(b, 'moving', T0 + 20, 5); // then B: T0+20 .. T0+24
    await b.flush();
    await a.flush(); // the older row arrives last
    let row = await stores[2]!.readDevice('moving');
    expect(row).to.include({ first_seen_ms: T0 * 1000, last_seen_ms: (T0 + 24) * 1000, batches_today: 15 });
    // B goes on (it merges for two flush intervals, so A's late flush is not lost), then A is silent.
    receive(b, 'moving', T0 + 25, 5);
    await b.flush();
    row = await stores[2]!.readDevice('moving');
    expect(row).to.include({ first_seen_ms: T0 * 1000, last_seen_ms: (T0 + 29) * 1000, batches_today: 20 });
    // Long after, B flushes without reading (the device has stayed with it): still the sum.
    receive(b, 'moving', T0 + 30 + (3 * FLUSH_MS) / 1000, 1);
    receive(b, 'moving', T0 + 31 + (3 * FLUSH_MS) / 1000, 1);
    await b.flush();
    row = await stores[2]!.readDevice('moving');
    expect(row).to.include({ batches_today: 22 });
  });

  it('last_seen never moves backwards: a flush of an older sighting after a newer one is outvoted', async () => {
    const [a, b] = [registry(stores[0]!), registry(stores[1]!)];
    receive(a, 'stale', T0 + 50, 1);
    await a.flush();
    receive(b, 'stale', T0 + 100, 3);
    await b.flush();
    // A sees it again (its clock behind, or a late batch): within two flush intervals of its first sighting it
    // still merges, so the row has both receivers' batches and B's later last_seen.
    receive(a, 'stale', T0 + 55, 1);
    await a.flush();
    let row = await stores[2]!.readDevice('stale');
    expect(row).to.include({ first_seen_ms: (T0 + 50) * 1000, last_seen_ms: (T0 + 102) * 1000, batches_today: 5 });
    // A writer that does not read first (the store alone): an older row written last is outvoted.
    await stores[0]!.upsertDevices([{ ...row!, first_seen_ms: (T0 + 70) * 1000, last_seen_ms: (T0 + 80) * 1000 }]);
    row = await stores[2]!.readDevice('stale');
    expect(row).to.include({ first_seen_ms: (T0 + 50) * 1000, last_seen_ms: (T0 + 102) * 1000 });
    const listed = (await stores[2]!.listDevices({ limit: 100 })).find((d) => d.device_id === 'stale');
    expect(listed?.last_seen_ms).to.equal((T0 + 102) * 1000);
  });
});
