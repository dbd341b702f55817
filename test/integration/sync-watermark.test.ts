import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { Journal } from '../../src/client/journal.js';
import { MeterClient } from '../../src/client/meter-client.js';
import { SipSender } from '../../src/client/sip-sender.js';
import { SyncClient } from '../../src/client/sync-client.js';
import { batchKeyString, type Batch } from '../../src/domain/batch.js';
import type { ConsumptionStore } from '../../src/store/consumption-store.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { pollUntil } from '../helpers/wait.js';

/**
 * The watermark (docs/sync-protocol.md): a meter replaying a past hour at full speed while the catch-up
 * after its hello reconciles that hour. The catch-up records only the periods the meter declares final;
 * after the next round the server holds exactly the journal, whatever the interleaving (several seeds).
 */

const log = pino({ level: process.env.EC_TEST_LOG ?? 'silent' });
const PERIOD_MIN = 10;
const P = PERIOD_MIN * 60;
const HOUR = 3600;
const T0 = Date.UTC(2026, 3, 1, 0, 0, 0) / 1000; // a period boundary

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

async function expectSameData(server: ConsumptionStore, journal: ConsumptionStore, device: string): Promise<void> {
  const strip = (x: Batch) => `${batchKeyString(x)} ${x.values_count} ${x.values_checksum} ${x.ec_consumption_values}`;
  const a = (await server.readBatches({ device_id: device, from: T0, to: T0 + HOUR })).map(strip);
  const b = (await journal.readBatches({ device_id: device, from: T0, to: T0 + HOUR })).map(strip);
  expect(b.length, 'journal').to.equal(HOUR);
  const missing = b.filter((x) => !a.includes(x)).length;
  const wrong = a.filter((x) => !b.includes(x)).length;
  expect({ missing, wrong }, `server vs journal of ${device}`).to.deep.equal({ missing: 0, wrong: 0 });
}

describe('sync watermark: a replay of a past hour while the catch-up runs', function () {
  this.timeout(240_000);
  let server: TestServer;
  let dir: string;
  // The server's clock: the replayed hour has ended (plus the grace).
  const now = T0 + HOUR + 120;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-watermark-'));
    server = await startTestServer(
      { 'sync.syncfreq': String(PERIOD_MIN), 'sync.grace_seconds': '60', 'sync.request_timeout': '10' },
      { now: () => now },
    );
  });
  after(async () => {
    await server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  // One seed in the fast tier (npm test); the other four interleavings (about 10 s each) in the full tier.
  for (const seed of [11, 23, 37, 41, 59]) {
    const tier = seed === 11 ? '' : ' @full';
    const title = `seed ${seed}: 5% lost, 1% corrupt; after the next round store == journal, nothing recorded early`;
    it(`${title}${tier}`, async () => {
      const device = `replay-${seed}`;
      const journal = new Journal(join(dir, `journal-${seed}`));
      await journal.open();
      const sender = new SipSender({ host: '127.0.0.1', port: server.port, transport: 'auto', from: device }, log);
      await sender.start();
      const meter = new MeterClient(
        journal,
        sender,
        {
          source: {
            kind: 'generate',
            devices: [device],
            start: T0,
            seconds: HOUR,
            realtime: false,
            rate: 10,
            batchMs: 1000,
          },
          loss: 0.05,
          corrupt: 0.01,
          window: 16,
          maxAttempts: 3,
          retentionS: 2 * HOUR,
          random: seeded(seed),
        },
        log,
      );
      const sync = new SyncClient(
        journal,
        {
          host: '127.0.0.1',
          port: server.syncPort!,
          devices: [device],
          retentionS: 2 * HOUR,
          final: () => meter.final(),
        },
        log,
      );
      const replay = meter.run();
      // The hello (and its catch-up) comes while the replay is under way, at a point that depends on the seed.
      await pollUntil(() => meter.stats.generated >= 300 + (seed % 7) * 200, 'the replay under way', 60_000, 2);
      await sync.connect();
      const catchUp = server.sync!.catchUps.at(-1)!;
      const [stats, caught] = await Promise.all([replay, catchUp]);
      sender.close();
      expect(stats.failed).to.equal(0);
      expect(stats.lost).to.be.greaterThan(50);
      expect(stats.corrupted).to.be.greaterThan(5);
      // The catch-up ran while the replay journaled: it recorded what was final and left the rest pending.
      expect(caught.errors).to.deep.equal([]);
      const ofHour = caught.periods.filter((p) => p.from >= T0 && p.to <= T0 + HOUR);
      const recordedEarly = ofHour.filter((p) => p.status === 'repaired' || p.status === 'verified');
      // The period being replayed when the hello came was not final: the catch-up stopped there.
      expect(ofHour.filter((p) => p.beyondFinal)).to.have.length(1);

      const round = await server.sync!.runRound();
      expect(round.errors).to.deep.equal([]);
      await expectSameData(server.store, journal, device);
      const checks = await server.store.readIntervalChecks({ device_id: device, from: T0, to: T0 + HOUR });
      const periods = checks.filter((c) => c.interval_seconds === P);
      expect(periods.map((c) => c.status)).to.satisfy(
        (s: string[]) => s.length === HOUR / P && s.every((x) => x === 'verified' || x === 'repaired'),
      );
      // Minute rows agree with their period's latest check: nothing unresolved or pending is left.
      const minutes = checks.filter((c) => c.interval_seconds === 60);
      expect(minutes.filter((c) => c.status !== 'verified' && c.status !== 'repaired')).to.deep.equal([]);
      console.log(
        `      seed ${seed}: catch-up recorded ${recordedEarly.length} of ${HOUR / P} periods while replaying ` +
          `(${ofHour.length - recordedEarly.length} left pending); next round: ` +
          `${round.periods.map((p) => p.status).join(',') || 'nothing'}; lost ${stats.lost}, ` +
          `corrupted ${stats.corrupted}`,
      );
      sync.close();
      await journal.close();
    });
  }
});
