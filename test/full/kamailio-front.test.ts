import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { batchKeyString } from '../../src/domain/batch.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { ConsumptionStore } from '../../src/store/consumption-store.js';
import { answersOptions, startKamailioFront, type RunningKamailio } from '../helpers/kamailio.js';
import { expectEveryCallSucceeded, injectionRows } from '../helpers/sipp-ingest.js';
import { freePort, runSipp, SIPP_FIXTURES, writeInjection } from '../helpers/sipp.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Must-show 3 of issue 17: sipp -> deploy/kamailio (dispatcher, stateless) -> two ec-server receivers.
 * Every MESSAGE answered 200, the load split between the receivers, and one receiver stopped mid-run:
 * receiver A is a real process killed with SIGKILL (a crash: a graceful stop would answer `503` to what
 * arrives while it closes, which the stateless front rightly passes on); the dispatcher's OPTIONS probe
 * marks it down and the rest of the run (the retransmissions of what A swallowed included) is answered
 * by B. Kamailio missing is a failure, not a skip (scripts/test-all.sh installs it).
 */
const CALLS = 1500;
const RATE = 150;
const DEVICE = 'kam-meter-1';
const FIRST = Date.UTC(2026, 1, 1) / 1000;

async function keys(store: ConsumptionStore): Promise<Set<string>> {
  const out = new Set<string>();
  for (let t = FIRST; t < FIRST + CALLS; t += 3600)
    for (const b of await store.readSummaries({ device_id: DEVICE, from: t, to: Math.min(t + 3600, FIRST + CALLS) }))
      out.add(batchKeyString(b));
  return out;
}

describe('Kamailio dispatcher front to two receivers (sipp) @full', function () {
  this.timeout(180_000);
  let dir: string;
  let a: ServerProcess;
  let b: TestServer;
  let front: RunningKamailio | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-kamailio-'));
    const args = ['--port', '0', '--listen', '127.0.0.1', '--data-dir', join(dir, 'a-data')];
    a = await spawnServer([...args, '--set', 'sync.enabled=false', '--set', 'http.enabled=false']);
    b = await startTestServer();
  });
  after(async () => {
    await front?.stop();
    a.child.kill('SIGKILL');
    await b.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('all 200, split over both receivers, and one receiver stopped mid-run leaves the rest answered', async () => {
    front = await startKamailioFront(dir, [
      { host: '127.0.0.1', port: a.port },
      { host: '127.0.0.1', port: b.port },
    ]);
    const { rows } = injectionRows(DEVICE, FIRST, CALLS);
    const inf = join(dir, 'calls.csv');
    writeInjection(inf, rows);
    const screen = join(dir, 'screen.log');
    const errors = join(dir, 'errors.log');
    const sipp = runSipp([
      `127.0.0.1:${front.port}`,
      ...['-sf', join(SIPP_FIXTURES, 'message-uac.xml'), '-inf', inf, '-t', 'u1', '-i', '127.0.0.1'],
      ...['-p', String(await freePort()), '-m', String(CALLS), '-r'],
      String(RATE),
      ...['-l', '500', '-max_retrans', '10', '-trace_screen', '-screen_file', screen],
      ...['-trace_err', '-error_file', errors],
    ]);
    // A third of the way in, receiver A dies.
    await new Promise((r) => setTimeout(r, ((CALLS / RATE) * 1000) / 3));
    a.child.kill('SIGKILL');
    await a.exited;
    expectEveryCallSucceeded(await sipp, screen, errors, CALLS);

    // Where the batches went: A's file (reopened after its stop) and B's store.
    const storeA = new SqliteStore({ dir: join(dir, 'a-data'), synchronous: 'FULL' });
    await storeA.open();
    const onA = await keys(storeA);
    await storeA.close();
    const onB = await keys(b.store);
    const all = new Set([...onA, ...onB]);
    console.log(
      `      through Kamailio: ${CALLS} calls, receiver A ${onA.size} (killed at 1/3), receiver B ${onB.size}`,
    );
    // Acknowledged means durable: every 200 is a row on A (fsynced before its kill) or on B.
    expect(all.size, 'every answered batch is stored on one of them').to.equal(CALLS);
    // Before the stop the hash over Call-ID split ~1/3 of the calls evenly: A took about half of them.
    expect(onA.size).to.be.within(CALLS / 6 - 100, CALLS / 6 + 150);
    expect(onB.size).to.be.at.least(CALLS - onA.size);
    // The front still answers its own OPTIONS; the dispatcher took A out (B answers alone since).
    expect(await answersOptions(front.port)).to.equal(true);
  });
});
