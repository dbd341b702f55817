import dgram from 'node:dgram';
import net from 'node:net';
import { expect } from 'chai';
import { DigestSession } from '../../src/client/digest-session.js';
import { credentialFor } from '../../src/domain/device-credential.js';
import { bodyOf, makeBatch } from '../helpers/batches.js';
import { buildMessage, parseResponse, tcpExchange, UdpPeer, type ParsedResponse } from '../helpers/sip-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { until } from '../helpers/until.js';

/**
 * Resource bounds against a real server on real sockets (issue 14, item 7): each test makes a
 * peer misbehave and shows that the bound holds, through the server's own counters and
 * accessors rather than RSS or timing.
 */

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0) / 1000;

function options(port: number, i: number, transport: 'UDP' | 'TCP' = 'TCP', extra: string[] = []): string {
  return buildMessage({
    port,
    body: '',
    method: 'OPTIONS',
    contentType: null,
    transport,
    extraHeaders: extra,
    branch: `z9hG4bK-o-${i}`,
  });
}

/** Splits a TCP byte stream into responses (Content-Length framed). */
class ResponseReader {
  private text = '';
  readonly responses: ParsedResponse[] = [];
  push(d: Buffer): void {
    this.text += d.toString('latin1');
    for (;;) {
      const end = this.text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const total = end + 4 + Number(/content-length:\s*(\d+)/i.exec(this.text.slice(0, end))?.[1] ?? 0);
      if (this.text.length < total) return;
      this.responses.push(parseResponse(this.text.slice(0, total)));
      this.text = this.text.slice(total);
    }
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

describe('abuse bounds: TCP', function () {
  this.timeout(60_000);
  const UNSENT = 64 * 1024;
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      'sip.tcp_max_unsent_bytes': String(UNSENT),
      'sip.tcp_request_timeout': '2',
      'sip.tcp_max_connections_per_source': '3',
    });
  });
  after(async () => {
    await server?.cleanup();
  });

  it(
    'a peer that pipelines 20 MB of OPTIONS and never reads: the server stops reading it, holds a bounded ' +
      'amount, and answers everything once it reads',
    async () => {
      const n = 80_000;
      const sock = await connect(server.port);
      sock.pause(); // never read: responses pile up in the kernel, then in the server
      const reader = new ResponseReader();
      sock.on('data', (d) => reader.push(d));
      const all = Buffer.from(Array.from({ length: n }, (_, i) => options(server.port, i)).join(''), 'latin1');
      expect(all.length).to.be.greaterThan(20_000_000);
      let maxBuffered = 0;
      const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, server.tcp!.bufferedBytes)), 5);
      try {
        sock.write(all);
        // The bound acts: reading stops once the unsent responses exceed the cap.
        await until(() => server.tcp!.stats.unsentPauses > 0, 'the server to stop reading');
        const handled = server.layer.stats.requests;
        expect(handled, 'requests read before the server stopped').to.be.lessThan(n);
        // While the peer does not read, the server holds at most the cap plus the responses to one
        // socket read of requests (64 KiB of ~300-byte OPTIONS) and one partial request.
        maxBuffered = Math.max(maxBuffered, server.tcp!.bufferedBytes);
        expect(
          sock.writableLength,
          'the peer could not hand over its data: the server is not reading',
        ).to.be.greaterThan(0);
        // Nothing accepted is lost: once the peer reads, every request is answered.
        sock.resume();
        await until(() => reader.responses.length >= n, `${n} responses`, 50_000);
        expect(reader.responses.filter((r) => r.status === 200)).to.have.length(n);
      } finally {
        clearInterval(sampler);
        sock.destroy();
      }
      expect(maxBuffered, 'bytes the server held for the connection').to.be.lessThan(UNSENT + 256 * 1024);
    },
  );

  it('a slowloris peer (a byte every 100 ms) is cut at the request deadline (2 s), not the idle timeout', async () => {
    const before = server.tcp!.stats.requestTimeouts;
    const sock = await connect(server.port);
    const data = Buffer.from(options(server.port, 1), 'latin1');
    const started = Date.now();
    let i = 0;
    const drip = setInterval(() => {
      if (i < data.length && !sock.destroyed) sock.write(data.subarray(i, ++i));
    }, 100);
    const answered = new ResponseReader();
    sock.on('data', (d) => answered.push(d));
    try {
      await new Promise<void>((resolve) => sock.on('close', () => resolve()));
    } finally {
      clearInterval(drip);
    }
    const elapsed = Date.now() - started;
    expect(server.tcp!.stats.requestTimeouts).to.equal(before + 1);
    expect(elapsed, 'not before the deadline').to.be.at.least(1900);
    expect(i, 'bytes sent: the request was still incomplete').to.be.lessThan(data.length);
    expect(answered.responses).to.deep.equal([]);
  });

  it('the deadline is per request: pipelined requests each sent over 0.6 s keep the connection past 2 s', async () => {
    const sock = await connect(server.port);
    const reader = new ResponseReader();
    sock.on('data', (d) => reader.push(d));
    const started = Date.now();
    for (let r = 0; r < 5; r++) {
      const data = Buffer.from(options(server.port, 100 + r), 'latin1');
      const third = Math.ceil(data.length / 3);
      for (let k = 0; k < 3; k++) {
        sock.write(data.subarray(k * third, (k + 1) * third));
        await new Promise((res) => setTimeout(res, 200));
      }
    }
    await until(() => reader.responses.length >= 5, '5 responses');
    expect(Date.now() - started).to.be.greaterThan(2000);
    expect(reader.responses.map((r) => r.status)).to.deep.equal([200, 200, 200, 200, 200]);
    expect(sock.destroyed).to.equal(false);
    sock.destroy();
  });

  it('the 4th connection from one address (cap 3) is closed at once; a slot freed is usable again', async () => {
    const refusedBefore = server.tcp!.stats.refusedPerSource;
    await until(() => server.tcp!.connections === 0, `earlier connections to close (${server.tcp!.connections} open)`);
    const held = await Promise.all([0, 1, 2].map(() => connect(server.port)));
    await until(() => server.tcp!.connections === 3, 'three connections');
    const fourth = await tcpExchange(server.port, options(server.port, 200), 1, 5000);
    expect(fourth.closedByServer).to.equal(true);
    expect(fourth.responses).to.deep.equal([]);
    expect(server.tcp!.stats.refusedPerSource).to.equal(refusedBefore + 1);
    held[0]!.destroy();
    await until(() => server.tcp!.connections === 2, 'a slot to free');
    const again = await tcpExchange(server.port, options(server.port, 201), 1, 5000);
    expect(again.responses.map((r) => r.status)).to.deep.equal([200]);
    for (const s of held) s.destroy();
  });
});

describe('abuse bounds: per-source rate limit', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'sip.rate_limit': '1', 'sip.rate_limit_burst': '3', 'sip.retry_after': '7' });
  });
  after(async () => {
    await server?.cleanup();
  });

  it(
    'over the limit: 503 with Retry-After; a retransmission of an accepted batch is still answered 200; other ' +
      'addresses are not affected',
    async () => {
      const peer = new UdpPeer();
      const batch = makeBatch('rate-1', T0);
      const accepted = buildMessage({ port: server.port, body: bodyOf(batch), branch: 'z9hG4bK-rate-accepted' });
      try {
        peer.send(server.port, accepted);
        await peer.waitFor(1);
        expect(peer.responses[0]!.status).to.equal(200);
        const n = 20;
        for (let i = 0; i < n; i++) peer.send(server.port, options(server.port, 300 + i, 'UDP'));
        await peer.waitFor(1 + n);
        const statuses = peer.responses.slice(1).map((r) => r.status);
        // 2 tokens were left, plus one a second of the time the test took: most of 20 are refused.
        expect(statuses.filter((s) => s === 200).length).to.be.at.least(2);
        const refused = peer.responses.filter((r) => r.status === 503);
        expect(refused.length).to.be.greaterThan(0);
        expect(refused.length + statuses.filter((s) => s === 200).length).to.equal(n);
        expect(refused[0]!.reason).to.match(/^Rate limit exceeded: over 1 requests\/s from this address$/);
        expect(refused[0]!.headers['retry-after']).to.equal('7');

        // A new batch over the limit is refused and not stored.
        const late = makeBatch('rate-2', T0);
        peer.send(server.port, buildMessage({ port: server.port, body: bodyOf(late), branch: 'z9hG4bK-rate-late' }));
        await peer.waitFor(2 + n);
        expect(peer.responses[1 + n]!.status).to.equal(503);
        expect(await server.store.readBatches({ device_id: 'rate-2', from: T0, to: T0 + 1 })).to.deep.equal([]);

        // The accepted batch's retransmission is answered from the transaction, not charged.
        peer.send(server.port, accepted);
        await peer.waitFor(3 + n);
        expect(peer.responses[2 + n]!.status).to.equal(200);
        expect(await server.store.readBatches({ device_id: 'rate-1', from: T0, to: T0 + 1 })).to.have.length(1);
      } finally {
        peer.close();
      }
      // Another source address has a bucket of its own.
      const other = dgram.createSocket('udp4');
      try {
        await new Promise<void>((r) => other.bind(0, '127.0.0.2', () => r()));
        const answer = new Promise<ParsedResponse>((r) =>
          other.once('message', (m) => r(parseResponse(m.toString('latin1')))),
        );
        other.send(Buffer.from(options(server.port, 400, 'UDP'), 'latin1'), server.port, '127.0.0.1');
        expect((await answer).status).to.equal(200);
      } finally {
        other.close();
      }
    },
  );
});

describe('abuse bounds: transaction cache in bytes', function () {
  this.timeout(30_000);
  const CACHE_BYTES = 65_536;
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'sip.transaction_cache_bytes': String(CACHE_BYTES) });
  });
  after(async () => {
    await server?.cleanup();
  });

  it(
    '200 transactions with 4-KB responses: the cache holds at most sip.transaction_cache_bytes (plus a response ' +
      'per generation), and the newest still answer retransmissions',
    async () => {
      const peer = new UdpPeer();
      const n = 200;
      // The response copies Call-ID: a 4000-byte one makes each remembered response ~4.3 KB.
      const request = (i: number) =>
        buildMessage({
          port: server.port,
          body: '',
          method: 'OPTIONS',
          contentType: null,
          branch: `z9hG4bK-cache-${i}`,
          callId: `${i}-${'c'.repeat(4000)}`,
        });
      try {
        let maxBytes = 0;
        for (let i = 0; i < n; i++) {
          peer.send(server.port, request(i));
          await peer.waitFor(i + 1);
          maxBytes = Math.max(maxBytes, server.layer.cachedBytes);
        }
        expect(peer.responses.filter((r) => r.status === 200)).to.have.length(n);
        expect(peer.responses[0]!.raw.length).to.be.greaterThan(4000);
        // Each of the two generations may exceed its half by the response of its newest entry.
        expect(maxBytes).to.be.at.most(CACHE_BYTES + 2 * 5000);
        expect(server.layer.cachedTransactions).to.be.lessThan(n / 5);
        const answered = server.layer.stats.requests;
        const retransmissions = server.layer.stats.retransmissions;
        peer.send(server.port, request(n - 1));
        await peer.waitFor(n + 1);
        expect(server.layer.stats.retransmissions).to.equal(retransmissions + 1);
        expect(server.layer.stats.requests).to.equal(answered + 1);
      } finally {
        peer.close();
      }
    },
  );
});

describe('abuse bounds: per-device rate limit (after authentication)', function () {
  this.timeout(30_000);
  const SECRET_A = 'secret-of-device-a-0123456789';
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      'security.require_auth': 'true',
      'sip.device_rate_limit': '1',
      'sip.device_rate_limit_burst': '3',
      'sip.retry_after': '7',
    });
    const realm = server.config.security.realm;
    await server.store.putCredential(credentialFor('dev-a', realm, SECRET_A, Date.now()));
    await server.store.putCredential(credentialFor('dev-b', realm, 'secret-of-device-b-0123456789', Date.now()));
  });
  after(async () => {
    await server?.cleanup();
  });

  /** Sends one datagram from `peer` and returns its answer (the peer's next response). */
  async function ask(peer: UdpPeer, data: string): Promise<ParsedResponse> {
    const n = peer.responses.length;
    peer.send(server.port, data);
    await peer.waitFor(n + 1);
    expect(peer.responses.length, 'answered').to.equal(n + 1);
    return peer.responses[n]!;
  }

  /** A meter's session with a challenge taken from a real 401. */
  async function session(peer: UdpPeer, device: string, secret: string): Promise<DigestSession> {
    const s = new DigestSession(device, secret);
    const first = await ask(peer, buildMessage({ port: server.port, body: bodyOf(makeBatch(device, T0 - 60)) }));
    expect(first.status).to.equal(401);
    expect(s.accept([first.headers['www-authenticate']!])).to.equal(true);
    return s;
  }

  const uri = () => `sip:ec@127.0.0.1:${server.port}`;
  function signed(s: DigestSession, body: string, branch?: string): string {
    const authorization = s.authorize('MESSAGE', uri(), body)!;
    return buildMessage({ port: server.port, body, branch, extraHeaders: [`Authorization: ${authorization}`] });
  }
  const stored = async (device: string, second: number) =>
    (await server.store.readBatches({ device_id: device, from: second, to: second + 1 })).length;

  it(
    'forged and replayed requests naming a device take none of its tokens; over the limit: 503 with ' +
      'Retry-After, nothing stored, counted in the metrics; an accepted batch resent is still 200; other ' +
      'devices are not affected',
    async () => {
      const meter = new UdpPeer();
      const attacker = new UdpPeer();
      try {
        const a = await session(meter, 'dev-a', SECRET_A);
        const first = signed(a, bodyOf(makeBatch('dev-a', T0)), 'z9hG4bK-dev-a-first');
        expect((await ask(meter, first)).status).to.equal(200);

        // An attacker names dev-a: a wrong secret, no credentials, and the captured first request
        // replayed under new branches. None of it may cost dev-a a token.
        const forger = await session(attacker, 'dev-a', 'not-the-secret');
        for (let i = 0; i < 10; i++) {
          const forged = await ask(attacker, signed(forger, bodyOf(makeBatch('dev-a', T0 + 100 + i))));
          expect(forged.status).to.equal(401);
          const replay = first.replace('z9hG4bK-dev-a-first', `z9hG4bK-replay-${i}`);
          expect((await ask(attacker, replay)).status).to.equal(401);
          const bare = buildMessage({ port: server.port, body: bodyOf(makeBatch('dev-a', T0 + 200 + i)) });
          expect((await ask(attacker, bare)).status).to.equal(401);
        }
        expect(server.layer.stats.responses.udp.MESSAGE[503] ?? 0).to.equal(0);

        // dev-a still has the rest of its burst (2 tokens, plus one a second since), then is refused.
        const answers: ParsedResponse[] = [];
        for (let i = 1; i <= 8; i++) answers.push(await ask(meter, signed(a, bodyOf(makeBatch('dev-a', T0 + i)))));
        expect(answers.slice(0, 2).map((r) => r.status)).to.deep.equal([200, 200]);
        const refused = answers.filter((r) => r.status === 503);
        expect(refused.length).to.be.greaterThan(0);
        expect(refused.length + answers.filter((r) => r.status === 200).length).to.equal(8);
        expect(refused[0]!.reason).to.equal('Device rate limit exceeded: over 1 MESSAGEs/s for this device');
        expect(refused[0]!.headers['retry-after']).to.equal('7');
        for (let i = 1; i <= 8; i++) {
          expect(await stored('dev-a', T0 + i), `batch ${i}`).to.equal(answers[i - 1]!.status === 200 ? 1 : 0);
        }
        expect(await stored('dev-a', T0 + 100), 'forged').to.equal(0);
        const metrics = await server.metrics.metrics();
        expect(metrics).to.include(`ec_sip_unavailable_total{reason="EC_DEVICE_RATE_LIMITED"} ${refused.length}`);

        // The accepted first batch's retransmission is answered from its transaction: 200, not charged.
        expect((await ask(meter, first)).status).to.equal(200);
        // Another device, same address: a bucket of its own.
        const b = await session(meter, 'dev-b', 'secret-of-device-b-0123456789');
        expect((await ask(meter, signed(b, bodyOf(makeBatch('dev-b', T0))))).status).to.equal(200);
      } finally {
        meter.close();
        attacker.close();
      }
    },
  );
});
