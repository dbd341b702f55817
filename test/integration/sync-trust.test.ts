import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { Journal } from '../../src/client/journal.js';
import { SyncClient } from '../../src/client/sync-client.js';
import { batchKeyString, epochSecondToParts, recordsChecksum, type Batch } from '../../src/domain/batch.js';
import { credentialFor } from '../../src/domain/device-credential.js';
import type { ConsumptionStore } from '../../src/store/consumption-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { SyncService, type SyncAuth } from '../../src/sync/sync-service.js';
import { makeBatch } from '../helpers/batches.js';
import { SyncPeer, type Frame } from '../helpers/sync-peer.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { until } from '../helpers/until.js';

/**
 * Sync trusts no peer's word (issue 14, item 5), on real sockets and a real SQLite file: a hello
 * must prove the secret of every device it names that has credentials (of every device, when auth
 * is required), or it gets EC_SYNC_AUTH_FAILED and is closed, having changed nothing; a proven
 * meter's answers are believed only within what it was asked; data is deleted only on a proven
 * meter's word.
 */

const log = pino({ level: process.env.EC_TEST_LOG ?? 'silent' });
const PERIOD_MIN = 10;
const P = PERIOD_MIN * 60;
const T0 = Date.UTC(2026, 3, 1) / 1000; // a period boundary
/** A hello's watermark declaring everything journaled final (these meters write nothing more while they sync). */
const EVERYTHING_FINAL = Date.UTC(2100, 0, 1) / 1000;
const Y2030 = Date.UTC(2030, 0, 1) / 1000;
const SECRET = 'victim-secret-0123456789abcdef';
const ROGUE_SECRET = 'rogue-own-secret-0123456789abcd';

/** The proof as docs/sync-protocol.md defines it, computed here independently of src/. */
function proof(device: string, realm: string, secret: string, nonce: string): string {
  const ha1 = createHash('sha256').update(`${device}:${realm}:${secret}`).digest('hex');
  return createHmac('sha256', ha1).update(`${nonce}:${device}`).digest('hex');
}

/** A self-consistent batch (its checksum matches its values) with values of the forger's choosing. */
function forged(device: string, sec: number, startUs = 0, seed = 666): Batch {
  return makeBatch(device, sec, 3, startUs, seed);
}

function summaryOf(b: Batch): Frame {
  const { ec_date, ec_time, start_us, end_us, values_count, values_checksum } = b;
  return { ec_date, ec_time, start_us, end_us, values_count, values_checksum };
}

function wire(b: Batch): Frame {
  const { insert_time: _ignored, ...rest } = b;
  return rest;
}

/**
 * A peer of the test's making on a raw socket: records every frame, answers every request with
 * what `answer` returns (by default: forgeries that would overwrite, add and delete data).
 */
class RawPeer extends SyncPeer {
  constructor(port: number, answer: (request: Frame) => Frame = forgeEverything) {
    super(port, (r) => ({ type: r.type, ...answer(r) }));
  }

  async challenge(): Promise<{ nonce: string; realm: string }> {
    await until(() => this.frames.length > 0 || this.closed, 'the challenge');
    const c = this.frames[0]!;
    expect(c.type).to.equal('challenge');
    expect(c.nonce).to.match(/^[A-Za-z0-9_-]{43}$/);
    return { nonce: c.nonce as string, realm: c.realm as string };
  }

  hello(devices: string[], proofs?: Record<string, string>): void {
    this.socket.write(
      JSON.stringify({
        type: 'hello',
        version: 1,
        devices,
        retention_s: 3 * P,
        client: 'rogue',
        proofs,
        final: EVERYTHING_FINAL,
      }) + '\n',
    );
  }

  async refused(): Promise<Frame> {
    // A welcome ends the wait too: then the frames below say what went wrong at once.
    await until(() => this.closed || this.frames.some((f) => f.type === 'welcome'), 'the server to close');
    expect(this.frames.map((f) => f.type)).to.deep.equal(['challenge', 'error']);
    expect(this.requests).to.deep.equal([]);
    return this.frames[1]!;
  }

  async welcomed(): Promise<Frame> {
    await until(() => this.frames.some((f) => f.type === 'welcome') || this.closed, 'the welcome');
    const w = this.frames.find((f) => f.type === 'welcome');
    expect(w, `welcome (frames: ${JSON.stringify(this.frames)})`).to.not.equal(undefined);
    return w!;
  }
}

/** Every minute differs; summaries and batches that would overwrite, add (in 2030 too) and drop. */
function forgeEverything(r: Frame): Frame {
  const device = r.device as string;
  const from = r.from as number;
  if (r.type === 'digest') {
    const intervals = [];
    for (let t = from; t < (r.to as number); t += r.interval as number)
      intervals.push({ start: t, batches: 1, samples: 3, digest: 'f'.repeat(32) });
    return { intervals };
  }
  if (r.type === 'summaries')
    return { summaries: [summaryOf(forged(device, from + 5)), summaryOf(forged(device, Y2030))] };
  const keys = (r.keys as Frame[]) ?? [];
  return {
    batches: [
      ...keys.map((k) => wire({ ...forged(device, T0), ...k, device_id: device })),
      wire(forged(device, Y2030)),
    ],
  };
}

/** Everything stored about these devices around T0 and in 2030: batches and ec_checksum rows. */
async function snapshot(store: ConsumptionStore, devices: string[]): Promise<string> {
  const out: unknown[] = [];
  for (const device_id of devices) {
    for (const [from, to] of [
      [T0 - P, T0 + 3 * P],
      [Y2030 - 60, Y2030 + 3600],
    ] as const) {
      out.push(await store.readBatches({ device_id, from, to }));
      out.push(await store.readIntervalChecks({ device_id, from, to }));
    }
  }
  return JSON.stringify(out);
}

describe('sync trust: a hello proves the secret of every device it speaks for', function () {
  this.timeout(30_000);
  let now = T0;
  let server: TestServer;
  const peers: RawPeer[] = [];
  const peer = (answer?: (r: Frame) => Frame) => {
    const p = new RawPeer(server.syncPort!, answer);
    peers.push(p);
    return p;
  };

  before(async () => {
    server = await startTestServer(
      {
        'sync.syncfreq': String(PERIOD_MIN),
        'sync.grace_seconds': '60',
        'sync.request_timeout': '5',
        'sync.delete_extraneous': 'true', // the rogue's best case: the server would delete on its word
      },
      { now: () => now },
    );
    const realm = server.config.security.realm;
    await server.store.putCredential(credentialFor('victim-1', realm, SECRET, Date.now()));
    await server.store.putCredential(credentialFor('own-1', realm, ROGUE_SECRET, Date.now()));
  });
  afterEach(async () => {
    for (const p of peers.splice(0)) p.socket.destroy();
    await until(() => server.sync!.openConnections === 0, 'connections to close');
    await Promise.all(server.sync!.catchUps.splice(0));
    now = T0;
  });
  after(async () => {
    await server?.cleanup();
  });

  it('a rogue without the secret: refused and disconnected, changes no row, no status, deletes nothing', async () => {
    // Acknowledged data of the victim in two periods; the first one was found damaged before, so a
    // round would reconcile it with whoever speaks for the device.
    const victim = [makeBatch('victim-1', T0 + 5), makeBatch('victim-1', T0 + 65), makeBatch('victim-1', T0 + P + 5)];
    await server.store.upsertBatches(victim);
    await server.store.writeIntervalCheck({
      device_id: 'victim-1',
      ...epochSecondToParts(T0),
      interval_seconds: P,
      values_count: 6,
      values_checksum: 'x',
      check_time: T0 * 1000,
      check_times: 1,
      status: 'mismatch-unresolved',
    });
    const devices = ['victim-1', 'ghost-1'];
    const before = await snapshot(server.store, devices);
    now = T0 + 2 * P + 61; // both periods are due: a welcomed hello would reconcile them at once

    const realm = server.config.security.realm;
    const attempts: [string, (c: { nonce: string; realm: string }) => [string[], Record<string, string>?]][] = [
      ['no proof', () => [['victim-1']]],
      ['a made-up proof', () => [['victim-1'], { 'victim-1': randomBytes(32).toString('hex') }]],
      ['a proof that is not hex', () => [['victim-1'], { 'victim-1': 'z'.repeat(64) }]],
      // A proof seen on another connection (right secret, another nonce): replay is worth nothing.
      ['a replayed proof', () => [['victim-1'], { 'victim-1': proof('victim-1', realm, SECRET, 'A'.repeat(43)) }]],
      [
        'a proof made with another secret',
        (c) => [['victim-1'], { 'victim-1': proof('victim-1', realm, 'guess', c.nonce) }],
      ],
      ['a proof for another realm', (c) => [['victim-1'], { 'victim-1': proof('victim-1', 'other', SECRET, c.nonce) }]],
      // Its own device proven, the victim named beside it: the whole hello is refused.
      [
        'its own device proven, the victim not',
        (c) => [['own-1', 'victim-1', 'ghost-1'], { 'own-1': proof('own-1', realm, ROGUE_SECRET, c.nonce) }],
      ],
      // The victim's proof put under the rogue's own device name does not prove the victim.
      [
        "the own device's proof under the victim's name",
        (c) => [['victim-1'], { 'victim-1': proof('own-1', realm, ROGUE_SECRET, c.nonce) }],
      ],
    ];
    for (const [what, make] of attempts) {
      const p = peer();
      const [named, proofs] = make(await p.challenge());
      p.hello(named, proofs);
      const error = await p.refused();
      expect(error.code, what).to.equal('EC_SYNC_AUTH_FAILED');
      expect(error.message, what).to.match(/victim-1/);
    }
    expect(server.sync!.catchUps, 'no reconciliation started').to.deep.equal([]);
    const round = await server.sync!.runRound();
    expect(round.clients).to.equal(0);
    expect(await snapshot(server.store, devices)).to.equal(before);
  });

  it('a proven meter: answers count only within what was asked, checked against their own checksums', async () => {
    const mine = makeBatch('own-1', T0 + 5);
    const victim = makeBatch('victim-1', T0 + 5);
    await server.store.upsertBatches([mine, victim]);
    const before = await snapshot(server.store, ['victim-1']);
    const good = makeBatch('own-1', T0 + 7, 3, 0, 9); // the one batch it may add: asked for, consistent
    const overwrite = forged('own-1', T0 + 5); // same key as `mine`, other values
    const badFields = makeBatch('own-1', T0 + 8, 3, 0, 5);
    const nextMinute = forged('own-1', T0 + 65);
    const in2030 = forged('own-1', Y2030);
    const answers = (r: Frame): Frame => {
      if (r.type === 'digest') {
        const interval = r.interval as number;
        // Entries outside the asked range are not believed; the one inside makes the minute differ.
        return {
          intervals: [
            { start: T0, batches: 4, samples: 12, digest: 'e'.repeat(32) },
            { start: Y2030 - (Y2030 % interval), batches: 1, samples: 3, digest: 'e'.repeat(32) },
            { start: T0 + 1, batches: 1, samples: 3, digest: 'e'.repeat(32) },
          ],
        };
      }
      if (r.type === 'summaries') {
        return {
          summaries: [
            summaryOf(overwrite),
            summaryOf(good),
            summaryOf(badFields),
            summaryOf(nextMinute), // outside the asked minute
            summaryOf(in2030), // outside the asked minute
            { ec_date: 'x', ec_time: 1 }, // not a summary
          ],
        };
      }
      return {
        batches: [
          // Asked key, values that do not match the checksum it claims (the summary's).
          wire({ ...overwrite, values_checksum: recordsChecksum(mine.ec_consumption_values) }),
          wire({ ...overwrite, ec_consumption_values: overwrite.ec_consumption_values + ';999999,1' }),
          // Asked key, another device's batch.
          wire({ ...forged('victim-1', T0 + 5), ...summaryOf(overwrite), device_id: 'victim-1' }),
          // Asked key, consistent checksum, fields that do not match the values.
          wire({ ...badFields, values_count: 4 }),
          wire(good),
          wire(good), // twice: stored once
          // Not asked for (outside the minute, 2030), each self-consistent.
          wire(nextMinute),
          wire(in2030),
          { junk: true },
        ],
      };
    };
    now = T0 + P + 61;
    const p = peer(answers);
    const c = await p.challenge();
    p.hello(['own-1'], { 'own-1': proof('own-1', c.realm, ROGUE_SECRET, c.nonce) });
    expect(await p.welcomed()).to.include({ type: 'welcome', proven: 1 });
    const [report] = await Promise.all(server.sync!.catchUps.splice(0));
    expect(report!.errors).to.deep.equal([]);
    const period = report!.periods.find((r) => r.from === T0);
    expect(period).to.include({ device: 'own-1', from: T0, status: 'mismatch-unresolved', repaired: 1 });
    // 2 digest entries out of range (in each of the 3 digest answers: period, minutes, period again after the
    // repair), 3 summaries outside the minute or malformed, 8 batches unusable.
    expect(period!.rejected).to.equal(3 * 2 + 3 + 8);
    // The server asked for exactly the keys of the minute it lacks or holds otherwise.
    const asked = p.requests.filter((r) => r.type === 'batches').flatMap((r) => r.keys as Batch[]);
    expect(asked.map((k) => batchKeyString(k)).sort()).to.deep.equal(
      [overwrite, good, badFields].map((b) => batchKeyString(b)).sort(),
    );
    const stored = await server.store.readBatches({ device_id: 'own-1', from: T0, to: T0 + P });
    expect(stored.map((b) => [batchKeyString(b), b.ec_consumption_values])).to.deep.equal(
      [mine, good].map((b) => [batchKeyString(b), b.ec_consumption_values]),
    );
    expect(await server.store.readBatches({ device_id: 'own-1', from: Y2030 - 60, to: Y2030 + 60 })).to.deep.equal([]);
    expect(await snapshot(server.store, ['victim-1'])).to.equal(before);
    // Its own batch the meter did not list was kept (the meter claimed another one there), and
    // the period is not verified.
    const checks = await server.store.readIntervalChecks({ device_id: 'own-1', from: T0, to: T0 + P });
    expect(checks.find((k) => k.interval_seconds === P)?.status).to.equal('mismatch-unresolved');
  });

  it('anonymous device: an empty answer neither verifies nor deletes; a proven device: it deletes', async () => {
    const anon = [makeBatch('anon-1', T0 + 5), makeBatch('anon-1', T0 + 125)];
    await server.store.putCredential(credentialFor('own-2', server.config.security.realm, ROGUE_SECRET, Date.now()));
    const own = [makeBatch('own-2', T0 + P + 5)];
    await server.store.upsertBatches([...anon, ...own]);
    const empty = (r: Frame): Frame => ({
      [r.type === 'digest' ? 'intervals' : r.type === 'summaries' ? 'summaries' : 'batches']: [],
    });
    now = T0 + 2 * P + 61;
    const a = peer(empty);
    await a.challenge();
    a.hello(['anon-1']);
    expect(await a.welcomed()).to.include({ proven: 0 });
    const [anonReport] = await Promise.all(server.sync!.catchUps.splice(0));
    expect(anonReport!.periods.map((r) => [r.from, r.status, r.deleted])).to.deep.equal([
      [T0, 'mismatch-unresolved', 0],
      [T0 + P, 'verified', 0], // empty on both sides
    ]);
    expect(await server.store.readBatches({ device_id: 'anon-1', from: T0, to: T0 + P })).to.have.length(2);

    // The same empty answers from a meter that proved the device: sync.delete_extraneous applies.
    const b = peer(empty);
    const c = await b.challenge();
    b.hello(['own-2'], { 'own-2': proof('own-2', c.realm, ROGUE_SECRET, c.nonce) });
    await b.welcomed();
    const [ownReport] = await Promise.all(server.sync!.catchUps.splice(0));
    const ownPeriod = ownReport!.periods.find((r) => r.from === T0 + P);
    expect(ownPeriod).to.include({ status: 'repaired', deleted: 1 });
    expect(await server.store.readBatches({ device_id: 'own-2', from: T0 + P, to: T0 + 2 * P })).to.deep.equal([]);
  });
});

describe('sync trust: security.require_auth=true', function () {
  this.timeout(30_000);
  let now = T0;
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startTestServer(
      {
        'sync.syncfreq': String(PERIOD_MIN),
        'sync.grace_seconds': '60',
        'sync.request_timeout': '5',
        'security.require_auth': 'true',
      },
      { now: () => now },
    );
    await server.store.putCredential(credentialFor('meter-1', server.config.security.realm, SECRET, Date.now()));
    dir = mkdtempSync(join(tmpdir(), 'ec-sync-trust-'));
  });
  after(async () => {
    await server?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a device without credentials cannot be synced at all: nothing recorded for it', async () => {
    now = T0 + P + 61;
    for (const proofs of [undefined, { 'ghost-2': randomBytes(32).toString('hex') }]) {
      const p = new RawPeer(server.syncPort!);
      await p.challenge();
      p.hello(['ghost-2'], proofs);
      expect(await p.refused()).to.include({ code: 'EC_SYNC_AUTH_FAILED' });
    }
    expect(await snapshot(server.store, ['ghost-2'])).to.equal(JSON.stringify([[], [], [], []]));
  });

  it('ec-client with the secret syncs and repairs; with a wrong secret it is refused', async () => {
    const journal = new Journal(join(dir, 'journal'));
    await journal.open();
    try {
      const batches = [0, 1, 2, 3, 4].map((i) => makeBatch('meter-1', T0 + 30 * i));
      await journal.upsertBatches(batches);
      await server.store.upsertBatches([batches[0]!, batches[2]!]);
      now = T0 + P + 61;
      const options = { host: '127.0.0.1', port: server.syncPort!, devices: ['meter-1'], retentionS: 900 };
      const wrong = new SyncClient(journal, { ...options, secrets: new Map([['meter-1', 'wrong']]) }, log);
      let refusal: Error | undefined;
      await wrong.connect().catch((e: Error) => (refusal = e));
      expect(refusal?.message).to.match(/EC_SYNC_AUTH_FAILED/);
      expect(server.sync!.catchUps).to.deep.equal([]);

      const sync = new SyncClient(journal, { ...options, secrets: new Map([['meter-1', SECRET]]) }, log);
      await sync.connect();
      const [report] = await Promise.all(server.sync!.catchUps.splice(0));
      sync.close();
      expect(report!.periods.map((r) => [r.from, r.status, r.repaired])).to.deep.equal([[T0, 'repaired', 3]]);
      const onServer = await server.store.readBatches({ device_id: 'meter-1', from: T0, to: T0 + P });
      expect(onServer.map((b) => batchKeyString(b))).to.deep.equal(batches.map((b) => batchKeyString(b)));
    } finally {
      await journal.close();
    }
  });
});

describe('sync trust: while a hello is checked', function () {
  this.timeout(10_000);
  /** A service whose credential lookups are the test's to answer. */
  async function serviceWith(get: SyncAuth['credentials']['get']): Promise<[SyncService, number, () => Promise<void>]> {
    const store = new SqliteStore({ dir: ':memory:', synchronous: 'NORMAL' });
    await store.open();
    const service = new SyncService(
      store,
      {
        host: '127.0.0.1',
        port: 0,
        periodS: P,
        graceS: 60,
        auth: { realm: 'ec-server', required: false, credentials: { get } },
        deleteExtraneous: true,
        requestTimeoutMs: 1000,
        concurrency: 1,
        schedule: false,
        now: () => T0 + P + 61,
      },
      log,
    );
    const port = await service.listen();
    return [service, port, async () => (await service.close(), await store.close())];
  }

  it('a frame before the welcome: EC_SYNC_UNEXPECTED; credentials that cannot be read: EC_SYNC_BUSY', async () => {
    let answer: (v: undefined) => void = () => undefined;
    const [service, port, close] = await serviceWith(() => new Promise((r) => (answer = r)));
    try {
      const early = new RawPeer(port);
      await early.challenge();
      early.hello(['slow-1']);
      await until(() => service.openConnections === 1, 'the connection');
      early.socket.write(JSON.stringify({ id: 1, type: 'digest', intervals: [] }) + '\n');
      expect(await early.refused()).to.include({ code: 'EC_SYNC_UNEXPECTED' });
      answer(undefined); // the lookup ends after the connection: no welcome, no catch-up
      await new Promise((r) => setImmediate(r));
      expect(service.catchUps).to.deep.equal([]);
    } finally {
      await close();
    }
    const [busy, busyPort, closeBusy] = await serviceWith(() => Promise.reject(new Error('store down')));
    try {
      const p = new RawPeer(busyPort);
      await p.challenge();
      p.hello(['any-1']);
      expect(await p.refused()).to.include({ code: 'EC_SYNC_BUSY' });
      expect(busy.catchUps).to.deep.equal([]);
    } finally {
      await closeBusy();
    }
  });
});
