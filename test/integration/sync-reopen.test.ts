import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { Journal } from '../../src/client/journal.js';
import { SipSender } from '../../src/client/sip-sender.js';
import { SyncClient } from '../../src/client/sync-client.js';
import type { Batch } from '../../src/domain/batch.js';
import { bodyOf, makeBatch } from '../helpers/batches.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Re-opened periods (issue 14, items 5 and 8), end to end on real sockets and a real SQLite file: a later
 * write into a recorded period re-opens it and the next round checks it again; replacing an acknowledged
 * batch with other values is counted (ec_batches_replaced_total) and logged, a retransmission is not;
 * and a period's minute rows always say what its latest check found.
 */

const PERIOD_MIN = 10;
const P = PERIOD_MIN * 60;
const T0 = Date.UTC(2026, 3, 1, 0, 0, 0) / 1000; // a period boundary

function metricValue(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

describe('sync: re-opened periods and minute rows that agree with the latest check', function () {
  this.timeout(60_000);
  let server: TestServer;
  let dir: string;
  let now = T0;
  const logged: { msg: string; device_id?: string; old_checksum?: string }[] = [];

  beforeEach(async () => {
    now = T0;
    logged.length = 0;
    dir = mkdtempSync(join(tmpdir(), 'ec-reopen-'));
    const log = pino(
      { level: 'warn' },
      { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) },
    );
    server = await startTestServer(
      { 'sync.syncfreq': String(PERIOD_MIN), 'sync.grace_seconds': '60', 'sync.request_timeout': '5' },
      { now: () => now },
      log,
    );
  });
  // Closed even when a test fails: an open socket would keep mocha from exiting.
  const open: { close(): unknown }[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close();
    await server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const statuses = async (device: string) =>
    (await server.store.readIntervalChecks({ device_id: device, from: T0, to: T0 + P })).map(
      (c) => `${c.ec_time}/${c.interval_seconds} ${c.status}`,
    );

  async function meter(device: string, batches: Batch[]) {
    const journal = new Journal(join(dir, `journal-${device}`));
    await journal.open();
    await journal.upsertBatches(batches);
    const sync = new SyncClient(
      journal,
      { host: '127.0.0.1', port: server.syncPort!, devices: [device], retentionS: 900 },
      pino({ level: 'silent' }),
    );
    open.push(sync, journal);
    await sync.connect();
    await Promise.all(server.sync!.catchUps);
    return { journal, sync };
  }

  it('replacing an acknowledged batch: counted, logged, re-opens the period; the next round repairs it', async () => {
    const device = 'reopen-1';
    const batches = Array.from({ length: 30 }, (_, i) => makeBatch(device, T0 + i * 20, 5, 0, i));
    const sender = new SipSender({ host: '127.0.0.1', port: server.port, transport: 'udp', from: device }, pino());
    open.push(sender);
    await sender.start();
    for (const b of batches) expect((await sender.send(bodyOf(b), {})).status).to.equal(200);
    await meter(device, batches);
    now = T0 + P + 61;
    expect((await server.sync!.runRound()).periods.map((p) => p.status)).to.deep.equal(['verified']);
    expect(await statuses(device)).to.deep.equal(['000000/600 verified']);
    const metrics = async () => metricValue(await server.metrics.metrics(), 'ec_batches_replaced_total');
    const replacedBefore = await metrics();

    // A retransmission of the same content: nothing counted, nothing re-opened.
    expect((await sender.send(bodyOf(batches[7]!), {})).status).to.equal(200);
    await server.replacements.poll();
    expect(await metrics()).to.equal(replacedBefore);
    expect(await statuses(device)).to.deep.equal(['000000/600 verified']);

    // Other values under an acknowledged key (T0 + 140 s, minute 00:02): counted, logged, re-opened.
    const forged = makeBatch(device, T0 + 140, 5, 0, 999);
    expect(forged.values_checksum).to.not.equal(batches[7]!.values_checksum);
    expect((await sender.send(bodyOf(forged), {})).status).to.equal(200);
    await server.replacements.poll();
    expect(await metrics()).to.equal(replacedBefore + 1);
    const line = logged.find((l) => l.msg.includes('replaced with other values'));
    expect(line).to.include({ device_id: device, old_checksum: batches[7]!.values_checksum });
    expect(await statuses(device)).to.deep.equal(['000000/600 pending']);

    // The next round checks the period again and puts the meter's values back; the minute row says so.
    const round = await server.sync!.runRound();
    expect(round.periods.map((p) => [p.status, p.repaired])).to.deep.equal([['repaired', 1]]);
    const stored = await server.store.readBatches({ device_id: device, from: T0 + 140, to: T0 + 141 });
    expect(stored.map((b) => b.values_checksum)).to.deep.equal([batches[7]!.values_checksum]);
    expect(await statuses(device)).to.deep.equal([
      '000000/60 verified',
      '000000/600 repaired',
      '000100/60 verified',
      '000200/60 repaired',
      '000300/60 verified',
      '000400/60 verified',
      '000500/60 verified',
      '000600/60 verified',
      '000700/60 verified',
      '000800/60 verified',
      '000900/60 verified',
    ]);
    // Settled again: the following round has nothing to do.
    expect((await server.sync!.runRound()).periods).to.deep.equal([]);
  });

  it('a period found equal later: its minute rows turn verified too (none stays mismatch-unresolved)', async () => {
    const device = 'reopen-2';
    const batches = Array.from({ length: 20 }, (_, i) => makeBatch(device, T0 + i * 30, 5, 0, i));
    const extra = makeBatch(device, T0 + 125, 5, 0, 77); // minute 00:02, unknown to the meter at first
    await server.store.upsertBatches([...batches, extra]);
    const { journal } = await meter(device, batches);
    now = T0 + P + 61;
    const first = await server.sync!.runRound();
    expect(first.periods.map((p) => p.status)).to.deep.equal(['mismatch-unresolved']);
    expect((await statuses(device)).filter((s) => !s.endsWith('verified'))).to.deep.equal([
      '000000/600 mismatch-unresolved',
      '000200/60 mismatch-unresolved',
    ]);
    // The meter journals the batch after all (late): the next round finds the period equal.
    await journal.upsertBatches([extra]);
    const second = await server.sync!.runRound();
    expect(second.periods.map((p) => [p.status, p.exchanges])).to.deep.equal([['verified', 1]]);
    const after = await statuses(device);
    expect(after).to.include('000000/600 verified');
    expect(after.filter((s) => !s.endsWith('verified'))).to.deep.equal([]);
  });
});
