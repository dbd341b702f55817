import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DigestSession } from '../../src/client/digest-session.js';
import { batchKeyString } from '../../src/domain/batch.js';
import { credentialFor } from '../../src/domain/device-credential.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { ConsumptionStore } from '../../src/store/consumption-store.js';
import { answersOptions, startKamailioFront, type RunningKamailio } from '../helpers/kamailio.js';
import { expectEveryCallSucceeded, injectionRows } from '../helpers/sipp-ingest.js';
import { buildMessage, udpRequest } from '../helpers/sip-client.js';
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

/**
 * Authenticated meters behind the front: the receivers share security.nonce_key (and, as on a shared
 * Cassandra keyspace, the devices' credentials), so a nonce one receiver issued is good at the other.
 * The front spreads by Call-ID, and a meter sends each batch in a call of its own, so a meter that
 * answered one challenge is spread over both receivers with the same nonce: neither may challenge it
 * again. With a key per receiver, half its batches would get `401 stale` and cost a round trip.
 */
describe('Kamailio dispatcher front: digest authentication over two receivers @full', function () {
  this.timeout(180_000);
  const NONCE_KEY = randomBytes(32).toString('hex');
  const SECRET = 'front-secret-0123456789abcdef';
  const AUTH = {
    'security.require_auth': 'true',
    // MD5 first: Debian's sipp 3.6 knows no SHA-256 and takes the first challenge it is given.
    'security.digest_algorithms': 'MD5,SHA-256',
    'security.nonce_key': NONCE_KEY,
  };
  let dir: string;
  let receivers: TestServer[] = [];
  let front: RunningKamailio | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-kamailio-auth-'));
    receivers = [await startTestServer(AUTH), await startTestServer(AUTH)];
    for (const r of receivers)
      for (const device of ['kam-auth-1', 'kam-auth-2'])
        await r.store.putCredential(credentialFor(device, r.config.security.realm, SECRET, Date.now()));
    front = await startKamailioFront(
      dir,
      receivers.map((r) => ({ host: '127.0.0.1', port: r.port })),
    );
  });
  after(async () => {
    await front?.stop();
    for (const r of receivers) await r.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const storedOn = async (r: TestServer, device: string, from: number, to: number) =>
    (await r.store.readSummaries({ device_id: device, from, to })).length;

  it('one challenge, then calls of their own on both receivers: all 200, none challenged again', async () => {
    const device = 'kam-auth-1';
    const t0 = FIRST + 10_000;
    const uri = `sip:ec@127.0.0.1:${front!.port}`;
    const body = (i: number) => `${device}|${stampOf(t0 + i)}|0,${i}.5;500000,2`;
    const first = await udpRequest(front!.port, buildMessage({ port: front!.port, body: body(0) }), 2000);
    expect(first?.status, 'the first MESSAGE is challenged').to.equal(401);
    const session = new DigestSession(device, SECRET);
    const challenges = first!.raw.split('\r\n').filter((l) => /^WWW-Authenticate:/i.test(l));
    expect(session.accept(challenges.map((l) => l.replace(/^[^:]+:\s*/, '')))).to.equal(true);
    const N = 40;
    const statuses: number[] = [];
    for (let i = 1; i <= N; i++) {
      const msg = buildMessage({
        port: front!.port,
        body: body(i),
        callId: `kam-auth-call-${i}`,
        extraHeaders: [`Authorization: ${session.authorize('MESSAGE', uri, body(i))!}`],
      });
      statuses.push((await udpRequest(front!.port, msg, 2000))?.status ?? 0);
    }
    expect(statuses, 'every batch answered 200 with the one nonce').to.deep.equal(Array<number>(N).fill(200));
    const perReceiver = await Promise.all(receivers.map((r) => storedOn(r, device, t0 + 1, t0 + N + 1)));
    console.log(`      one nonce, ${N} calls through the front: receivers stored ${perReceiver.join(' + ')}`);
    expect(perReceiver[0]! + perReceiver[1]!).to.equal(N);
    // Both took a share: the nonce issued by one receiver was accepted by the other.
    for (const n of perReceiver) expect(n).to.be.at.least(5);
  });

  it('sipp answers the challenge through the front (MD5, auth-int): 30 calls x 20 batches, all stored', async () => {
    const device = 'kam-auth-2';
    const t0 = FIRST + 20_000;
    const calls = 30;
    const inf = join(dir, 'auth-calls.csv');
    writeInjection(
      inf,
      Array.from({ length: calls }, (_, i) => [device, stampOf(t0 + i)]),
    );
    const screen = join(dir, 'auth-screen.log');
    const errors = join(dir, 'auth-errors.log');
    const run = await runSipp([
      `127.0.0.1:${front!.port}`,
      ...['-sf', join(SIPP_FIXTURES, 'message-auth-uac.xml'), '-inf', inf, '-t', 'u1', '-i', '127.0.0.1'],
      ...['-au', device, '-ap', SECRET, '-p', String(await freePort()), '-m', String(calls), '-r', '10'],
      ...['-trace_screen', '-screen_file', screen, '-trace_err', '-error_file', errors],
    ]);
    expectEveryCallSucceeded(run, screen, errors, calls);
    const perReceiver = await Promise.all(receivers.map((r) => storedOn(r, device, t0, t0 + calls)));
    console.log(`      sipp with digest through the front: receivers stored ${perReceiver.join(' + ')} batches`);
    expect(perReceiver[0]! + perReceiver[1]!).to.equal(calls * 20);
    for (const n of perReceiver) expect(n).to.be.greaterThan(0);
  });
});

function stampOf(second: number): string {
  return new Date(second * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
