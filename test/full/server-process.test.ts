import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { epochSecondToParts } from '../../src/domain/batch.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { buildMessage, parseResponse, udpRequest } from '../helpers/sip-client.js';
import { runBin, spawnServer } from '../helpers/server-process.js';

/** The real `ec-server` process: crash durability, signals, start-up errors, CLI surface. */
describe('ec-server process', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ec-proc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const baseArgs = () => [
    '--config',
    join(FIXTURES, 'config/original.properties'),
    '--port',
    '0',
    '--set',
    'sync.port=0',
    '--set',
    'http.port=0',
    '--data-dir',
    join(dir, 'data'),
  ];
  const T0 = Date.UTC(2026, 1, 1) / 1000;
  const body = (device: string, sec: number) => {
    const p = epochSecondToParts(sec);
    return `${device}|${p.ec_date}${p.ec_time}|1000,1.5;500000,2.5;999000,3.5`;
  };

  it('kill -9 while a client streams: every batch answered 200 is in the store after restart', async () => {
    const server = await spawnServer(baseArgs());
    const sock = dgram.createSocket('udp4');
    const acked = new Set<number>();
    const sentAt = new Map<string, number>();
    // The kill comes once 150 batches are acknowledged (an event, not a time: any machine gets there).
    let enoughAcked!: () => void;
    const ackedEnough = new Promise<void>((r) => (enoughAcked = r));
    sock.on('message', (m) => {
      const r = parseResponse(m.toString('latin1'));
      const sec = sentAt.get(r.headers['call-id']!);
      if (r.status === 200 && sec !== undefined) acked.add(sec);
      if (acked.size >= 150) enoughAcked();
    });
    let next = 0;
    let killed = false;
    const pump = setInterval(() => {
      // Keep ~200 requests outstanding; the kill lands in the middle of the stream.
      for (let i = 0; i < 50 && !killed; i++) {
        const sec = T0 + next++;
        const callId = `kill-${sec}`;
        sentAt.set(callId, sec);
        sock.send(buildMessage({ port: server.port, body: body('kill9', sec), callId }), server.port, '127.0.0.1');
      }
    }, 5);
    await ackedEnough;
    killed = true;
    server.child.kill('SIGKILL');
    const exit = await server.exited;
    clearInterval(pump);
    sock.close();
    expect(exit.signal).to.equal('SIGKILL');
    expect(acked.size, 'batches acknowledged before the kill').to.be.at.least(150);

    // Restart on the same data directory: it starts, and holds every acknowledged batch.
    const again = await spawnServer(baseArgs());
    const r = await udpRequest(again.port, buildMessage({ port: again.port, body: body('kill9-after', T0) }));
    expect(r?.status).to.equal(200);
    again.child.kill('SIGTERM');
    expect((await again.exited).code).to.equal(0);

    const store = new SqliteStore({ dir: join(dir, 'data'), synchronous: 'FULL' });
    await store.open();
    const stored = new Set<number>();
    for (let t = T0; t < T0 + next; t += 3600) {
      for (const b of await store.readSummaries({ device_id: 'kill9', from: t, to: t + 3600 })) {
        stored.add(
          Date.UTC(
            +b.ec_date.slice(0, 4),
            +b.ec_date.slice(4, 6) - 1,
            +b.ec_date.slice(6, 8),
            +b.ec_time.slice(0, 2),
            +b.ec_time.slice(2, 4),
            +b.ec_time.slice(4, 6),
          ) / 1000,
        );
      }
    }
    await store.close();
    const lost = [...acked].filter((s) => !stored.has(s));
    console.log(
      `      kill -9: ${next} sent, ${acked.size} acknowledged, ${stored.size} stored, ${lost.length} ` +
        `acknowledged-but-lost`,
    );
    expect(lost, `acknowledged but lost (of ${acked.size} acked, ${next} sent)`).to.deep.equal([]);
  });

  it('SIGHUP (closed terminal) does not stop it; SIGTERM answers what is in flight, closes the store', async () => {
    const server = await spawnServer(baseArgs());
    server.child.kill('SIGHUP');
    // No sleep: a request sent after the signal is answered only if the signal did not end the process
    // (SIGHUP's default action ends it at once).
    const r = await udpRequest(server.port, buildMessage({ port: server.port, body: body('term', T0) }));
    expect(r?.status, 'answers after SIGHUP').to.equal(200);
    expect([server.child.exitCode, server.child.signalCode], 'still running after SIGHUP').to.deep.equal([null, null]);
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    expect(exit.code).to.equal(0);
    expect(server.output()).to.match(/"msg":"stopped"/);
  });

  it('run as a file, its shebang starts node with the young-generation flag; without it the log says so', async () => {
    const direct = await spawnServer(baseArgs(), { NODE_OPTIONS: '' }, 15_000, 'direct');
    direct.child.kill('SIGTERM');
    expect((await direct.exited).code).to.equal(0);
    const startLine = (out: string) =>
      JSON.parse(out.split('\n').find((l) => l.includes('"msg":"starting ec-server"')) ?? '{}') as {
        semiSpaceMb?: unknown;
      };
    expect(startLine(direct.output()).semiSpaceMb).to.equal(64);
    expect(direct.output()).to.not.include('node started without');

    const plain = await spawnServer(baseArgs(), { NODE_OPTIONS: '' }, 15_000, 'plain');
    plain.child.kill('SIGTERM');
    expect((await plain.exited).code).to.equal(0);
    expect(startLine(plain.output()).semiSpaceMb).to.equal('V8 default');
    expect(plain.output()).to.include('node started without --max-semi-space-size=64');
  });

  it('a port in use is a clear error and exit 1, not a crash', async () => {
    const first = await spawnServer(baseArgs());
    const second = await runBin('ec-server', [
      '--config',
      join(FIXTURES, 'config/original.properties'),
      '--set',
      'sync.port=0',
      '--set',
      'http.port=0',
      '--port',
      String(first.port),
      '--data-dir',
      join(dir, 'other'),
    ]);
    first.child.kill('SIGTERM');
    await first.exited;
    expect(second.code).to.equal(1);
    expect(second.stderr).to.match(new RegExp(`cannot listen on (udp|tcp) 127.0.0.1:${first.port}: EADDRINUSE`));
    expect(second.stderr).to.not.match(/\n\s+at /); // no stack trace
  });

  it('a bad config value exits 2 naming the file and the key', async () => {
    const bad = join(dir, 'bad.properties');
    writeFileSync(bad, '[SIP]\nsip.port=34x67 # typo\n');
    const r = await runBin('ec-server', ['--config', bad]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`config file ${bad}, key sip.port: "34x67" is not an integer`);
  });

  it('an unreadable config file exits 2 naming the file', async () => {
    const r = await runBin('ec-server', ['--config', join(dir, 'missing.properties')]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`config file ${join(dir, 'missing.properties')}: cannot be read (ENOENT)`);
  });

  it('an unknown flag exits 2 with usage advice', async () => {
    const r = await runBin('ec-server', ['--frobnicate']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/Unknown argument: frobnicate/);
  });

  for (const bin of ['ec-server', 'ec-test', 'ec-client', 'ec-export']) {
    it(`${bin} --help and --version`, async () => {
      const help = await runBin(bin, ['--help']);
      expect(help.code).to.equal(0);
      expect(help.stdout).to.include('--config');
      expect(help.stdout).to.match(/Exit codes/);
      const version = await runBin(bin, ['--version']);
      expect(version.code).to.equal(0);
      expect(version.stdout.trim()).to.match(/^\d+\.\d+\.\d+$/);
    });

    it(`${bin} completion prints a shell completion script that asks ${bin} for its words`, async () => {
      const script = await runBin(bin, ['completion']);
      expect(script.code, script.stderr).to.equal(0);
      expect(script.stdout).to.include(`${bin} --get-yargs-completions`);
      expect(script.stdout).to.match(new RegExp(`^complete .* ${bin}$`, 'm'));
      const words = await runBin(bin, ['--get-yargs-completions', bin, '--']);
      expect(words.stdout.split('\n')).to.include.members(['--config', '--data-dir', '--help']);
    });
  }

  it('ec-server completes its commands', async () => {
    const words = await runBin('ec-server', ['--get-yargs-completions', 'ec-server', '']);
    expect(words.stdout.split('\n')).to.include.members(['schema', 'upgrade-store', 'backup', 'completion']);
  });
});
