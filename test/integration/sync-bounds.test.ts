import { Writable } from 'node:stream';
import { expect } from 'chai';
import pino from 'pino';
import { PEER_TEXT_MAX } from '../../src/sync/peer-text.js';
import { SyncService } from '../../src/sync/sync-service.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { makeBatch } from '../helpers/batches.js';
import { emptyAnswer, SyncPeer } from '../helpers/sync-peer.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { until } from '../helpers/until.js';

/**
 * Bounds of the sync service against real sockets (issue 14, item 7): connection cap, idle
 * timeout, destroy on abort, hello first, bounded catch-up, truncated peer text; and no period
 * recorded as checked by a clock that was ahead counts once the clock is back.
 */

const PERIOD_MIN = 10;
const P = PERIOD_MIN * 60;
const T0 = Date.UTC(2026, 3, 1) / 1000; // a period boundary
/** A hello's watermark declaring everything journaled final (these meters write nothing more while they sync). */
const EVERYTHING_FINAL = Date.UTC(2100, 0, 1) / 1000;

/**
 * A meter of the test's making on a real socket: says hello (unless told not to), answers every
 * request with empty lists (a journal with nothing in it), or with an error; records what it was asked.
 */
class FakeMeter extends SyncPeer {
  constructor(port: number, options: { allowHalfOpen?: boolean; answerWithError?: string } = {}) {
    const { answerWithError } = options;
    super(
      port,
      answerWithError === undefined
        ? emptyAnswer
        : () => ({ type: 'error', code: 'EC_SYNC_CLIENT_FAILED', message: answerWithError }),
      options,
    );
  }

  async hello(devices: string[], retentionS: number, client = 'fake-meter'): Promise<void> {
    await this.write({ type: 'hello', version: 1, devices, retention_s: retentionS, client, final: EVERYTHING_FINAL });
    await until(() => this.frames.some((f) => f.type === 'welcome'), 'welcome');
  }
}

describe('sync bounds', function () {
  this.timeout(30_000);
  let now = T0;
  let server: TestServer;
  const meters: FakeMeter[] = [];
  const meter = (o?: { allowHalfOpen?: boolean }) => {
    const m = new FakeMeter(server.syncPort!, o);
    meters.push(m);
    return m;
  };
  before(async () => {
    server = await startTestServer(
      {
        'sync.syncfreq': String(PERIOD_MIN),
        'sync.grace_seconds': '60',
        'sync.max_connections': '3',
        'sync.idle_timeout': '1',
        'sync.max_periods_per_round': '3',
      },
      { now: () => now },
    );
  });
  afterEach(async () => {
    for (const m of meters.splice(0)) m.socket.destroy();
    await until(() => server.sync!.openConnections === 0, 'connections to close');
  });
  after(async () => {
    await server?.cleanup();
  });

  it('connection cap: the 4th connection (cap 3, hello or not) gets EC_SYNC_BUSY and is closed', async () => {
    const held = [meter(), meter(), meter()];
    await held[0]!.hello(['cap-1'], 60);
    await until(() => server.sync!.openConnections === 3, 'three connections');
    const fourth = meter();
    await until(() => fourth.closed, 'the 4th to be closed');
    expect(fourth.errorCodes()).to.deep.equal(['EC_SYNC_BUSY']);
    expect(String(fourth.frames[0]!.message)).to.match(/sync\.max_connections = 3/);
    expect(server.sync!.openConnections).to.equal(3);
    held[1]!.socket.destroy();
    await until(() => server.sync!.openConnections === 2, 'a slot to free');
    await meter().hello(['cap-2'], 60);
  });

  it('idle timeout: a welcomed connection silent for sync.idle_timeout (1 s) gets EC_SYNC_IDLE, closed', async () => {
    const m = meter();
    await m.hello(['idle-1'], 60); // nothing to reconcile: no request follows
    const welcomedAt = Date.now();
    await until(() => m.closed, 'the idle connection to be closed', 5000);
    expect(Date.now() - welcomedAt).to.be.at.least(900);
    expect(m.errorCodes()).to.deep.equal(['EC_SYNC_IDLE']);
  });

  it('abort destroys: a peer that keeps its side open after a bad frame does not keep the server socket', async () => {
    const m = meter({ allowHalfOpen: true });
    await m.write('not json\n');
    await until(() => m.ended, 'the server to close its side');
    expect(m.errorCodes()).to.deep.equal(['EC_SYNC_BAD_JSON']);
    // The peer has not ended its side; with end() instead of destroy() the server socket stayed.
    expect(m.socket.writableEnded).to.equal(false);
    await until(() => server.sync!.openConnections === 0, 'the server socket to be gone');
  });

  it('hello first: a request-shaped first frame gets EC_SYNC_NO_HELLO and is closed', async () => {
    const m = meter();
    await m.write({ type: 'digest', id: 1, intervals: [] });
    await until(() => m.closed, 'close');
    expect(m.errorCodes()).to.deep.equal(['EC_SYNC_NO_HELLO']);
    expect(m.frames.map((f) => f.type)).to.deep.equal(['challenge', 'error']);
    expect(String(m.frames[1]!.message)).to.match(/first frame must be a hello, not digest/);
  });

  it('catch-up work per hello is bounded: 3 periods of 11 unverified; the next round does the next 3', async () => {
    now = T0 + 10 * P + 60;
    await Promise.all(server.sync!.catchUps.splice(0));
    const m = meter();
    await m.hello(['catch-1'], 12 * P);
    const [report] = await Promise.all(server.sync!.catchUps.splice(0));
    expect(report!.periods).to.have.length(3);
    expect(m.requests.filter((r) => r.type === 'digest')).to.have.length(3);
    const round = await server.sync!.runRound();
    expect(round.periods).to.have.length(3);
    expect(m.requests.filter((r) => r.type === 'digest')).to.have.length(6);
    now = T0;
  });

  it(
    'the budget does not starve devices: periods that stay unresolved on the first device do not stop the next ' +
      'round reaching the second',
    async () => {
      now = T0 + 10 * P + 60;
      await Promise.all(server.sync!.catchUps.splice(0));
      // The server holds batches the meter does not know: those periods stay mismatch-unresolved.
      await server.store.upsertBatches(Array.from({ length: 10 }, (_, i) => makeBatch('rot-a', T0 + i * P + 5)));
      const m = meter();
      await m.hello(['rot-a', 'rot-b'], 12 * P);
      const [catchUp] = await Promise.all(server.sync!.catchUps.splice(0));
      expect(catchUp!.periods.map((p) => [p.device, p.status])).to.deep.equal([
        ['rot-a', 'verified'],
        ['rot-a', 'mismatch-unresolved'],
        ['rot-a', 'mismatch-unresolved'],
      ]);
      const round = await server.sync!.runRound();
      expect(round.periods.map((p) => p.device)).to.deep.equal(['rot-b', 'rot-b', 'rot-b']);
      now = T0;
    },
  );

  it('a clock that was ahead: periods it recorded as verified are reconciled again once they are due', async () => {
    const m = meter();
    await m.hello(['jump-1'], 3 * P);
    // The clock jumps 10 periods ahead: a round verifies periods that have not happened yet.
    now = T0 + 12 * P + 60;
    const ahead = await server.sync!.runRound();
    const jumped = ahead.periods.map((p) => p.from);
    expect(jumped).to.include(T0 + 10 * P);
    // Back to the true time, once the period [T0 + 10P, T0 + 11P) has really ended.
    now = T0 + 11 * P + 60;
    const asked = m.requests.length;
    const round = await server.sync!.runRound();
    expect(round.periods.map((p) => p.from)).to.include(T0 + 10 * P);
    expect(m.requests.slice(asked).map((r) => r.from)).to.include(T0 + 10 * P);
    const checks = await server.store.readIntervalChecks({ device_id: 'jump-1', from: T0 + 10 * P, to: T0 + 11 * P });
    expect(checks.map((c) => c.check_time)).to.deep.equal([(T0 + 11 * P + 60) * 1000]);
    now = T0;
  });
});

describe('sync bounds: peer text in the log', function () {
  this.timeout(10_000);
  it('an error frame with a 1-MiB message is logged cut to 200 characters', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const store = new SqliteStore({ dir: ':memory:', synchronous: 'NORMAL' });
    await store.open();
    const service = new SyncService(
      store,
      {
        host: '127.0.0.1',
        port: 0,
        periodS: P,
        graceS: 60,
        auth: { realm: 'ec-server', required: false, credentials: { get: () => undefined } },
        deleteExtraneous: false,
        requestTimeoutMs: 1000,
        concurrency: 1,
        schedule: false,
        now: () => T0,
      },
      pino({ level: 'info' }, sink),
    );
    const port = await service.listen();
    try {
      const m = new FakeMeter(port);
      await m.hello(['text-1'], 60, 'c'.repeat(100_000));
      await m.write({ type: 'error', code: 'E'.repeat(5000), message: 'm'.repeat(1024 * 1024) });
      await until(() => lines.some((l) => l.includes('sync client reported an error')), 'the log line');
      m.socket.destroy();
      const errorLine = JSON.parse(lines.find((l) => l.includes('sync client reported an error'))!) as {
        message: string;
        code: string;
      };
      expect(errorLine.message.length).to.be.at.most(PEER_TEXT_MAX + 30);
      expect(errorLine.message).to.match(/\(1048576 chars\)$/);
      expect(errorLine.code.length).to.be.at.most(PEER_TEXT_MAX + 30);
      const helloLine = JSON.parse(lines.find((l) => l.includes('sync client connected'))!) as { client: string };
      expect(helloLine.client.length).to.be.at.most(PEER_TEXT_MAX + 30);
      expect(Math.max(...lines.map((l) => l.length))).to.be.lessThan(2000);

      // An error frame answering a request: the reconciliation's error carries the cut text too.
      const failing = new FakeMeter(port, { answerWithError: 'f'.repeat(1024 * 1024) });
      await failing.hello(['text-2'], 3 * P);
      const reports = await Promise.all(service.catchUps.splice(0));
      failing.socket.destroy();
      const errors = reports.flatMap((r) => r.errors).filter((e) => e.device === 'text-2');
      expect(errors).to.have.length(1);
      expect(errors[0]!.error.length).to.be.at.most(PEER_TEXT_MAX + 30);
      expect(Math.max(...lines.map((l) => l.length))).to.be.lessThan(2000);
    } finally {
      await service.close();
      await store.close();
    }
  });
});
