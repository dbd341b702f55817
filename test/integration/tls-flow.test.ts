import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { Journal } from '../../src/client/journal.js';
import { batchKeyString, epochSecondToParts } from '../../src/domain/batch.js';
import { credentialFor } from '../../src/domain/device-credential.js';
import type { HourReport } from '../../src/report/hour-report.js';
import { makeTestPki, type TestPki } from '../helpers/certificates.js';
import { runBin, startBin } from '../helpers/server-process.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { pollUntil } from '../helpers/wait.js';

/** One sample's value in the Prometheus text format (0 when absent). */
function metricValue(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

function compact(sec: number): string {
  const p = epochSecondToParts(sec);
  return p.ec_date + p.ec_time;
}

/**
 * The whole flow over TLS with certificates generated for this run (issue 14, must-show 3): the `ec-client` process
 * streams MESSAGEs over TLS with digest authentication, injected loss and corruption; its sync connection is TLS
 * too (the sync port speaks nothing else); one round repairs every damaged batch; afterwards the server's store
 * equals the meter's journal, and ec-test reports no gap and every minute verified or repaired.
 */
// @full: a real ec-client process streams 600 s of batches (about 20 s): the full tier's kind of test.
describe('the whole flow over TLS: ec-client with loss and corruption, a sync round, ec-test @full', function () {
  this.timeout(90_000);
  const T0 = Date.UTC(2026, 6, 1) / 1000;
  const SECONDS = 600;
  const device = 'tls-flow-meter';
  const secret = 'tls-flow-secret-0123456789abcdef';
  let pki: TestPki;
  let server: TestServer;
  let now = T0;

  before(async () => {
    pki = await makeTestPki();
    server = await startTestServer(
      {
        'tls.certificate': pki.server.cert,
        'tls.key': pki.server.key,
        'sip.tls_port': '0',
        'sync.tls': 'true',
        'sync.syncfreq': '5',
        'security.require_auth': 'true',
      },
      { now: () => now },
    );
    await server.store.putCredential(credentialFor(device, server.config.security.realm, secret, Date.now()));
  });
  after(async () => {
    await server?.cleanup();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  it('store == journal afterwards; every request and the sync connection went over TLS', async () => {
    const journalDir = join(server.dir, 'journal');
    const args = ['--config', '/dev/null', '--transport', 'tls', '--ca', pki.ca, '--sync-tls'];
    const ports = ['--set', `sip.tls_port=${server.tlsPort}`, '--set', `sync.port=${server.syncPort}`];
    const stream = ['--rate', '200', '--start', compact(T0), '--duration', String(SECONDS)];
    const faults = ['--loss', '0.05', '--corrupt', '0.02', '--seed', '5'];
    const meter = ['--device', device, '--secret', secret, '--journal', journalDir, '--linger', '60'];
    const child = startBin('ec-client', [...args, ...ports, ...meter, ...stream, ...faults, '--log-level', 'info']);

    await pollUntil(() => child.output().includes('stream done'), 'the meter to finish its stream', 60_000);
    await pollUntil(() => server.sync!.connectedDevices === 1, 'the meter to be welcomed on sync (TLS)', 10_000);
    await Promise.all(server.sync!.catchUps.splice(0));
    const stored = (await server.store.readSummaries({ device_id: device, from: T0, to: T0 + SECONDS })).length;
    now = T0 + SECONDS + 61;
    const round = await server.sync!.runRound();
    child.kill('SIGTERM');
    const code = await child.exited;
    const out = child.output();
    expect(code, out).to.equal(0);
    const m = /sent (\d+), acked (\d+), failed 0, lost \(injected\) (\d+), corrupted \(injected\) (\d+)/.exec(out);
    expect(m, out).to.not.equal(null);
    const [sent, acked, lost, corrupted] = m!.slice(1).map(Number) as [number, number, number, number];
    expect(lost, 'batches lost on purpose').to.be.greaterThan(10);
    expect(corrupted, 'batches corrupted on purpose').to.be.greaterThan(3);
    expect(acked).to.equal(sent);
    expect(stored).to.equal(SECONDS - lost);

    expect(round.errors).to.deep.equal([]);
    expect(round.clients, 'the meter is connected to sync over TLS').to.equal(1);
    const ours = round.periods.filter((p) => p.from >= T0 && p.from < T0 + SECONDS);
    expect(ours.map((p) => p.status)).to.deep.equal(['repaired', 'repaired']);
    expect(ours.reduce((n, p) => n + p.repaired, 0)).to.equal(lost + corrupted);

    // Over TLS only: every MESSAGE answered on the TLS transport (401 challenges and 200s), none on UDP or TCP.
    const metrics = await server.metrics.metrics();
    expect(metricValue(metrics, 'ec_sip_requests_total{transport="tls",method="MESSAGE",status="200"}')).to.equal(sent);
    for (const t of ['udp', 'tcp'])
      expect(metricValue(metrics, `ec_sip_requests_total{transport="${t}",method="MESSAGE",status="200"}`)).to.equal(0);

    const journal = new Journal(journalDir);
    await journal.open();
    type Summary = Parameters<typeof batchKeyString>[0] & { values_checksum: string };
    const keyed = (list: Summary[]) => list.map((b) => batchKeyString(b) + b.values_checksum);
    const mine = keyed(await journal.readSummaries({ device_id: device, from: T0, to: T0 + SECONDS }));
    const theirs = keyed(await server.store.readSummaries({ device_id: device, from: T0, to: T0 + SECONDS }));
    await journal.close();
    expect(theirs).to.have.length(SECONDS);
    expect(theirs).to.deep.equal(mine);

    await server.stop();
    const span = ['-d', compact(T0), '--until', compact(T0 + SECONDS)];
    const dataDir = join(server.dir, 'data');
    const r = await runBin('ec-test', [
      '--config',
      '/dev/null',
      '--data-dir',
      dataDir,
      '-i',
      device,
      ...span,
      '--json',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    const rep = JSON.parse(r.stdout) as HourReport;
    expect(rep.gaps).to.deep.equal([]);
    expect(rep.damaged).to.deep.equal([]);
    expect(rep.samples).to.equal(SECONDS * 200);
    const minutes = rep.minutes.slice(0, SECONDS / 60).map((x) => x.sync);
    expect(minutes.every((s) => s === 'verified' || s === 'repaired')).to.equal(true);
    expect(minutes).to.include('repaired');
  });
});
