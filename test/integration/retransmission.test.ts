import { expect } from 'chai';
import { buildMessage, tcpExchange, UdpPeer } from '../helpers/sip-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** RFC 3261 17.2.2: a retransmitted request gets the same response and is processed once. */
describe('retransmissions', function () {
  this.timeout(20_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.cleanup();
  });

  const T0 = Date.UTC(2016, 8, 9, 15, 5, 5) / 1000;

  it('UDP: the same branch from another source is its own transaction (a guessed branch spoils nothing)', async () => {
    const victim = new UdpPeer();
    const spoiler = new UdpPeer();
    try {
      const branch = 'z9hG4bK-guessed-1';
      spoiler.send(server.port, buildMessage({ port: server.port, body: 'spoil|20160909150505|1,1.5', branch }));
      await spoiler.waitFor(1);
      victim.send(server.port, buildMessage({ port: server.port, body: 'victim|20160909150505|1,1.5', branch }));
      await victim.waitFor(1);
      expect(victim.responses[0]?.status).to.equal(200);
      const stored = await server.store.readSummaries({ device_id: 'victim', from: T0, to: T0 + 1 });
      expect(stored, "the victim's batch was processed, not answered from the spoiler's transaction").to.have.length(1);
    } finally {
      victim.close();
      spoiler.close();
    }
  });

  it('UDP: same branch -> same response bytes (same To-tag), batch written once', async () => {
    const peer = new UdpPeer();
    try {
      const before = server.committer.stats.batches;
      const msg = buildMessage({
        port: server.port,
        body: 'retx|20160909150505|1,1.5;2,2.5',
        branch: 'z9hG4bK-retx-1',
      });
      // Two copies back to back: the second arrives while the first is being committed and is absorbed.
      peer.send(server.port, msg);
      peer.send(server.port, msg);
      await peer.waitFor(1);
      // A barrier instead of a sleep: an answer to the absorbed copy would have been sent with the first
      // one, so before the answer to a request sent after both.
      peer.send(server.port, buildMessage({ port: server.port, body: '', method: 'OPTIONS' }));
      await peer.waitFor(2);
      const messages = () => peer.responses.filter((r) => r.headers.cseq === '1 MESSAGE');
      expect(peer.responses[1]?.headers.cseq, 'the barrier is answered last').to.equal('1 OPTIONS');
      expect(messages(), 'one answer for two copies in flight').to.have.length(1);
      // Later retransmissions (Timer E) are answered from the transaction, not the store.
      peer.send(server.port, msg);
      peer.send(server.port, msg);
      await peer.waitFor(4);
      expect(messages()).to.have.length(3);
      expect(messages().map((r) => r.status)).to.deep.equal([200, 200, 200]);
      expect(new Set(messages().map((r) => r.raw)).size, 'identical bytes').to.equal(1);
      expect(server.committer.stats.batches - before, 'batches handed to the store').to.equal(1);
      expect(server.layer.stats.retransmissions).to.be.at.least(3);
      const rows = await server.store.readBatches({ device_id: 'retx', from: T0, to: T0 + 1 });
      expect(rows).to.have.length(1);
    } finally {
      peer.close();
    }
  });

  it('UDP: a new branch is a new transaction (a new batch key is stored)', async () => {
    const peer = new UdpPeer();
    try {
      peer.send(
        server.port,
        buildMessage({ port: server.port, body: 'retx2|20160909150505|1,1', branch: 'z9hG4bK-a' }),
      );
      peer.send(
        server.port,
        buildMessage({ port: server.port, body: 'retx2|20160909150505|5,1', branch: 'z9hG4bK-b' }),
      );
      await peer.waitFor(2);
      expect(peer.responses.map((r) => r.status)).to.deep.equal([200, 200]);
      expect(peer.responses[0]!.headers.to).to.not.equal(peer.responses[1]!.headers.to);
      expect(await server.store.readBatches({ device_id: 'retx2', from: T0, to: T0 + 1 })).to.have.length(2);
    } finally {
      peer.close();
    }
  });

  it('TCP: a resend after reconnecting is answered 200 and leaves one row (idempotent upsert)', async () => {
    const msg = buildMessage({
      port: server.port,
      transport: 'TCP',
      body: 'retx-tcp|20160909150505|1,1.5',
      branch: 'z9hG4bK-tcp',
    });
    const a = await tcpExchange(server.port, msg, 1);
    const b = await tcpExchange(server.port, msg, 1);
    expect([a.responses[0]?.status, b.responses[0]?.status]).to.deep.equal([200, 200]);
    expect(await server.store.readBatches({ device_id: 'retx-tcp', from: T0, to: T0 + 1 })).to.have.length(1);
  });
});
