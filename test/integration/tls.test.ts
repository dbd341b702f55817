import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import pino from 'pino';
import { MeterClient, type Source } from '../../src/client/meter-client.js';
import { Journal } from '../../src/client/journal.js';
import { SipSender } from '../../src/client/sip-sender.js';
import { SyncClient } from '../../src/client/sync-client.js';
import { connectStream, type ClientTls } from '../../src/client/stream-socket.js';
import { credentialFor } from '../../src/domain/device-credential.js';
import { bodyOf, makeBatch } from '../helpers/batches.js';
import { makeTestPki, type TestPki } from '../helpers/certificates.js';
import { buildMessage } from '../helpers/sip-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { pollUntil } from '../helpers/wait.js';
import { join } from 'node:path';

/**
 * SIP over TLS on real sockets with throwaway certificates generated for this run: the TLS listener feeds the same
 * framing, bounds and digest authentication as TCP; the client refuses a server it cannot verify; a peer that never
 * completes its handshake is closed at the deadline; client certificates, when required, are required.
 */
const log = pino({ level: process.env.EC_TEST_LOG ?? 'silent' });
const T0 = Date.UTC(2026, 5, 1) / 1000;

/** One sample's value in the Prometheus text format (0 when absent). */
function metricValue(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

/** Opens a TLS connection; resolves once verified, rejects with the client's reason otherwise. */
function tlsConnect(port: number, clientTls: ClientTls): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connectStream('127.0.0.1', port, clientTls) as tls.TLSSocket;
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `data`, then collects what the server sends until `count` responses arrived or the connection closed. */
function exchange(s: net.Socket, count: number, write: () => Promise<void> | void): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = () => resolve(text);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if ((text.match(/^SIP\/2\.0 /gm) ?? []).length >= count) done();
    });
    s.once('close', done);
    s.once('error', () => undefined);
    void write();
  });
}

describe('SIP over TLS (generated certificates)', function () {
  this.timeout(30_000);
  let pki: TestPki;
  let server: TestServer | undefined;
  const withCert = (extra: Record<string, string> = {}) =>
    startTestServer({ 'tls.certificate': pki.server.cert, 'tls.key': pki.server.key, 'sip.tls_port': '0', ...extra });

  before(async () => {
    pki = await makeTestPki();
  });
  afterEach(async () => {
    await server?.cleanup();
    server = undefined;
  });
  after(() => rmSync(pki.dir, { recursive: true, force: true }));

  it('MESSAGEs with digest auth over TLS: challenged once, then stored; counted as transport tls', async () => {
    server = await withCert({ 'security.require_auth': 'true' });
    const device = 'tls-meter-1';
    const secret = 'tls-meter-secret-0123456789abcdef';
    await server.store.putCredential(credentialFor(device, server.config.security.realm, secret, Date.now()));
    const journal = new Journal(join(server.dir, 'journal'));
    await journal.open();
    const sender = new SipSender(
      { host: '127.0.0.1', port: server.tlsPort!, transport: 'tls', tls: { ca: readFileSync(pki.ca) }, from: device },
      log,
    );
    await sender.start();
    const secrets = new Map([[device, secret]]);
    const rate = { rate: 100, batchMs: 1000 };
    const source: Source = { kind: 'generate', devices: [device], start: T0, seconds: 30, realtime: false, ...rate };
    const options = { source, loss: 0, corrupt: 0, window: 8, maxAttempts: 3, retentionS: 3600, secrets };
    const meter = new MeterClient(journal, sender, options, log);
    const stats = await meter.run();
    sender.close();
    await journal.close();
    expect(stats.acked).to.equal(30);
    expect(await server.store.readSummaries({ device_id: device, from: T0, to: T0 + 30 })).to.have.length(30);
    const m = await server.metrics.metrics();
    expect(metricValue(m, 'ec_sip_requests_total{transport="tls",method="MESSAGE",status="200"}')).to.equal(30);
    // Nonce reuse over TLS as over UDP: one challenge for the stream (the window's first requests may each get one).
    const challenged = metricValue(m, 'ec_sip_requests_total{transport="tls",method="MESSAGE",status="401"}');
    expect(challenged).to.be.within(1, 8);
    expect(metricValue(m, 'ec_sip_requests_total{transport="tcp",method="MESSAGE",status="200"}')).to.equal(0);
    expect(server.tls!.stats.handshakeFailures).to.equal(0);
  });

  it('the client refuses a server it cannot verify (unknown CA, wrong name, no CA): nothing sent', async () => {
    server = await startTestServer({
      'tls.certificate': pki.rogue.cert,
      'tls.key': pki.rogue.key,
      'sip.tls_port': '0',
    });
    const ca = readFileSync(pki.ca);
    const refused = async (clientTls: ClientTls) =>
      tlsConnect(server!.tlsPort!, clientTls).then(
        (s) => (s.destroy(), 'connected'),
        (e: NodeJS.ErrnoException) => e.code,
      );
    expect(await refused({ ca })).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(await refused({})).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    // The SIP sender: the request is never written to the unverified server; Timer F ends it.
    const sender = new SipSender(
      { host: '127.0.0.1', port: server.tlsPort!, transport: 'tls', tls: { ca }, t1Ms: 20, from: 'x' },
      log,
    );
    await sender.start();
    const r = await sender.send(bodyOf(makeBatch('tls-victim', T0)), {});
    sender.close();
    expect(r.status).to.equal(408);
    expect(server.layer.stats.requests).to.equal(0);
    expect(await server.store.readSummaries({ device_id: 'tls-victim', from: T0, to: T0 + 1 })).to.deep.equal([]);
    await server.cleanup();

    // The right CA but a name the certificate does not carry.
    server = await withCert();
    expect(await refused({ ca, servername: 'meter-gateway.example' })).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(await refused({ ca, servername: 'localhost' })).to.equal('connected');
  });

  it('a peer that never completes its handshake is closed at tls.handshake_timeout; address cap holds', async () => {
    server = await withCert({ 'tls.handshake_timeout': '1', 'sip.tcp_max_connections_per_source': '2' });
    const port = server.tlsPort!;
    const openRaw = () =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', () => undefined);
      });
    const closedAfter = (s: net.Socket) => {
      const t0 = Date.now();
      return new Promise<number>((resolve) => s.once('close', () => resolve(Date.now() - t0)));
    };
    // One sends nothing, one half a ClientHello record: neither completes.
    const silent = await openRaw();
    const half = await openRaw();
    half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    const third = await openRaw();
    const [a, b, c] = await Promise.all([closedAfter(silent), closedAfter(half), closedAfter(third)]);
    expect(c, 'the third connection from the address: closed at once').to.be.below(500);
    for (const ms of [a, b]) expect(ms).to.be.within(700, 3000);
    expect(server.tls!.stats.refusedPerSource).to.equal(1);
    // Counted when the server side has closed too (a moment after the client saw it).
    await pollUntil(() => server!.tls!.stats.handshakeFailures >= 2, 'both failed handshakes counted', 2000);
    expect(server.tls!.stats.handshakeFailures).to.equal(2);
    // The slots are free again: a real client gets through.
    const s = await tlsConnect(port, { ca: readFileSync(pki.ca) });
    s.destroy();
  });

  it('TCP bounds hold over TLS: a request trickled a byte at a time is cut at sip.tcp_request_timeout', async () => {
    server = await withCert({ 'sip.tcp_request_timeout': '1' });
    const s = await tlsConnect(server.tlsPort!, { ca: readFileSync(pki.ca) });
    s.setNoDelay(true);
    const head = Buffer.from(buildMessage({ port: server.tlsPort!, transport: 'TLS', body: 'x' }), 'latin1');
    const t0 = Date.now();
    let i = 0;
    const trickle = setInterval(() => i < head.length && s.write(head.subarray(i, ++i)), 100);
    await new Promise((r) => s.once('close', r));
    clearInterval(trickle);
    expect(Date.now() - t0).to.be.within(800, 3000);
    expect(server.tls!.stats.requestTimeouts).to.equal(1);
    expect(server.tcp!.stats.requestTimeouts, 'the TCP transport has its own counts').to.equal(0);
  });

  it('a request split over many TLS records, and two requests in one record, are framed and answered', async () => {
    server = await withCert();
    const s = await tlsConnect(server.tlsPort!, { ca: readFileSync(pki.ca) });
    s.setNoDelay(true);
    const msg = (second: number) =>
      buildMessage({ port: server!.tlsPort!, transport: 'TLS', body: bodyOf(makeBatch('tls-split', T0 + second)) });
    const text = await exchange(s, 3, async () => {
      // Each write is its own TLS record: 9 bytes at a time.
      const first = Buffer.from(msg(0), 'latin1');
      for (let i = 0; i < first.length; i += 9) {
        await new Promise<void>((r) => s.write(first.subarray(i, i + 9), () => r()));
      }
      s.write(Buffer.from(msg(1) + msg(2), 'latin1'));
    });
    s.destroy();
    expect(text.match(/^SIP\/2\.0 200 /gm)).to.have.length(3);
    expect(text).to.include('Via: SIP/2.0/TLS');
    expect(await server.store.readSummaries({ device_id: 'tls-split', from: T0, to: T0 + 3 })).to.have.length(3);
  });

  it('sync over TLS: a plain client is never welcomed, a silent one is closed at the handshake deadline', async () => {
    server = await withCert({ 'sync.tls': 'true', 'tls.handshake_timeout': '1' });
    const journal = new Journal(join(server.dir, 'journal'));
    await journal.open();
    const clients: SyncClient[] = [];
    const sync = (clientTls?: ClientTls): Promise<string> => {
      const port = server!.syncPort!;
      const c = new SyncClient(
        journal,
        { host: '127.0.0.1', port, devices: ['tls-sync'], retentionS: 60, tls: clientTls },
        log,
      );
      clients.push(c);
      return c.connect().then(
        () => 'welcomed',
        () => 'refused',
      );
    };
    expect(await sync(undefined)).to.equal('refused');
    expect(await sync({ ca: readFileSync(pki.rogue.cert) })).to.equal('refused');
    expect(await sync({ ca: readFileSync(pki.ca) })).to.equal('welcomed');
    const silent = net.connect(server.syncPort!, '127.0.0.1');
    silent.on('error', () => undefined);
    const t0 = Date.now();
    await new Promise((r) => silent.once('close', r));
    expect(Date.now() - t0).to.be.within(700, 3000);
    for (const c of clients) c.close();
    await journal.close();
  });

  it('rotation (SIGHUP): new connections get the new certificate, open ones go on; a bad file: no change', async () => {
    const next = await makeTestPki();
    const cert = join(pki.dir, 'rotating.crt');
    const key = join(pki.dir, 'rotating.key');
    copyFileSync(pki.server.cert, cert);
    copyFileSync(pki.server.key, key);
    server = await startTestServer({ 'tls.certificate': cert, 'tls.key': key, 'sip.tls_port': '0' });
    const [oldCa, newCa] = [readFileSync(pki.ca), readFileSync(next.ca)];
    const verdict = (ca: Buffer) =>
      tlsConnect(server!.tlsPort!, { ca }).then(
        (s) => (s.destroy(), 'verified'),
        (e: NodeJS.ErrnoException) => e.code,
      );
    const open = await tlsConnect(server.tlsPort!, { ca: oldCa });
    copyFileSync(next.server.cert, cert);
    copyFileSync(next.server.key, key);
    server.reloadTls();
    expect(await verdict(newCa)).to.equal('verified');
    // (Both test CAs carry the same name: OpenSSL finds the old one and reports a bad signature.)
    expect(await verdict(oldCa)).to.be.oneOf(['CERT_SIGNATURE_FAILURE', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']);
    const body = bodyOf(makeBatch('tls-rotate', T0));
    const text = await exchange(open, 1, () => {
      open.write(buildMessage({ port: server!.tlsPort!, transport: 'TLS', body }));
    });
    open.destroy();
    expect(text, 'the connection opened before the rotation').to.match(/^SIP\/2\.0 200 /);
    // A key that does not match: refused with its name, and the certificate in use stays.
    copyFileSync(pki.client.key, key);
    expect(() => server!.reloadTls()).to.throw(/key tls\.key/);
    expect(await verdict(newCa)).to.equal('verified');
    rmSync(next.dir, { recursive: true, force: true });
  });

  for (const mode of ['require', 'request'] as const)
    it(`tls.client_certificates=${mode}: a client certificate the CA did not sign is refused`, async () => {
      server = await withCert({ 'tls.client_certificates': mode, 'tls.client_ca': pki.ca });
      const ca = readFileSync(pki.ca);
      const send = async (clientTls: ClientTls, second: number): Promise<string> => {
        const s = await tlsConnect(server!.tlsPort!, clientTls).catch(() => undefined);
        if (!s) return 'refused';
        const body = bodyOf(makeBatch('tls-cert', T0 + second));
        const text = await exchange(s, 1, () => {
          s.write(buildMessage({ port: server!.tlsPort!, transport: 'TLS', body }));
        });
        s.destroy();
        return /^SIP\/2\.0 200 /m.test(text) ? 'stored' : 'refused';
      };
      const own = { ca, cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key) };
      const foreign = { ca, cert: readFileSync(pki.rogue.cert), key: readFileSync(pki.rogue.key) };
      expect(await send(own, 0)).to.equal('stored');
      expect(await send(foreign, 1)).to.equal('refused');
      expect(await send({ ca }, 2)).to.equal(mode === 'require' ? 'refused' : 'stored');
      const stored = await server.store.readSummaries({ device_id: 'tls-cert', from: T0, to: T0 + 3 });
      expect(stored.map((b) => Number(b.ec_time.slice(-2)))).to.deep.equal(mode === 'require' ? [0] : [0, 2]);
      expect(server.tls!.stats.handshakeFailures).to.be.at.least(mode === 'require' ? 2 : 1);
    });
});
