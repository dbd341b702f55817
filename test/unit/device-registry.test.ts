import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { ReceivedBatch } from '../../src/domain/received-batch.js';
import { BatchStage } from '../../src/ingest/batch-stage.js';
import { DeviceRegistry } from '../../src/registry/device-registry.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { makeBatch, receivedOf } from '../helpers/batches.js';

// 2026-01-01T23:59:00Z: a day change one minute later.
const T0 = Date.UTC(2026, 0, 1, 23, 59) / 1000;
const OFFLINE_AFTER_MS = 5000;

/** What the group commit hands over after a commit: the received batches and the stage's real report. */
function commit(registry: DeviceRegistry, received: ReceivedBatch[]): void {
  const { report } = new BatchStage().run(received);
  registry.observe(received, report);
}

describe('device registry (fake clock, real SQLite store)', () => {
  let dir: string;
  let store: SqliteStore;
  let now: number;
  let offline: string[];
  let online: string[];
  const registry = () =>
    new DeviceRegistry(
      store,
      {
        offlineAfterMs: OFFLINE_AFTER_MS,
        flushMs: 60_000,
        onOffline: (d) => offline.push(d),
        onOnline: (d) => online.push(d),
      },
      () => now,
    );

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-registry-'));
    store = new SqliteStore({ dir, synchronous: 'FULL' });
    await store.open();
    now = T0 * 1000;
    offline = [];
    online = [];
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts stored batches and samples per device, keeps the last X-EC-Seq, skips refused batches', () => {
    const r = registry();
    const a1 = { ...makeBatch('reg-a', T0, 10), insert_time: now };
    const a2 = { ...makeBatch('reg-a', T0 + 1, 20), insert_time: now };
    const bad = { ...receivedOf({ ...makeBatch('reg-c', T0, 5), insert_time: now }), count: '4' };
    commit(r, [receivedOf(a1, { seq: '7' }), bad, receivedOf({ ...makeBatch('reg-b', T0, 3), insert_time: now })]);
    commit(r, [receivedOf(a2, { seq: '8' })]);
    const { devices, next } = r.list({ limit: 10 });
    expect(next).to.equal(null);
    expect(devices.map((d) => [d.device_id, d.state, d.batches_today, d.samples_today, d.last_seq])).to.deep.equal([
      ['reg-a', 'online', 2, 30, 8],
      ['reg-b', 'online', 1, 3, null],
    ]);
    expect(devices[0]!.first_seen_ms).to.equal(now);
  });

  it('turns a silent device offline after offline_after, once; back online when it sends again', () => {
    const r = registry();
    commit(r, [receivedOf({ ...makeBatch('reg-a', T0), insert_time: now })]);
    commit(r, [receivedOf({ ...makeBatch('reg-b', T0), insert_time: now })]);
    now += OFFLINE_AFTER_MS;
    r.check();
    expect(offline, 'at the threshold: still online').to.deep.equal([]);
    commit(r, [receivedOf({ ...makeBatch('reg-b', T0 + 5), insert_time: now })]);
    now += 1;
    r.check();
    r.check();
    expect(offline).to.deep.equal(['reg-a']);
    expect(r.stats.offlineTransitions).to.equal(1);
    expect(r.list({ state: 'offline', limit: 10 }).devices.map((d) => d.device_id)).to.deep.equal(['reg-a']);
    expect(r.list({ state: 'online', limit: 10 }).devices.map((d) => d.device_id)).to.deep.equal(['reg-b']);
    expect(r.onlineCount).to.equal(1);
    commit(r, [receivedOf({ ...makeBatch('reg-a', T0 + 6), insert_time: now })]);
    expect(online).to.deep.equal(['reg-a']);
    expect(r.list({ state: 'online', limit: 10 }).devices.map((d) => d.device_id)).to.deep.equal(['reg-a', 'reg-b']);
    now += OFFLINE_AFTER_MS + 1;
    r.check();
    expect([...offline].sort()).to.deep.equal(['reg-a', 'reg-a', 'reg-b']);
    expect(r.stats.offlineTransitions).to.equal(3);
  });

  it('batches and samples today reset at the UTC day change', () => {
    const r = registry();
    commit(r, [receivedOf({ ...makeBatch('reg-a', T0, 10), insert_time: now })]);
    now += 61_000; // 2026-01-02T00:00:01Z
    expect(r.list({ limit: 1 }).devices[0]).to.include({ day: '20260102', batches_today: 0, samples_today: 0 });
    commit(r, [receivedOf({ ...makeBatch('reg-a', T0 + 61, 4), insert_time: now })]);
    expect(r.list({ limit: 1 }).devices[0]).to.include({ day: '20260102', batches_today: 1, samples_today: 4 });
  });

  it('pages by device id, filtered by state', () => {
    const r = registry();
    const ids = ['d5', 'd1', 'd4', 'd2', 'd3'];
    for (const id of ids) commit(r, [receivedOf({ ...makeBatch(id, T0), insert_time: now })]);
    const p1 = r.list({ limit: 2 });
    expect(p1.devices.map((d) => d.device_id)).to.deep.equal(['d1', 'd2']);
    const p2 = r.list({ limit: 2, after: p1.next! });
    expect(p2.devices.map((d) => d.device_id)).to.deep.equal(['d3', 'd4']);
    const p3 = r.list({ limit: 2, after: p2.next! });
    expect(p3).to.deep.include({ next: null });
    expect(p3.devices.map((d) => d.device_id)).to.deep.equal(['d5']);
  });

  it('flushes changed rows only; survives a restart, a device silent at load offline, no transition', async () => {
    const r = registry();
    commit(r, [receivedOf({ ...makeBatch('reg-a', T0, 10), insert_time: now }, { seq: '41' })]);
    commit(r, [receivedOf({ ...makeBatch('reg-b', T0, 2), insert_time: now })]);
    await r.flush();
    expect(r.stats.flushes).to.equal(1);
    await r.flush();
    expect(r.stats.flushes, 'nothing changed: no write').to.equal(1);
    now += 2000;
    commit(r, [receivedOf({ ...makeBatch('reg-b', T0 + 2, 2), insert_time: now })]);
    await r.stop();
    expect(r.stats.flushes).to.equal(2);
    expect((await store.listDevices({ limit: 10 })).map((d) => [d.device_id, d.batches_today])).to.deep.equal([
      ['reg-a', 1],
      ['reg-b', 2],
    ]);

    now += 4000; // reg-a last seen 6 s ago, reg-b 4 s ago
    const again = registry();
    await again.load();
    expect(
      again.list({ limit: 10 }).devices.map((d) => [d.device_id, d.state, d.last_seq, d.samples_today]),
    ).to.deep.equal([
      ['reg-a', 'offline', 41, 10],
      ['reg-b', 'online', null, 4],
    ]);
    again.check();
    expect(offline, 'offline before the restart: not a new transition').to.deep.equal([]);
    expect(again.list({ limit: 1 }).devices[0]!.first_seen_ms).to.equal(T0 * 1000);
  });
});
