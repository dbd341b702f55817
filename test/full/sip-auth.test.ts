import { join } from 'node:path';
import { expect } from 'chai';
import { DigestSession } from '../../src/client/digest-session.js';
import { BIN, REPO } from '../helpers/server-process.js';
import { runProcess } from '../helpers/run-process.js';
import { buildMessage, udpRequest, type ParsedResponse } from '../helpers/sip-client.js';
import { runSipp, sippPath, SIPP_FIXTURES, writeInjection } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Digest authentication against a real server on real sockets: who may write what. Credentials are
 * made with the real `ec-server device add` while the server runs (it finds them at the first
 * request), the requests are real datagrams, and a real SIP peer (sipp) authenticates too.
 */
describe('SIP digest authentication (real server, real sockets, sipp)', function () {
  this.timeout(120_000);
  let server: TestServer;
  const secrets = new Map<string, string>();
  const T0 = Date.UTC(2026, 0, 1, 12) / 1000;
  const stamp = (s: number) => new Date(s * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const bodyOf = (device: string, second: number, value = '1.5') => `${device}|${stamp(second)}|0,${value};500000,2`;

  async function deviceAdd(id: string): Promise<string> {
    const r = await runProcess(
      process.execPath,
      [BIN('ec-server'), 'device', 'add', id, '--config', '/dev/null', '--data-dir', join(server.dir, 'data')],
      { cwd: REPO },
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(new RegExp(`device ${id} added`));
    const secret = r.stdout.trim();
    expect(secret).to.match(/^[\w-]{32}$/);
    return secret;
  }

  before(async () => {
    // MD5 first: Debian's sipp 3.6 knows no SHA-256 and takes the first challenge it is given.
    server = await startTestServer({ 'security.require_auth': 'true', 'security.digest_algorithms': 'MD5,SHA-256' });
    for (const d of ['meter-a', 'meter-b', 'sipp-1', 'sipp-2']) secrets.set(d, await deviceAdd(d));
  });
  after(async () => server?.cleanup());

  const stored = (device: string, second: number) =>
    server.store.readSummaries({ device_id: device, from: second, to: second + 1 });

  /** Sends a MESSAGE with the given Authorization (or none); resolves with the response. */
  function send(body: string, authorization?: string, callId?: string): Promise<ParsedResponse | null> {
    const msg = buildMessage({
      port: server.port,
      body,
      callId,
      extraHeaders: authorization ? [`Authorization: ${authorization}`] : [],
    });
    return udpRequest(server.port, msg, 2000);
  }

  /** A session challenged by the server, as a meter's first request gets it. */
  async function challengedSession(device: string, secret: string): Promise<DigestSession> {
    const r = await send(bodyOf(device, T0 - 1));
    expect(r?.status).to.equal(401);
    const session = new DigestSession(device, secret);
    const challenges = r!.raw.split('\r\n').filter((l) => /^WWW-Authenticate:/i.test(l));
    expect(challenges, 'one challenge per algorithm').to.have.length(2);
    expect(session.accept(challenges.map((l) => l.replace(/^[^:]+:\s*/, '')))).to.equal(true);
    return session;
  }
  const uri = () => `sip:ec@127.0.0.1:${server.port}`;

  it('a MESSAGE without credentials: 401 with MD5 and SHA-256 challenges, nothing stored', async () => {
    const r = await send(bodyOf('meter-a', T0));
    expect(r?.status).to.equal(401);
    expect(r?.reason).to.equal('Unauthorized: credentials required');
    expect(r!.raw).to.match(
      /WWW-Authenticate: Digest realm="ec-server", nonce="[\w-]+", algorithm=MD5, qop="auth-int"/,
    );
    expect(r!.raw).to.match(/algorithm=SHA-256/);
    expect(await stored('meter-a', T0)).to.deep.equal([]);
  });

  it(
    'the right secret: 200 and stored; the nonce is reused with rising nonce counts (one challenge for many ' +
      'batches)',
    async () => {
      const session = await challengedSession('meter-a', secrets.get('meter-a')!);
      for (let i = 0; i < 5; i++) {
        const body = bodyOf('meter-a', T0 + i);
        const r = await send(body, session.authorize('MESSAGE', uri(), body));
        expect(r?.status, r?.reason).to.equal(200);
        expect(await stored('meter-a', T0 + i)).to.have.length(1);
      }
    },
  );

  it('a wrong secret: 401, nothing stored', async () => {
    const session = await challengedSession('meter-a', 'not-the-secret');
    const body = bodyOf('meter-a', T0 + 100);
    const r = await send(body, session.authorize('MESSAGE', uri(), body));
    expect([r?.status, r?.reason]).to.deep.equal([401, 'Unauthorized: wrong credentials for "meter-a"']);
    expect(await stored('meter-a', T0 + 100)).to.deep.equal([]);
  });

  it("device A's credentials writing device B's body: 403, nothing stored", async () => {
    const session = await challengedSession('meter-a', secrets.get('meter-a')!);
    const body = bodyOf('meter-b', T0 + 200);
    const r = await send(body, session.authorize('MESSAGE', uri(), body));
    expect([r?.status, r?.reason]).to.deep.equal([403, 'Forbidden: credentials of "meter-a" cannot write "meter-b"']);
    expect(await stored('meter-b', T0 + 200)).to.deep.equal([]);
  });

  it('a replayed nonce count (a captured request sent again as a new transaction): refused', async () => {
    const session = await challengedSession('meter-b', secrets.get('meter-b')!);
    const body = bodyOf('meter-b', T0 + 300);
    const authorization = session.authorize('MESSAGE', uri(), body)!;
    expect((await send(body, authorization))?.status).to.equal(200);
    const [before] = await stored('meter-b', T0 + 300);
    const replay = await send(body, authorization, 'another-call-id');
    expect([replay?.status, replay?.reason]).to.deep.equal([401, 'Unauthorized: nonce count 00000001 already used']);
    expect(replay!.raw).to.match(/stale=true/);
    expect(await stored('meter-b', T0 + 300), 'the row was not written again').to.deep.equal([before]);
  });

  it('a body tampered with after signing (auth-int covers the data): 401, nothing stored', async () => {
    const session = await challengedSession('meter-b', secrets.get('meter-b')!);
    const signed = bodyOf('meter-b', T0 + 400, '1.5');
    const r = await send(bodyOf('meter-b', T0 + 400, '9.5'), session.authorize('MESSAGE', uri(), signed));
    expect([r?.status, r?.reason]).to.deep.equal([401, 'Unauthorized: wrong credentials for "meter-b"']);
    expect(await stored('meter-b', T0 + 400)).to.deep.equal([]);
  });

  it('sipp authenticates (MD5, auth-int): 2 meters x 20 batches on one challenge each, all stored', async () => {
    sippPath();
    // One sipp per meter (credentials are per sipp process: -au/-ap), both at once.
    const results = await Promise.all(
      ['sipp-1', 'sipp-2'].map((device) => {
        const inf = join(server.dir, `${device}.csv`);
        writeInjection(inf, [[device, stamp(T0 + 600)]]);
        return runSipp(
          [
            '127.0.0.1:' + server.port,
            '-sf',
            join(SIPP_FIXTURES, 'message-auth-uac.xml'),
            '-inf',
            inf,
            '-au',
            device,
            '-ap',
            secrets.get(device)!,
            '-p',
            '0',
            '-m',
            '1',
          ],
          60,
        );
      }),
    );
    for (const r of results) expect(r.code, r.stdout + r.stderr).to.equal(0);
    for (const d of ['sipp-1', 'sipp-2']) {
      const rows = await stored(d, T0 + 600);
      expect(rows.map((x) => Number(x.start_us)).sort((a, b) => a - b)).to.have.length(20);
    }
  });

  it('ec-client (the reference meter) authenticates with its secret: every batch acknowledged and stored', async () => {
    const secret = await deviceAdd('client-1');
    const r = await runProcess(
      process.execPath,
      [
        BIN('ec-client'),
        ...['--config', '/dev/null', '--port', String(server.port), '--no-sync'],
        ...['--device', 'client-1', '--secret', secret, '--rate', '100', '--start', stamp(T0 + 900)],
        ...['--duration', '30', '--journal', join(server.dir, 'journal'), '--log-level', 'warn'],
      ],
      { cwd: REPO },
    );
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const rows = await server.store.readSummaries({ device_id: 'client-1', from: T0 + 900, to: T0 + 930 });
    expect(rows).to.have.length(30);
  });

  it('ec-client with a wrong secret: nothing stored, and it says so (exit 1)', async () => {
    const r = await runProcess(
      process.execPath,
      [
        BIN('ec-client'),
        ...['--config', '/dev/null', '--port', String(server.port), '--no-sync'],
        ...['--device', 'client-1', '--secret', 'wrong', '--rate', '100', '--start', stamp(T0 + 1000)],
        ...['--duration', '3', '--journal', join(server.dir, 'journal-2'), '--log-level', 'warn'],
      ],
      { cwd: REPO },
    );
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    expect(await server.store.readSummaries({ device_id: 'client-1', from: T0 + 1000, to: T0 + 1003 })).to.deep.equal(
      [],
    );
  });
});
