import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { batchKeyString, epochSecondToParts, type Batch } from '../../src/domain/batch.js';
import { CassandraStore } from '../../src/store/cassandra-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import {
  CLUSTER_HOSTS,
  clusterConfig,
  clusterNode,
  clusterSettings,
  dropClusterKeyspace,
  requireCluster,
} from '../helpers/cassandra-cluster.js';
import { missing } from '../helpers/cassandra-node.js';
import { MeterProcess } from '../helpers/meter-process.js';
import { REPO, spawnServer, waitForOutput, type ServerProcess } from '../helpers/server-process.js';
import { pollUntil } from '../helpers/wait.js';

const run = promisify(execFile);

/** Resolves once the async `cond` holds (checked every `everyMs`); rejects naming `what` after `ms`. */
async function untilAsync(cond: () => Promise<boolean>, what: string, ms: number, everyMs: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
const PYVENV = process.env.EC_PYVENV ?? join(homedir(), '.cache/ec-server/pyvenv');
const CQL_READ = join(REPO, 'scripts/cassandra/cql-read.py');
const METERS = 6;
const PERIOD_S = 600;
/**
 * Eight hours ago, on a period boundary: every period the meters fill has ended when sync runs (they
 * stream faster than real time: ~2,500-4,000 simulated seconds each here, more on a faster machine).
 */
const T0 = Math.floor(Date.now() / 1000 / 3600) * 3600 - 8 * 3600;
const KILLED_NODE = 2;

/** Every acknowledged batch, read back by the Python driver at QUORUM (an independent client). */
async function readBackAtQuorum(keyspace: string, device: string, secs: number[]): Promise<Set<number>> {
  const byDate = new Map<string, Set<string>>();
  for (const s of secs) {
    const p = epochSecondToParts(s);
    byDate.set(p.ec_date, (byDate.get(p.ec_date) ?? new Set()).add(p.ec_time.slice(0, 2)));
  }
  const found = new Set<number>();
  for (const [date, hours] of byDate) {
    const args = [CQL_READ, '--host', CLUSTER_HOSTS.join(','), '--consistency', 'QUORUM'];
    args.push('--keyspace', keyspace, '--device', device, '--date', date, ...[...hours].flatMap((h) => ['--hour', h]));
    const r = await run(join(PYVENV, 'bin/python'), args, { maxBuffer: 256 * 1024 * 1024 });
    const rows = (JSON.parse(r.stdout) as { rows: { ec_date: string; ec_time: string }[] }).rows;
    for (const row of rows) {
      const t = row.ec_time;
      const y = row.ec_date;
      found.add(
        Date.UTC(+y.slice(0, 4), +y.slice(4, 6) - 1, +y.slice(6, 8), +t.slice(0, 2), +t.slice(2, 4), +t.slice(4, 6)) /
          1000,
      );
    }
  }
  return found;
}

/** Batches per second acknowledged between two snapshots of the meters' count. */
function rate(from: { acked: number; ms: number }, to: { acked: number; ms: number }): number {
  return Math.round(((to.acked - from.acked) * 1000) / Math.max(1, to.ms - from.ms));
}

/**
 * Issue 17, must-show 1: three Cassandra nodes (RF 3, LOCAL_QUORUM), two receivers and six meters, all real
 * processes: each meter is an ec-client streaming over UDP with both receivers in its --server list (half
 * prefer A, half B), its sync connection likewise. A node is killed (SIGKILL) mid-stream and restarted; then a
 * receiver is killed, and its meters move to the other. Every batch a meter saw acknowledged (its trace lines)
 * is read back at QUORUM by the Python driver, and a sync round through the surviving receiver leaves the
 * store equal to every meter's journal (it brings the batches the meters "lost" on the way, --loss).
 */
describe('cluster failover: a node and a receiver killed mid-stream (3 nodes, 2 receivers) @full', function () {
  // 264-286 s here at a load average of 17-20 on 2 cores; 582 s once at a busier moment (12 batches/s).
  this.timeout(900_000);
  const keyspace = `ec_fail_${randomBytes(4).toString('hex')}`;
  let dir: string;
  const receivers: ServerProcess[] = [];
  const meters: MeterProcess[] = [];
  let store: CassandraStore | undefined;

  before(async function () {
    await requireCluster(this);
    if (!existsSync(join(PYVENV, 'bin/python'))) missing(this, `no Python venv with cassandra-driver at ${PYVENV}`);
    dir = mkdtempSync(join(tmpdir(), 'ec-fail-'));
    // The schema first, so that the receivers start together without racing to create it.
    store = new CassandraStore(clusterConfig(keyspace, { requestTimeoutMs: 10_000 }));
    await store.open();
  });
  after(async () => {
    for (const m of meters) m.kill();
    await Promise.all(meters.map((m) => m.exited));
    for (const r of receivers) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
    await Promise.all(receivers.map((r) => r.exited));
    // The killed node back, whatever happened.
    await clusterNode('start-node', KILLED_NODE).catch(() => undefined);
    await store?.close();
    await dropClusterKeyspace(keyspace).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('LOCAL_QUORUM writes go on, acks read back at QUORUM, meters move, sync: store == journal', async () => {
    const settings = {
      ...clusterSettings(keyspace),
      'cassandra.request_timeout_ms': '2000',
      'sip.listen_addr': '127.0.0.1',
      'sync.ip': '127.0.0.1',
      'sync.port': '0',
      'sync.syncfreq': String(PERIOD_S / 60),
      'sync.grace_seconds': '60',
      'http.enabled': 'false',
    };
    for (const name of ['a', 'b']) {
      const args = ['--config', '/dev/null', '--port', '0', '--data-dir', join(dir, name)];
      for (const [k, v] of Object.entries(settings)) args.push('--set', `${k}=${v}`);
      receivers.push(await spawnServer(args, {}, 60_000));
    }
    const syncPorts = await Promise.all(
      receivers.map(async (r) => Number((await waitForOutput(r, /sync service listening on tcp [\d.]+:(\d+)/))[1])),
    );
    const [a, b] = receivers as [ServerProcess, ServerProcess];
    const start = epochSecondToParts(T0);
    const devices = Array.from({ length: METERS }, (_, m) => `fail-${m}`);
    for (const [m, device] of devices.entries()) {
      // Half the meters prefer A, half B (SIP and sync alike).
      const order = m % 2 === 0 ? [0, 1] : [1, 0];
      const sip = order.map((i) => `127.0.0.1:${receivers[i]!.port}`).join(',');
      const sync = order.map((i) => `127.0.0.1:${syncPorts[i]!}`).join(',');
      meters.push(
        new MeterProcess([
          ...['--config', '/dev/null', '--device', device, '--journal', join(dir, `journal-${m}`)],
          // As fast as acknowledgements allow, from T0 on, until stopped; 5 records a batch, 4 in flight.
          ...['--start', start.ec_date + start.ec_time, '--duration', '0', '--rate', '5', '--window', '4'],
          // About 1 % journaled but never sent: sync must bring them.
          ...['--loss', '0.01', '--seed', String(m + 1), '--retention-hours', '9', '--linger', '3600'],
          // T1 50 ms: a request to a dead receiver times out (Timer F, 64*T1) after 3.2 s, then goes to the other.
          ...['--transport', 'udp', '--server', sip, '--sync-server', sync, '--t1-ms', '50'],
        ]),
      );
    }
    const acked = () => meters.reduce((n, m) => n + m.ackedCount, 0);
    const snapshot = () => ({ acked: acked(), ms: Date.now() });
    const progress = async (more: number, what: string) => {
      const target = acked() + more;
      await pollUntil(() => acked() >= target, what, 240_000, 100);
    };

    await progress(50 * METERS, 'start: 50 batches per meter acknowledged');
    const warm = snapshot();
    await progress(100 * METERS, 'warm-up: 100 batches per meter acknowledged');
    // A Cassandra node dies mid-stream.
    const atKill = snapshot();
    await clusterNode('kill-node', KILLED_NODE);
    await progress(300 * METERS, '300 batches per meter acknowledged with a node down');
    const downEnd = snapshot();
    const unavailable = meters.reduce((n, m) => n + m.countStatus(503, atKill.ms, downEnd.ms), 0);
    const early = meters.reduce((n, m) => n + m.countStatus(503, atKill.ms, atKill.ms + 5000), 0);
    // ... and comes back, while the meters stream on.
    await clusterNode('start-node', KILLED_NODE);
    const back = snapshot();
    await progress(100 * METERS, '100 batches per meter after the node is back');
    console.log(
      `      acknowledged: ${rate(warm, atKill)} batches/s before the kill, ${rate(atKill, downEnd)}/s with node ` +
        `${KILLED_NODE} down (${downEnd.acked - atKill.acked} in ${downEnd.ms - atKill.ms} ms), ` +
        `${rate(back, snapshot())}/s once it is back`,
    );
    // The driver moves the requests of the dead coordinator on (connection reset); those caught on it may
    // wait past ingest.max_wait_ms, or not be stored by ingest.max_answer_ms (auto: 400 ms on Cassandra), and
    // get a 503 (not a loss: the meter sends the batch again). No burst:
    // at most 5 % of the batches acknowledged meanwhile, beyond the 503s overload control gave at the rate
    // seen before the kill (on a starved machine a commit may wait past the bound with every node up; 42
    // in 21 s before the kill, 91 in 37 s with the node down, at a load average of ~20 on 2 cores).
    const before503 = meters.reduce((n, m) => n + m.countStatus(503, warm.ms, atKill.ms), 0);
    const background = Math.ceil((before503 * (downEnd.ms - atKill.ms)) / Math.max(1, atKill.ms - warm.ms));
    console.log(
      `      503s while node ${KILLED_NODE} was down: ${unavailable}, ${early} of them in its first 5 s ` +
        `(before the kill: ${before503} in ${atKill.ms - warm.ms} ms, ${background} at that rate)`,
    );
    expect(unavailable, '503s while a node was down').to.be.at.most(
      Math.ceil(0.05 * (downEnd.acked - atKill.acked)) + background,
    );

    // A receiver dies: its meters time out and move to the other.
    const beforeA = snapshot();
    a.child.kill('SIGKILL');
    await a.exited;
    await progress(150 * METERS, '150 batches per meter after receiver A died');
    await Promise.all(meters.map((m) => m.stopStream()));
    const bServer = `127.0.0.1:${b.port}`;
    for (const [m, meter] of meters.entries()) {
      const onB = meter.answers.filter((x) => x.status === 200 && x.server === bServer && x.at > beforeA.ms).length;
      expect(onB, `${devices[m]}: acknowledged by B after A died`).to.be.above(0);
    }
    console.log(
      `      receiver A killed: ${acked() - beforeA.acked} batches acknowledged after, by B; receiver switches ` +
        `${meters.map((m) => m.switches).join(' ')}; acknowledged ${meters.map((m) => m.ackedCount).join(' ')}`,
    );

    // Every acknowledged batch, read back at QUORUM by an independent client (node 2 included again).
    for (const [m, device] of devices.entries()) {
      const secs = [...(meters[m]!.acked.get(device) ?? [])];
      const found = await readBackAtQuorum(keyspace, device, secs);
      const lost = secs.filter((s) => !found.has(s));
      expect(lost, `${device}: acknowledged but not read back at QUORUM`).to.deep.equal([]);
    }

    // The next sync round, through B (SIGUSR2), run again until every meter's sync connection is there (those
    // of A move after their reconnection backoff).
    const rounds = () => [...b.output().matchAll(/"clients":(\d+),[^\n]*"msg":"sync round done"/g)].map((x) => +x[1]!);
    await untilAsync(
      async () => {
        const seen = rounds().length;
        b.child.kill('SIGUSR2');
        await pollUntil(() => rounds().length > seen, 'a sync round on B', 120_000, 200);
        return rounds().at(-1) === METERS;
      },
      'a sync round on B with every meter connected',
      180_000,
      1000,
    );
    const lastEnd = Math.floor((Date.now() / 1000 - 60) / PERIOD_S) * PERIOD_S;
    for (const [m, device] of devices.entries()) {
      const journal = new SqliteStore({ dir: join(dir, `journal-${m}`), synchronous: 'NORMAL', readOnly: true });
      await journal.open();
      const strip = (x: Batch) => [batchKeyString(x), x.values_checksum];
      const journaled = (await journal.readBatches({ device_id: device, from: T0, to: T0 + 9 * 3600 })).map(strip);
      await journal.close();
      const to = T0 + journaled.length;
      expect(to, 'the stream stays within ended periods').to.be.at.most(lastEnd);
      const range = { device_id: device, from: T0, to: Math.ceil(to / PERIOD_S) * PERIOD_S };
      const periodChecks = async () =>
        (await store!.readIntervalChecks(range)).filter((c) => c.interval_seconds === PERIOD_S);
      await untilAsync(
        async () => {
          const checks = await periodChecks();
          return (
            checks.length === (range.to - range.from) / PERIOD_S &&
            checks.every((c) => c.status === 'verified' || c.status === 'repaired')
          );
        },
        `${device}: every period reconciled`,
        120_000,
        500,
      ).catch(async (e: unknown) => {
        // Failed once in about ten runs (2026-12-04), with no log kept: say which periods and what B said.
        const checks = await periodChecks();
        const open = checks
          .filter((c) => c.status !== 'verified' && c.status !== 'repaired')
          .map((c) => `${c.ec_date} ${c.ec_time} ${c.status} (${c.values_count} values, checked ${c.check_times}x)`);
        open.unshift(`${checks.length} of ${(range.to - range.from) / PERIOD_S} periods have a check`);
        const said = b
          .output()
          .split('\n')
          .filter((l) => l.includes(device) || l.includes('sync round'))
          .slice(-30);
        throw new Error(`${String(e)}\nperiods not reconciled: ${open.join('; ')}\nB's log:\n${said.join('\n')}`);
      });
      const stored = (await store!.readBatches({ device_id: device, from: T0, to })).map(strip);
      expect(stored.length, device).to.equal(journaled.length);
      expect(stored, `${device}: store == journal`).to.deep.equal(journaled);
    }
    // The meters' own account: every batch they lost on purpose was brought by sync.
    const summaries = await Promise.all(
      meters.map(async (m) => {
        await m.close();
        const s = /lost \(injected\) (\d+), corrupted \(injected\) \d+, repaired by sync (\d+)/.exec(m.output());
        expect(s, `ec-client summary:\n${m.output()}`).to.not.equal(null);
        return { lost: Number(s![1]), repaired: Number(s![2]) };
      }),
    );
    const dropped = summaries.reduce((n, s) => n + s.lost, 0);
    const repaired = summaries.reduce((n, s) => n + s.repaired, 0);
    console.log(
      `      sync through B: ${dropped} batches lost on the way, ${repaired} resent by sync; store == journal`,
    );
    expect(dropped, 'the meters lost some on purpose').to.be.above(0);
    expect(repaired).to.be.at.least(dropped);
  });
});
