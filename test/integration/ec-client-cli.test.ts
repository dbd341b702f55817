import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { Journal } from '../../src/client/journal.js';
import { batchKeyString } from '../../src/domain/batch.js';
import { credentialFor } from '../../src/domain/device-credential.js';
import { BIN, REPO } from '../helpers/server-process.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { pollUntil } from '../helpers/wait.js';

/** The `ec-client` bin as a real process: streams with injected loss, then answers a sync round. */
describe('ec-client (reference meter) process', function () {
  this.timeout(60_000);
  const T0 = Date.UTC(2026, 4, 1) / 1000;
  let server: TestServer;
  // Simulated clock: the period is still open while the meter streams, closed for the round.
  let now = T0;
  before(async () => {
    server = await startTestServer({ 'sync.syncfreq': '5' }, { now: () => now });
  });
  after(async () => {
    await server?.cleanup();
  });

  it('streams 5 simulated minutes with 10% loss; a sync round repairs every lost batch', async () => {
    const journalDir = join(server.dir, 'journal');
    // The device has credentials: its MESSAGEs and its sync hello must prove the secret (--secret).
    const secret = 'cli-meter-secret-0123456789abcdef';
    await server.store.putCredential(credentialFor('cli-meter', server.config.security.realm, secret, Date.now()));
    const child = spawn(
      process.execPath,
      [
        BIN('ec-client'),
        '--config',
        '/dev/null',
        '--port',
        String(server.port),
        '--set',
        `sync.port=${server.syncPort}`,
        '--device',
        'cli-meter',
        '--secret',
        secret,
        '--rate',
        '200',
        '--start',
        '20260501000000',
        '--duration',
        '300',
        '--loss',
        '0.1',
        '--seed',
        '11',
        '--journal',
        journalDir,
        '--linger',
        '30',
        '--log-level',
        'info',
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));

    // Wait for the meter to say its stream is done (every batch sent was answered), not for a time.
    await pollUntil(() => out.includes('stream done'), 'the meter to finish its stream', 60_000);
    const last = (await server.store.readSummaries({ device_id: 'cli-meter', from: T0, to: T0 + 300 })).length;
    await Promise.all(server.sync!.catchUps.splice(0));
    now = T0 + 300 + 61;
    const round = await server.sync!.runRound();
    expect(round.errors).to.deep.equal([]);
    expect(round.clients, 'the meter is connected to sync').to.equal(1);
    const lost = 300 - last;
    expect(lost, 'batches lost on purpose').to.be.greaterThan(10);
    expect(round.periods.filter((p) => p.from === T0).map((p) => [p.status, p.repaired])).to.deep.equal([
      ['repaired', lost],
    ]);
    // Every other period of the round was empty on both sides: verified with one exchange each.
    expect(
      round.periods.filter((p) => p.from !== T0).every((p) => p.status === 'verified' && p.exchanges === 1),
    ).to.equal(true);
    child.kill('SIGTERM');
    expect(await exited).to.equal(0);
    expect(out).to.match(
      new RegExp(
        `sent ${300 - lost}, acked ${300 - lost}, failed 0, lost \\(injected\\) ${lost}, corrupted ` +
          `\\(injected\\) 0, repaired by sync ${lost}`,
      ),
    );

    const journal = new Journal(journalDir);
    await journal.open();
    const mine = (await journal.readSummaries({ device_id: 'cli-meter', from: T0, to: T0 + 300 })).map(
      (b) => batchKeyString(b) + b.values_checksum,
    );
    const theirs = (await server.store.readSummaries({ device_id: 'cli-meter', from: T0, to: T0 + 300 })).map(
      (b) => batchKeyString(b) + b.values_checksum,
    );
    await journal.close();
    expect(theirs).to.deep.equal(mine);
    expect(theirs).to.have.length(300);
  });
});
