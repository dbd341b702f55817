import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Batch } from '../../src/domain/batch.js';
import { GroupCommitter } from '../../src/ingest/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { makeBatch } from '../helpers/batches.js';

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
    store = new CountingStore({ dir, synchronous: 'FULL', writer: 'inline' });
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('puts everything that arrives during a commit into the next one, up to commit_max_batches', async () => {
    const c = new GroupCommitter(store, { maxBatches: 50, maxQueued: 10_000, maxQueuedBytes: 1 << 30 });
    await Promise.all(Array.from({ length: 120 }, (_, i) => c.submit(makeBatch('d1', 1_700_000_000 + i))));
    expect(store.groups).to.deep.equal([50, 50, 20]);
    expect(c.stats).to.include({ commits: 3, batches: 120 });
  });

  it('keeps a transaction under commit_max_bytes (but always commits at least one batch)', async () => {
    const c = new GroupCommitter(store, { maxBatches: 500, maxBytes: 100_000, maxQueued: 10_000, maxQueuedBytes: 1 << 30 });
    // 1000 records ~ 12 kB of values each: at most 8 fit in 100 kB.
    const big = Array.from({ length: 40 }, (_, i) => makeBatch('big', 1_700_000_000 + i, 1000));
    const huge = makeBatch('huge', 1_700_001_000, 20_000); // > 100 kB alone
    await Promise.all([...big, huge].map((b) => c.submit(b)));
    expect(store.groups.reduce((a, b) => a + b, 0)).to.equal(41);
    expect(Math.max(...store.groups)).to.be.at.most(8);
    expect(store.groups.at(-1)).to.equal(1);
    expect((await store.readBatches({ device_id: 'huge', from: 1_700_001_000, to: 1_700_001_001 })).length).to.equal(1);
  });
});
