import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { FailoverSender } from '../../src/client/failover-sender.js';
import { Journal } from '../../src/client/journal.js';
import { MeterClient } from '../../src/client/meter-client.js';
import type { Endpoint } from '../../src/client/server-list.js';
import { ServerPool } from '../../src/client/server-pool.js';
import { SyncClient } from '../../src/client/sync-client.js';
import { toBatch } from '../../src/client/readings.js';
import { batchKeyString, type Batch } from '../../src/domain/batch.js';
import type { ConsumptionStore } from '../../src/store/consumption-store.js';
import { startTestDns } from '../helpers/dns-server.js';
import { runBin } from '../helpers/server-process.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { pollUntil } from '../helpers/wait.js';

/**
 * Meters with two receivers (item 3 of issue 17): two real ec-server instances on real sockets, each with
 * its own SQLite file; the preferred one is stopped mid-stream, the meter carries on with the other, and
 * after a sync round the survivor holds every journaled batch. Then the preferred one comes back on its
 * old ports and the meter (SIP and sync) returns to it.
 */
const log = pino({ level: process.env.EC_TEST_LOG ?? 'silent' });
const T0 = Date.UTC(2026, 5, 1) / 1000; // a period boundary
const P = 600;
const DEVICES = ['fo-meter-1', 'fo-meter-2'];

async function keysOf(store: ConsumptionStore, device: string, from: number, to: number): Promise<string[]> {
  return (await store.readSummaries({ device_id: device, from, to })).map((b) => batchKeyString(b) + b.values_checksum);
}

for (const transport of ['udp', 'tcp'] as const)
  describe(`meter failover between two receivers (${transport})`, function () {
    this.timeout(120_000);
    let now = T0;
    const clock = () => now;
    let a: TestServer | undefined;
    let b: TestServer;
    let dir: string;
    const config = { 'sync.syncfreq': '10', 'sync.grace_seconds': '60', 'sync.request_timeout': '5' };

    beforeEach(async () => {
      now = T0;
      dir = mkdtempSync(join(tmpdir(), 'ec-failover-'));
      a = await startTestServer(config, { now: clock });
      b = await startTestServer(config, { now: clock });
    });
    afterEach(async () => {
      await a?.cleanup();
      await b.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('preferred receiver stopped mid-stream: the meter goes on, sync makes it whole, it comes back', async () => {
      const first = a!;
      const journal = new Journal(join(dir, 'journal'));
      await journal.open();
      const poolOptions = { retryMs: 1000, maxRetryMs: 4000, quickRetryMs: 200 };
      const syncPool = new ServerPool(
        [
          { host: '127.0.0.1', port: first.syncPort! },
          { host: '127.0.0.1', port: b.syncPort! },
        ],
        poolOptions,
      );
      const sync = new SyncClient(
        journal,
        { host: '', port: 0, pool: syncPool, devices: DEVICES, retentionS: 3600, reconnect: true },
        log,
      );
      await sync.connect();
      const sipEndpoints: Endpoint[] = [
        { host: '127.0.0.1', port: first.port },
        { host: '127.0.0.1', port: b.port },
      ];
      // T1 = 20 ms: a UDP request to a dead receiver times out (Timer F, 64*T1) in 1.3 s instead of 32 s.
      const sender = FailoverSender.create(sipEndpoints, { transport, from: DEVICES[0]!, t1Ms: 20 }, log, poolOptions);
      await sender.start();
      let stopping: Promise<void> | undefined;
      let ackedBeforeStop = 0;
      const meter = new MeterClient(
        journal,
        sender,
        {
          source: {
            kind: 'generate',
            devices: DEVICES,
            start: T0,
            seconds: P,
            realtime: false,
            rate: 50,
            batchMs: 1000,
          },
          loss: 0,
          corrupt: 0,
          window: 16,
          maxAttempts: 5,
          retentionS: 3600,
          onProgress: (s) => {
            if (!stopping && s.acked >= 300) {
              ackedBeforeStop = s.acked;
              stopping = first.stop();
            }
          },
        },
        log,
      );
      const stats = await meter.run();
      await stopping;
      expect(ackedBeforeStop, 'the preferred receiver took the start of the stream').to.be.at.least(300);
      expect(stats.generated).to.equal(P * DEVICES.length);
      expect(stats.failed, 'no batch given up').to.equal(0);
      expect(stats.acked).to.equal(stats.generated);
      expect(stats.switches, 'moved to the second receiver').to.be.at.least(1);

      // The second receiver took the rest of the stream; what the first one acknowledged is only there.
      const onB = await Promise.all(DEVICES.map((d) => keysOf(b.store, d, T0, T0 + P)));
      const storedOnB = onB.reduce((n, k) => n + k.length, 0);
      expect(storedOnB)
        .to.be.below(stats.generated)
        .and.at.least(stats.generated - ackedBeforeStop - 16);

      // The sync connection moved too; the survivor's round asks the journal for what it lacks.
      await pollUntil(() => b.sync!.catchUps.length > 0, 'the sync client to move to the survivor', 10_000);
      await Promise.all(b.sync!.catchUps.splice(0));
      now = T0 + P + 61;
      const round = await b.sync!.runRound();
      expect(round.errors).to.deep.equal([]);
      expect(round.clients, 'the meter is connected to the survivor').to.equal(1);
      expect(round.periods.filter((p) => p.status === 'repaired')).to.have.length(DEVICES.length);
      for (const d of DEVICES) {
        const mine = await keysOf(journal, d, T0, T0 + P);
        expect(mine).to.have.length(P);
        expect(await keysOf(b.store, d, T0, T0 + P), `${d}: survivor == journal`).to.deep.equal(mine);
      }

      // The preferred receiver comes back on its old ports: after the backoff, the meter returns to it.
      a = await startTestServer(
        { ...config, 'sip.port': String(first.port), 'sync.port': String(first.syncPort) },
        { now: clock },
      );
      const back = a;
      await pollUntil(() => back.sync!.catchUps.length > 0, 'the sync client to come back', 15_000);
      await new Promise((r) => setTimeout(r, poolOptions.maxRetryMs));
      const again = new MeterClient(
        journal,
        sender,
        {
          source: { kind: 'batches', batches: nextMinute() },
          loss: 0,
          corrupt: 0,
          window: 4,
          maxAttempts: 5,
          retentionS: 3600,
        },
        log,
      );
      const stats2 = await again.run();
      expect(stats2.acked).to.equal(60);
      // One request probes the returned receiver; those sent while it is out (its first commit) go to the other.
      const returned = await keysOf(back.store, DEVICES[0]!, T0 + P, T0 + P + 60);
      expect(returned.length, 'the returned receiver takes the new batches').to.be.at.least(40);
      expect(returned.at(-1), 'the last one included').to.equal(
        (await keysOf(journal, DEVICES[0]!, T0 + P, T0 + P + 60)).at(-1),
      );
      expect(sender.pool.down()).to.deep.equal([]);
      sender.close();
      sync.close();
      await journal.close();
    });
  });

describe('ec-client --server DOMAIN: receivers from DNS SRV records (process, real DNS server)', function () {
  this.timeout(60_000);
  it('sends to the receiver of the lowest SRV priority, and names a domain without service', async () => {
    const standby = await startTestServer();
    const primary = await startTestServer();
    const dns = await startTestDns({
      '_sip._udp.meters.test': [
        { priority: 20, weight: 0, port: standby.port, target: '127.0.0.1' },
        { priority: 10, weight: 5, port: primary.port, target: '127.0.0.1' },
      ],
      '_sip._udp.closed.test': [{ priority: 0, weight: 0, port: 0, target: '' }],
    });
    try {
      const common = ['--config', '/dev/null', '--dns-server', dns.address, '--no-sync', '--device', 'srv-meter'];
      const stream = ['--rate', '10', '--start', '20260601000000', '--duration', '20'];
      const journal = ['--journal', join(standby.dir, 'journal')];
      const r = await runBin('ec-client', [...common, ...stream, ...journal, '--server', 'meters.test']);
      expect(r.code, r.stderr).to.equal(0);
      expect(dns.queries).to.include('_sip._udp.meters.test');
      expect(await keysOf(primary.store, 'srv-meter', T0, T0 + 20)).to.have.length(20);
      expect(await keysOf(standby.store, 'srv-meter', T0, T0 + 20)).to.have.length(0);
      const closed = await runBin('ec-client', [...common, ...stream, ...journal, '--server', 'closed.test']);
      expect(closed.code).to.equal(2);
      expect(closed.stderr).to.match(/--server: the domain's SRV records say the service is not offered there/);
    } finally {
      await dns.close();
      await standby.cleanup();
      await primary.cleanup();
    }
  });
});

describe('ec-client --server DOMAIN follows its SRV records (--srv-refresh; process, real DNS server)', function () {
  this.timeout(60_000);
  it('receivers changed in DNS mid-stream: the meter moves to the new one, every batch stored once', async () => {
    const before = await startTestServer();
    const after = await startTestServer();
    const records = {
      '_sip._udp.moving.test': [{ priority: 10, weight: 0, port: before.port, target: '127.0.0.1' }],
    };
    const dns = await startTestDns(records);
    try {
      // In real time: 10 batches/s for 8 s, so that the lookups every second see the change mid-stream.
      const N = 80;
      const from = Math.floor(Date.now() / 1000) - 1;
      const to = from + 60;
      const running = runBin('ec-client', [
        ...['--config', '/dev/null', '--dns-server', dns.address, '--no-sync', '--device', 'dns-meter'],
        ...['--rate', '100', '--batch-ms', '100', '--duration', String(N / 10), '--srv-refresh', '1'],
        ...['--journal', join(before.dir, 'journal'), '--server', 'moving.test'],
      ]);
      for (let waited = 0; (await keysOf(before.store, 'dns-meter', from, to)).length < 10; waited += 50) {
        if (waited > 10_000) throw new Error('the meter did not start on the receiver DNS named first');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // The operator replaces the receiver in DNS; the old one keeps running (nothing forces the move).
      records['_sip._udp.moving.test'] = [{ priority: 10, weight: 0, port: after.port, target: '127.0.0.1' }];
      const r = await running;
      expect(r.code, r.stderr).to.equal(0);
      const onBefore = await keysOf(before.store, 'dns-meter', from, to);
      const onAfter = await keysOf(after.store, 'dns-meter', from, to);
      const all = [...new Set([...onBefore, ...onAfter])].sort();
      expect(all.length, 'every batch stored').to.equal(N);
      // How many went where depends on the machine's speed; that the meter ended on the new one does not.
      expect(onAfter, 'the last batch went to the receiver now in DNS').to.include(all[N - 1]);
      expect(onBefore).to.not.include(all[N - 1]);
      expect(dns.queries.filter((q) => q === '_sip._udp.moving.test').length, 'looked up again').to.be.at.least(2);
    } finally {
      await dns.close();
      await before.cleanup();
      await after.cleanup();
    }
  });
});

/** One more minute of one meter, after the first stream. */
function nextMinute(): Batch[] {
  return Array.from({ length: 60 }, (_, i) => toBatch(DEVICES[0]!, T0 + P + i, ['0,1.000', '500000,1.250']));
}
