import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { Journal } from '../../src/client/journal.js';
import { MeterClient } from '../../src/client/meter-client.js';
import { SipSender } from '../../src/client/sip-sender.js';
import { SyncClient } from '../../src/client/sync-client.js';
import { batchKeyString, epochSecondToParts, type Batch } from '../../src/domain/batch.js';
import type { HourReport } from '../../src/report/hour-report.js';
import type { ConsumptionStore } from '../../src/store/consumption-store.js';
import { makeBatch } from '../helpers/batches.js';
import { dropKeyspace, requireNode } from '../helpers/cassandra-node.js';
import { runBin } from '../helpers/server-process.js';
import { pollUntil } from '../helpers/wait.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Sync end to end, on real sockets and real SQLite files, with a simulated clock: a reference
 * meter streams with injected loss and corruption, one sync round makes the server equal to the
 * meter's journal, and repairs cost about what was damaged.
 */

const log = pino({ level: process.env.EC_TEST_LOG ?? 'silent' });
const PERIOD_MIN = 10;
const P = PERIOD_MIN * 60;
const T0 = Date.UTC(2026, 3, 1, 0, 0, 0) / 1000; // 2026-04-01T00:00Z, a period boundary

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** One sample's value in the Prometheus text format (0 when absent). */
function metricValue(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

async function sameData(
  server: ConsumptionStore,
  journal: ConsumptionStore,
  device: string,
  from: number,
  to: number,
): Promise<number> {
  const a = await server.readBatches({ device_id: device, from, to });
  const b = await journal.readBatches({ device_id: device, from, to });
  const strip = (x: Batch) => [batchKeyString(x), x.values_count, x.values_checksum, x.ec_consumption_values];
  expect(a.map(strip), `server vs journal of ${device}`).to.deep.equal(b.map(strip));
  return a.length;
}

const TIER: Record<string, string> = { sqlite: '', cassandra: ' @full' };
const BACKENDS: [string, Record<string, string>][] = [
  ['sqlite', {}],
  ['cassandra', { 'storage.backend': 'cassandra', 'cassandra.keyspace': `ec_sync_${randomBytes(4).toString('hex')}` }],
];

// The Cassandra run belongs to the full tier (`@full`: npm test leaves it out, npm run test:full runs it).
for (const [backend, backendConfig] of BACKENDS)
  describe(`sync: reconciliation with the reference meter (${backend} store)${TIER[backend]}`, function () {
    this.timeout(180_000);
    before(async function () {
      if (backend === 'cassandra') await requireNode(this);
    });
    after(async () => {
      if (backend === 'cassandra') await dropKeyspace(backendConfig['cassandra.keyspace']!);
    });
    let now = T0;
    let server: TestServer;
    let dir: string;
    const clock = () => now;

    beforeEach(async () => {
      now = T0;
      dir = mkdtempSync(join(tmpdir(), 'ec-sync-'));
      server = await startTestServer(
        {
          ...backendConfig,
          'sync.syncfreq': String(PERIOD_MIN),
          'sync.grace_seconds': '60',
          'sync.request_timeout': '5',
        },
        { now: clock },
      );
    });
    afterEach(async () => {
      await server.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('10 simulated minutes of 1000-sample batches, 5% lost, 1% corrupt: one round repairs all, cheaply', async () => {
      const device = '00aabbccddee';
      const journal = new Journal(join(dir, 'journal'));
      await journal.open();
      const sync = new SyncClient(
        journal,
        { host: '127.0.0.1', port: server.syncPort!, devices: [device], retentionS: 900 },
        log,
      );
      await sync.connect();
      await Promise.all(server.sync!.catchUps);
      const sender = new SipSender({ host: '127.0.0.1', port: server.port, transport: 'auto', from: device }, log);
      await sender.start();
      const damaged: Batch[] = [];
      const meter = new MeterClient(
        journal,
        sender,
        {
          source: {
            kind: 'generate',
            devices: [device],
            start: T0,
            seconds: P,
            realtime: false,
            rate: 1000,
            batchMs: 1000,
          },
          loss: 0.05,
          corrupt: 0.01,
          window: 32,
          maxAttempts: 3,
          retentionS: 900,
          random: seeded(7),
          onFault: (_kind, b) => damaged.push(b),
        },
        log,
      );
      const stats = await meter.run();
      sender.close();
      expect(stats.generated).to.equal(P);
      expect(stats.failed).to.equal(0);
      expect(stats.lost).to.be.greaterThan(10);
      expect(stats.corrupted).to.be.greaterThan(0);
      const before = await server.store.readSummaries({ device_id: device, from: T0, to: T0 + P });
      expect(before.length).to.equal(P - stats.lost);

      now = T0 + P + 61;
      const requestsBefore = sync.stats.requests;
      const metricsBefore = await server.metrics.metrics();
      const started = Date.now();
      const round = await server.sync!.runRound();
      const ms = Date.now() - started;
      expect(round.errors).to.deep.equal([]);
      const period = round.periods.find((p) => p.from === T0)!;
      expect(period.status).to.equal('repaired');
      expect(period.repaired).to.equal(stats.lost + stats.corrupted);
      // The sync metrics moved by what the round reports.
      const metricsAfter = await server.metrics.metrics();
      const moved = (sample: string) => metricValue(metricsAfter, sample) - metricValue(metricsBefore, sample);
      expect(moved('ec_sync_rounds_total')).to.equal(1);
      expect(moved('ec_sync_periods_total{status="repaired"}')).to.equal(
        round.periods.filter((p) => p.status === 'repaired').length,
      );
      expect(moved('ec_sync_periods_total{status="verified"}')).to.equal(
        round.periods.filter((p) => p.status === 'verified').length,
      );
      expect(moved('ec_sync_batches_repaired_total')).to.equal(round.periods.reduce((n, p) => n + p.repaired, 0));
      expect(metricValue(metricsAfter, 'ec_sync_connections')).to.equal(1);
      expect(metricValue(metricsAfter, 'ec_devices{state="sync_connected"}')).to.equal(1);
      expect(await sameData(server.store, journal, device, T0, T0 + P)).to.equal(P);

      // Repair cost: bytes resent vs. bytes of the batches actually lost or corrupted (their SIP bodies).
      const damagedBytes = damaged.reduce(
        (n, b) => n + Buffer.byteLength(`${b.device_id}|${b.ec_date}${b.ec_time}|${b.ec_consumption_values}`),
        0,
      );
      const ratio = sync.stats.batchBytes / damagedBytes;
      console.log(
        `      sync round (damaged period): ${ms} ms, ${sync.stats.requests - requestsBefore} requests, ` +
          `${period.minutesDiffering} minutes differing, ${period.repaired} batches repaired, resent ` +
          `${sync.stats.batchBytes} B for ${damagedBytes} B damaged (x${ratio.toFixed(3)})`,
      );
      expect(ratio).to.be.at.most(1.5);

      // ec-test: no gaps, every minute verified or repaired.
      await server.stop();
      const backendArgs = Object.entries(backendConfig).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
      const r = await runBin('ec-test', [
        '--config',
        '/dev/null',
        ...backendArgs,
        '--data-dir',
        join(server.dir, 'data'),
        '-i',
        device,
        '-d',
        compact(T0),
        '--until',
        compact(T0 + P),
        '--json',
      ]);
      const rep = JSON.parse(r.stdout) as HourReport;
      expect(r.code, r.stderr).to.equal(0);
      expect(rep.gaps).to.deep.equal([]);
      expect(rep.samples).to.equal(P * 1000);
      expect(rep.minutes.slice(0, PERIOD_MIN).map((m) => m.sync)).to.satisfy((s: string[]) =>
        s.every((x) => x === 'verified' || x === 'repaired'),
      );
      expect(rep.minutes.slice(0, PERIOD_MIN).some((m) => m.sync === 'repaired')).to.equal(true);
      sync.close();
      await journal.close();
    });

    it('a period with no damage costs one digest exchange', async () => {
      const device = 'clean-meter';
      const journal = new Journal(join(dir, 'journal'));
      await journal.open();
      const batches = Array.from({ length: P }, (_, i) => makeBatch(device, T0 + i, 50, 0, i));
      await journal.upsertBatches(batches);
      await server.store.upsertBatches(batches);
      const sync = new SyncClient(
        journal,
        { host: '127.0.0.1', port: server.syncPort!, devices: [device], retentionS: 900 },
        log,
      );
      await sync.connect();
      await Promise.all(server.sync!.catchUps);
      now = T0 + P + 61;
      const before = sync.stats.requests;
      const round = await server.sync!.runRound();
      expect(round.periods.map((p) => [p.status, p.exchanges])).to.deep.equal([['verified', 1]]);
      expect(sync.stats.requests - before).to.equal(1);
      expect(sync.stats.batchesResent).to.equal(0);
      // Once verified, a period is not asked about again.
      expect((await server.sync!.runRound()).periods).to.deep.equal([]);
      sync.close();
      await journal.close();
    });

    // 50 journals and 6,000 batches (about 15 s): a load test, in the full tier (`@full` in the title).
    it('50 clients sync concurrently without errors @full', async () => {
      const clients: { journal: Journal; sync: SyncClient; device: string }[] = [];
      for (let c = 0; c < 50; c++) {
        const device = `fleet-${c}`;
        const journal = new Journal(join(dir, `j${c}`));
        await journal.open();
        const batches = Array.from({ length: 120 }, (_, i) => makeBatch(device, T0 + i * 5, 20, 0, c * 1000 + i));
        await journal.upsertBatches(batches);
        // The server misses every 7th batch and holds one corrupted copy.
        await server.store.upsertBatches(
          batches
            .filter((_, i) => i % 7 !== 0)
            .map((b, i) => (i === 3 ? { ...b, ec_consumption_values: '1,1', values_checksum: 'x'.repeat(32) } : b)),
        );
        const sync = new SyncClient(
          journal,
          { host: '127.0.0.1', port: server.syncPort!, devices: [device], retentionS: 900 },
          log,
        );
        clients.push({ journal, sync, device });
      }
      await Promise.all(clients.map((c) => c.sync.connect()));
      await Promise.all(server.sync!.catchUps);
      now = T0 + P + 61;
      const round = await server.sync!.runRound();
      expect(round.errors).to.deep.equal([]);
      expect(round.clients).to.equal(50);
      expect(round.periods.filter((p) => p.status === 'repaired')).to.have.length(50);
      for (const c of clients) {
        expect(await sameData(server.store, c.journal, c.device, T0, T0 + P)).to.equal(120);
        c.sync.close();
        await c.journal.close();
      }
    });

    it('client killed mid-sync: the period stays pending and the next connection completes the repair', async () => {
      const device = 'killed-meter';
      const journal = new Journal(join(dir, 'journal'));
      await journal.open();
      const batches = Array.from({ length: 200 }, (_, i) => makeBatch(device, T0 + i * 3, 100, 0, i));
      await journal.upsertBatches(batches);
      await server.store.upsertBatches(batches.filter((_, i) => i % 4 !== 0));
      now = T0 + P + 61;
      // A meter that dies as soon as it is asked for batches.
      const dying = new SyncClient(
        journal,
        { host: '127.0.0.1', port: server.syncPort!, devices: [device], retentionS: 900 },
        log,
      );
      const answer = (dying as unknown as { answer: (r: { type: string }) => Promise<unknown> }).answer.bind(dying);
      (dying as unknown as { answer: (r: { type: string }) => Promise<unknown> }).answer = async (r) => {
        if (r.type === 'batches') {
          dying.close();
          throw new Error('killed');
        }
        return answer(r);
      };
      await dying.connect();
      const first = await Promise.all(server.sync!.catchUps.splice(0));
      expect(first[0]!.errors.length).to.equal(1);
      const checks = await server.store.readIntervalChecks({ device_id: device, from: T0, to: T0 + P });
      expect(checks.find((c) => c.interval_seconds === P)?.status).to.equal('pending');

      const healthy = new SyncClient(
        journal,
        { host: '127.0.0.1', port: server.syncPort!, devices: [device], retentionS: 900 },
        log,
      );
      await healthy.connect();
      const second = await Promise.all(server.sync!.catchUps.splice(0));
      expect(second[0]!.errors).to.deep.equal([]);
      expect(second[0]!.periods.map((p) => p.status)).to.deep.equal(['repaired']);
      expect(await sameData(server.store, journal, device, T0, T0 + P)).to.equal(200);
      healthy.close();
      await journal.close();
    });

    it('server restarted mid-sync: the reconnecting meter gets its repair on the new server', async () => {
      const device = 'restart-meter';
      const journal = new Journal(join(dir, 'journal'));
      await journal.open();
      const batches = Array.from({ length: 300 }, (_, i) => makeBatch(device, T0 + i * 2, 100, 0, i));
      await journal.upsertBatches(batches);
      await server.store.upsertBatches(batches.filter((_, i) => i % 3 !== 0));
      now = T0 + P + 61;
      const sync = new SyncClient(
        journal,
        { host: '127.0.0.1', port: server.syncPort!, devices: [device], retentionS: 900, reconnect: true },
        log,
      );
      // Stop the server while it is waiting for the first batches answer.
      let stopped: Promise<void> | undefined;
      const answer = (sync as unknown as { answer: (r: { type: string }) => Promise<unknown> }).answer.bind(sync);
      (sync as unknown as { answer: (r: { type: string }) => Promise<unknown> }).answer = async (r) => {
        if (r.type === 'batches' && !stopped) stopped = server.stop();
        return answer(r);
      };
      await sync.connect();
      // The stopping server may still finish the repair it was given (a graceful stop drains its writes,
      // and a store that writes fast enough does): then the new server finds the period already repaired.
      const before = await Promise.all(server.sync!.catchUps.splice(0)).catch(() => []);
      await stopped;
      // Same data directory and sync port: the meter reconnects by itself.
      const old = server;
      server = await startTestServer(
        {
          ...backendConfig,
          'storage.path': join(old.dir, 'data'),
          'sync.port': String(old.syncPort),
          'sync.syncfreq': String(PERIOD_MIN),
          'sync.grace_seconds': '60',
        },
        { now: clock },
      );
      await pollUntil(() => server.sync!.catchUps.length > 0, 'the meter to reconnect (its hello starts a catch-up)');
      const reports = await Promise.all(server.sync!.catchUps.splice(0));
      expect(reports.map((r) => r.clients)).to.deep.equal([1]);
      // Settled by one of them. The old server may have finished the repair as it drained its writes,
      // recorded the period's check and not lived to report it (its catch-up rejected: `before` empty);
      // the new one then finds the period settled and has nothing to do. So the store's check decides,
      // with the reports: the period is 'repaired', and the store holds all 300 batches (it had 200).
      const statuses = [...before, ...reports].flatMap((r) => r.periods).map((p) => p.status);
      const recorded = (await server.store.readIntervalChecks({ device_id: device, from: T0, to: T0 + P })).map(
        (c) => c.status,
      );
      expect(
        statuses.includes('repaired') || recorded.includes('repaired'),
        `repaired by the old server before it stopped, or by the new one (reported: ${statuses.join(', ')}; ` +
          `recorded: ${recorded.join(', ')})`,
      ).to.equal(true);
      expect(await sameData(server.store, journal, device, T0, T0 + P)).to.equal(300);
      sync.close();
      await journal.close();
      rmSync(old.dir, { recursive: true, force: true });
    });
  });

function compact(sec: number): string {
  const p = epochSecondToParts(sec);
  return p.ec_date + p.ec_time;
}
