import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { epochSecondToParts } from '../../src/domain/batch.js';
import { SQLITE_FILE } from '../../src/store/sqlite-store.js';
import { buildMessage, tcpExchange, UdpPeer } from '../helpers/sip-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * The store cannot keep up (here: another process holds SQLite's write lock, a real fault):
 * the commit queue is bounded in bytes, requests beyond it get 503 + Retry-After at once,
 * and nothing answered 503 is stored, nothing answered 200 is missing.
 */
describe('overload: a stalled store', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'storage.max_queued_bytes': String(1024 * 1024), 'sip.retry_after': '2' });
  });
  after(async () => {
    await server?.cleanup();
  });

  // ... and 200 for what it queued, once the lock is released.
  it('answers 503 Server overloaded beyond storage.max_queued_bytes, 200 for what it queued', async () => {
    const T0 = Date.UTC(2026, 6, 1) / 1000;
    const records = Array.from({ length: 1000 }, (_, i) => `${i * 1000},${(i / 7).toFixed(3)}`).join(';');
    const messages = Array.from({ length: 120 }, (_, i) => {
      const p = epochSecondToParts(T0 + i);
      return buildMessage({
        port: server.port,
        transport: 'TCP',
        body: `overload|${p.ec_date}${p.ec_time}|${records}`,
      });
    });
    const blocker = new Database(join(server.dir, 'data', SQLITE_FILE));
    blocker.exec('BEGIN IMMEDIATE');
    // Wait for the event, not for a time: every request either queued (held by the lock) or refused.
    let accounted!: () => void;
    const allAccounted = new Promise<void>((r) => (accounted = r));
    const exchange = tcpExchange(server.port, messages.join(''), messages.length, 20_000, 1, (answered) => {
      if (answered.length + server.committer.queued >= messages.length) accounted();
    });
    await allAccounted;
    // The commit waiting for the lock started before that (its batches were queued first); hold the lock
    // long enough for it to be reported as slow.
    await new Promise((r) => setTimeout(r, 1100));
    blocker.exec('COMMIT');
    blocker.close();
    const { responses } = await exchange;
    expect(responses).to.have.length(messages.length);
    const ok = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 503);
    expect(ok.length + refused.length).to.equal(messages.length);
    expect(refused.length, '503s beyond 1 MiB of queued values').to.be.greaterThan(30);
    expect(ok.length, '200s for the queued batches').to.be.greaterThan(30);
    expect(refused[0]!.reason).to.match(/Server overloaded: \d+ bytes of batches await a commit/);
    expect(refused[0]!.headers['retry-after']).to.equal('2');
    expect(server.committer.queuedBytes).to.equal(0);
    // The commit that waited for the lock is reported (the server logs "slow commit: N ms").
    expect(server.committer.stats.slowCommits).to.be.at.least(1);
    expect(server.committer.stats.maxCommitMs).to.be.at.least(1000);
    const stored = await server.store.readSummaries({ device_id: 'overload', from: T0, to: T0 + messages.length });
    expect(stored.length, 'rows = 200s').to.equal(ok.length);
  });
});

/**
 * The same stalled store seen by UDP meters: with ingest.max_wait_ms, a MESSAGE that would wait
 * longer than the bound is answered 503 + Retry-After at once (before T1, so meters do not
 * retransmit), the ones accepted before are answered 200 once the lock goes, and new ones are
 * accepted again.
 */
describe('overload control over UDP: a stalled store', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'ingest.max_wait_ms': '250', 'sip.retry_after': '3' });
  });
  after(async () => {
    await server?.cleanup();
  });

  it('answers 503 "expected commit wait" at once while stuck, 200 for what it took, accepts again', async () => {
    const T0 = Date.UTC(2026, 6, 2) / 1000;
    let n = 0;
    const send = (peer: UdpPeer) => {
      const p = epochSecondToParts(T0 + n++);
      peer.send(server.port, buildMessage({ port: server.port, body: `udp-ovl|${p.ec_date}${p.ec_time}|1,2;3,4` }));
    };
    const peer = new UdpPeer();
    const blocker = new Database(join(server.dir, 'data', SQLITE_FILE));
    try {
      blocker.exec('BEGIN IMMEDIATE');
      for (let i = 0; i < 60; i++) {
        send(peer);
        await new Promise((r) => setTimeout(r, 20));
      }
      // Everything answered so far came while the lock was held, i.e. without waiting for a commit.
      const duringStall = [...peer.responses];
      blocker.exec('COMMIT');
      await peer.waitFor(60, 10_000);
      const refused = duringStall.filter((r) => r.status === 503);
      expect(refused.length, '503s while the store is stuck').to.be.greaterThan(20);
      expect(
        duringStall.filter((r) => r.status === 200),
        'no 200 before the commit',
      ).to.have.length(0);
      expect(refused[0]!.reason).to.match(/^Server overloaded: expected commit wait \d+ ms exceeds 250 ms$/);
      expect(refused[0]!.headers['retry-after']).to.equal('3');
      const ok = peer.responses.filter((r) => r.status === 200);
      expect(ok.length + refused.length).to.equal(60);
      expect(ok.length, 'the batches accepted before the bound was reached').to.be.greaterThan(0);

      const before = peer.responses.length;
      for (let i = 0; i < 20; i++) send(peer);
      await peer.waitFor(before + 20, 10_000);
      expect(peer.responses.slice(before).map((r) => r.status)).to.deep.equal(Array(20).fill(200));
      const stored = await server.store.readSummaries({ device_id: 'udp-ovl', from: T0, to: T0 + n });
      expect(stored.length, 'rows = 200s').to.equal(ok.length + 20);
    } finally {
      blocker.close();
      peer.close();
    }
  });
});
