import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Batch } from '../../src/domain/batch.js';
import { GroupCommitter } from '../../src/ingest/group-commit.js';
import { InlineIngestSink } from '../../src/ingest/ingest-sink.js';
import { openIngestSink } from '../../src/ingest/open-sink.js';
import type { WorkerIngestSink } from '../../src/ingest/worker-sink.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { SipRequestError, StoreUnavailableError } from '../../src/errors.js';
import { makeBatch, receivedOf } from '../helpers/batches.js';

/** A real SQLite store that also notes how many batches each transaction carried. */
class CountingStore extends SqliteStore {
  readonly groups: number[] = [];
  override async upsertBatches(batches: readonly Batch[]): Promise<void> {
    this.groups.push(batches.length);
    await super.upsertBatches(batches);
  }
}

describe('group commit (real SQLite file)', () => {
  let dir: string;
  let store: CountingStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-group-'));
    store = new CountingStore({ dir, synchronous: 'FULL' });
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('puts everything that arrives during a commit into the next one, up to commit_max_batches', async () => {
    const c = new GroupCommitter(new InlineIngestSink(store), {
      maxBatches: 50,
      maxQueued: 10_000,
      maxQueuedBytes: 1 << 30,
    });
    await Promise.all(Array.from({ length: 120 }, (_, i) => c.submit(receivedOf(makeBatch('d1', 1_700_000_000 + i)))));
    expect(store.groups).to.deep.equal([50, 50, 20]);
    expect(c.stats).to.include({ commits: 3, batches: 120 });
  });

  it('keeps a transaction under commit_max_bytes (but always commits at least one batch)', async () => {
    const c = new GroupCommitter(new InlineIngestSink(store), {
      maxBatches: 500,
      maxBytes: 100_000,
      maxQueued: 10_000,
      maxQueuedBytes: 1 << 30,
    });
    // 1000 records ~ 12 kB of values each: at most 8 fit in 100 kB.
    const big = Array.from({ length: 40 }, (_, i) => makeBatch('big', 1_700_000_000 + i, 1000));
    const huge = makeBatch('huge', 1_700_001_000, 20_000); // > 100 kB alone
    await Promise.all([...big, huge].map((b) => c.submit(receivedOf(b))));
    expect(store.groups.reduce((a, b) => a + b, 0)).to.equal(41);
    expect(Math.max(...store.groups)).to.be.at.most(8);
    expect(store.groups.at(-1)).to.equal(1);
    expect((await store.readBatches({ device_id: 'huge', from: 1_700_001_000, to: 1_700_001_001 })).length).to.equal(1);
  });

  // The same group through both ingest sinks, both places a body can be parsed: the writer thread and
  // the event loop (any store; here SQLite).
  for (const writer of ['thread', 'inline'] as const) {
    // Each bad batch is rejected with the error naming its problem.
    it(`${writer} writer: stores a group's good batches, rejects each bad one, reports sequence gaps`, async () => {
      const own = new SqliteStore({ dir: join(dir, writer), synchronous: 'FULL' });
      await own.open();
      const sink = await openIngestSink(own, { writer, bounds: { maxBatches: 2000, maxBytes: 1 << 30 } });
      expect(sink.constructor.name).to.equal(writer === 'thread' ? 'WorkerIngestSink' : 'InlineIngestSink');
      const gaps: unknown[] = [];
      const c = new GroupCommitter(sink, {
        maxBatches: 500,
        maxQueued: 10_000,
        maxQueuedBytes: 1 << 30,
        onSequenceGap: (g) => gaps.push(g),
      });
      const T = 1_700_000_000;
      const good = (i: number, seq: number) => receivedOf(makeBatch('mix', T + i), { seq: String(seq), count: '3' });
      const cases = [
        good(0, 1),
        { ...good(1, 2), body: 'mix|20231114221321|1,2;3' },
        good(2, 3),
        { ...good(3, 4), count: '7' },
        good(4, 9),
        { ...good(5, 10), body: '' },
        { ...good(6, 11), checksum: '0'.repeat(32) },
        { ...good(7, 12), seq: 'soon' },
        good(8, 13),
      ];
      try {
        const outcomes = await Promise.all(
          cases.map((r) =>
            c.submit(r).then(
              () => 'stored',
              (e: unknown) => e,
            ),
          ),
        );
        const summary = outcomes.map((o) => (o instanceof SipRequestError ? `${o.status} ${o.reason}` : o));
        expect(summary).to.deep.equal([
          'stored',
          '400 Bad record: record 2 "3" is not us,value',
          'stored',
          '400 X-EC-Count mismatch: header says 7, body has 3',
          'stored',
          '400 Empty body: MESSAGE carries no batch',
          `400 X-EC-Checksum mismatch: body MD5 is ${makeBatch('mix', T + 6).values_checksum}`,
          '400 Bad integrity header: X-EC-Seq "soon"',
          'stored',
        ]);
        // All in one group: one commit, four batches stored, five rejected.
        expect(c.stats).to.include({ commits: 1, batches: 4, rejected: 5 });
        const stored = await own.readBatches({ device_id: 'mix', from: T, to: T + 10 });
        const expected = [
          [0, 1],
          [2, 3],
          [4, 9],
          [8, 13],
        ].map(([i, seq]) => ({ ...makeBatch('mix', T + i!), batch_seq: seq! }));
        expect(stored).to.deep.equal(expected);
        // A rejected batch's seq is never observed: each stored one after a rejection is a gap (sync repairs it).
        expect(gaps).to.deep.equal([
          ['mix', 3, 2],
          ['mix', 9, 4],
          ['mix', 13, 10],
        ]);
      } finally {
        await own.close();
      }
    });
  }

  /**
   * A store whose writes go to the writer thread, kept busy by a large write (~1 s), so that what the
   * test hands the thread next waits in its inbox. `transactions()`: the thread's transactions since
   * the busy write was posted (the busy one included).
   */
  async function whileWriterBusy(
    name: string,
    body: (own: SqliteStore, sink: WorkerIngestSink, T: number, transactions: () => number) => Promise<void>,
  ): Promise<void> {
    const own = new SqliteStore({ dir: join(dir, name), synchronous: 'FULL' });
    await own.open();
    const sink = (await openIngestSink(own, {
      writer: 'thread',
      bounds: { maxBatches: 2000, maxBytes: 1 << 30 },
    })) as WorkerIngestSink;
    try {
      const T = 1_700_000_000;
      const busy = own.upsertBatches(Array.from({ length: 3000 }, (_, i) => makeBatch(`busy-${i}`, T, 1000)));
      const before = sink.transactions;
      await body(own, sink, T, () => sink.transactions - before);
      await busy;
    } finally {
      await own.close();
    }
  }

  it('writer thread: groups handed over mid-commit apply in order, the waiting ones in one commit', async function () {
    this.timeout(30_000);
    await whileWriterBusy('pipelined', async (own, sink, T, transactions) => {
      expect(own.pipelined).to.equal(true);
      // Each group holds the same key with other values: in call order, the last one must win.
      const groups = Array.from({ length: 20 }, (_, i) => [
        receivedOf(makeBatch('same', T, 3, 0, i + 1)),
        receivedOf(makeBatch(`g${i}`, T)),
      ]);
      const reports = await Promise.all(groups.map((g) => sink.write(g)));
      expect(reports.every((r) => r.rejected.length === 0)).to.equal(true);
      // The busy write alone (a write of stored batches is never merged), then the 20 groups in one.
      expect(transactions()).to.equal(2);
      const [same] = await own.readBatches({ device_id: 'same', from: T, to: T + 1 });
      expect(same!.ec_consumption_values).to.equal(makeBatch('same', T, 3, 0, 20).ec_consumption_values);
      for (let i = 0; i < 20; i++)
        expect(await own.readBatches({ device_id: `g${i}`, from: T, to: T + 1 })).to.have.length(1);
    });
  });

  // Groups handed over during a commit merge into one transaction; each bad batch still gets its own 400.
  it('writer thread through the group commit: merged groups, a 400 for each bad batch', async function () {
    this.timeout(30_000);
    await whileWriterBusy('merged', async (own, sink, T, transactions) => {
      // What the device registry is told after each commit: per batch, its records when stored, 0 when refused.
      const told = new Map<string, number>();
      const c = new GroupCommitter(sink, {
        maxBatches: 2000,
        maxQueued: 10_000,
        maxQueuedBytes: 1 << 30,
        onStored: (batches, report) =>
          batches.forEach((b, i) => told.set(b.body.slice(0, b.body.indexOf('|')), report.samples![i]!)),
      });
      // Six groups, one per event-loop turn, each with a bad batch in another place.
      const pending: Promise<string>[] = [];
      let k = 0;
      for (let g = 0; g < 6; g++) {
        for (let j = 0; j < 3; j++) {
          const r = receivedOf(makeBatch(`m${g}-${j}`, T, 3 + k++));
          const bad = j === g % 3;
          pending.push(
            c.submit(bad ? { ...r, count: '9' } : r).then(
              () => 'stored',
              (e: unknown) => (e instanceof SipRequestError ? `${e.status}` : String(e)),
            ),
          );
        }
        await new Promise((r) => setImmediate(r));
      }
      const outcomes = await Promise.all(pending);
      expect(outcomes).to.deep.equal(
        Array.from({ length: 18 }, (_, k) => (k % 3 === Math.floor(k / 3) % 3 ? '400' : 'stored')),
      );
      expect(c.stats.maxGroupsInFlight, 'groups handed over without waiting for the commit').to.equal(6);
      // The busy write, then the six groups in one transaction.
      expect(transactions()).to.equal(2);
      // The merged transaction's report, split back per group: each batch's own records, 0 for the refused ones.
      expect([...told.entries()]).to.deep.equal(
        Array.from({ length: 18 }, (_, n) => [`m${Math.floor(n / 3)}-${n % 3}`, outcomes[n] === 'stored' ? 3 + n : 0]),
      );
      for (let k = 0; k < 18; k++) {
        const g = Math.floor(k / 3);
        const stored = await own.readBatches({ device_id: `m${g}-${k % 3}`, from: T, to: T + 1 });
        expect(stored, `m${g}-${k % 3}`).to.have.length(outcomes[k] === 'stored' ? 1 : 0);
      }
    });
  });

  it('a failed write answers 503 for good batches, still 400 for bad ones, and reports sequence gaps', async () => {
    const closed = new SqliteStore({ dir: join(dir, 'closed'), synchronous: 'FULL' });
    await closed.open();
    await closed.close(); // every write now fails: the store is not open
    const gaps: unknown[] = [];
    const c = new GroupCommitter(new InlineIngestSink(closed), {
      maxBatches: 500,
      maxQueued: 10_000,
      maxQueuedBytes: 1 << 30,
      onSequenceGap: (g) => gaps.push(g),
    });
    const T = 1_700_000_000;
    const outcomes = await Promise.all(
      [
        receivedOf(makeBatch('f', T), { seq: '1' }),
        receivedOf(makeBatch('f', T + 1), { seq: '2', count: '9' }),
        receivedOf(makeBatch('f', T + 2), { seq: '5' }),
      ].map((r) =>
        c.submit(r).then(
          () => 'stored',
          (e: unknown) =>
            e instanceof SipRequestError
              ? `${e.status} ${e.code}`
              : e instanceof StoreUnavailableError
                ? '503'
                : String(e),
        ),
      ),
    );
    expect(outcomes).to.deep.equal(['503', '400 EC_INTEGRITY_COUNT_MISMATCH', '503']);
    expect(gaps).to.deep.equal([['f', 5, 2]]);
    expect(c.stats).to.include({ failures: 1, rejected: 1, batches: 0 });
  });
});
