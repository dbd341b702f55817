import { rowOf } from '../../src/store/batch-rows.js';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { batchAggregate } from '../../src/domain/sample-stats.js';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load-config.js';
import { createStore } from '../../src/store/open-store.js';
import { isLegacyConsumptionTable } from '../../src/store/sqlite-schema.js';
import { SQLITE_FILE, SqliteStore } from '../../src/store/sqlite-store.js';
import { makeBatch } from '../helpers/batches.js';
import { sqliteStore } from '../helpers/sqlite-writer.js';
import { runBin } from '../helpers/server-process.js';
import { storeContract, SYNC_PERIOD_S } from '../contract/store-contract.js';

let dir = '';
let n = 0;
let devices = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ec-sqlite-contract-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

for (const writer of ['inline', 'thread'] as const) {
  storeContract(`sqlite (writer ${writer})`, {
    create: ({ same }) => {
      if (!same) n++;
      return sqliteStore({ dir: join(dir, `s${n}`), synchronous: 'FULL', writer, syncPeriodS: SYNC_PERIOD_S });
    },
    device: () => `dev-${++devices}`,
  });
}

describe('sqlite table layout', () => {
  const T0 = Date.UTC(2026, 0, 1) / 1000;
  const indexes = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ec_consumption' AND sql IS NOT NULL",
        )
        .all()
        .map((r) => (r as { name: string }).name);
    } finally {
      db.close();
    }
  };

  it('a new file: ec_consumption is a rowid table whose key is a unique index', async () => {
    const store = sqliteStore({ dir: join(dir, 'layout-new'), synchronous: 'FULL', writer: 'thread' });
    await store.open();
    await store.upsertBatches([makeBatch('lay-1', T0)]);
    await store.close();
    const db = new Database(store.file, { readonly: true });
    expect(isLegacyConsumptionTable(db)).to.equal(false);
    expect(db.prepare('SELECT rowid FROM ec_consumption').all()).to.have.length(1);
    db.close();
    expect(indexes(store.file)).to.deep.equal(['ec_consumption_key']);
  });

  /** A store file as ec-server made it before 2026-12-02: ec_consumption WITHOUT ROWID, holding `batches`. */
  const legacyFile = (name: string, batches: ReturnType<typeof makeBatch>[]) => {
    const sub = join(dir, name);
    mkdirSync(sub, { recursive: true });
    const file = join(sub, SQLITE_FILE);
    const legacy = new Database(file);
    legacy.pragma('journal_mode = WAL');
    legacy.exec(`CREATE TABLE ec_consumption (device_id TEXT NOT NULL, ec_date TEXT NOT NULL, ec_time TEXT NOT NULL,
      start_us TEXT NOT NULL, end_us TEXT NOT NULL, ec_consumption_values TEXT NOT NULL, values_count INTEGER NOT NULL,
      values_checksum TEXT NOT NULL, batch_seq INTEGER, insert_time INTEGER NOT NULL,
      PRIMARY KEY (device_id, ec_date, ec_time, start_us, end_us)) WITHOUT ROWID`);
    const insert = legacy.prepare('INSERT INTO ec_consumption VALUES (?,?,?,?,?,?,?,?,?,?)');
    for (const b of batches) insert.run(...rowOf(b));
    legacy.close();
    return { sub, file };
  };
  const allRows = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare('SELECT * FROM ec_consumption ORDER BY device_id, ec_date, ec_time, start_us, end_us').all();
    } finally {
      db.close();
    }
  };

  it('a file with the older WITHOUT ROWID table keeps it, gains no index, reads/writes/replaces as ever', async () => {
    const old = makeBatch('lay-2', T0, 3, 0, 1);
    const { sub, file } = legacyFile('layout-legacy', [old]);

    const store = sqliteStore({ dir: sub, synchronous: 'FULL', writer: 'thread' });
    await store.open();
    expect(
      (await store.readBatches({ device_id: 'lay-2', from: T0, to: T0 + 1 })).map((b) => b.values_checksum),
    ).to.deep.equal([old.values_checksum]);
    const replacement = { ...makeBatch('lay-2', T0, 3, 0, 2), start_us: old.start_us, end_us: old.end_us };
    await store.upsertBatches([replacement, makeBatch('lay-2', T0 + 1)]);
    const rows = await store.readBatches({ device_id: 'lay-2', from: T0, to: T0 + 2 });
    await store.close();
    expect(rows.map((b) => b.values_checksum)).to.deep.equal([
      replacement.values_checksum,
      makeBatch('lay-2', T0 + 1).values_checksum,
    ]);
    const db = new Database(file, { readonly: true });
    expect(isLegacyConsumptionTable(db)).to.equal(true);
    db.close();
    expect(indexes(file)).to.deep.equal([]);
  });

  // Same rows, a rowid table, the unique key index; a second run has nothing to do.
  it('ec-server upgrade-store converts an older file in place', async () => {
    const batches = [makeBatch('up-1', T0, 3, 0, 1), makeBatch('up-1', T0 + 1, 3), makeBatch('up-2', T0)];
    const { sub, file } = legacyFile('layout-upgrade', batches);
    const before = allRows(file);
    expect(before).to.have.length(3);

    const r = await runBin('ec-server', ['upgrade-store', '--data-dir', sub]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/converted to the current layout \(3 rows/);
    const db = new Database(file, { readonly: true });
    expect(isLegacyConsumptionTable(db)).to.equal(false);
    db.close();
    expect(indexes(file)).to.deep.equal(['ec_consumption_key']);
    expect(r.stdout).to.match(/aggregate columns added/);
    // The same rows, with empty aggregate columns (queries add up their records).
    const noAggregates = { values_sum: null, values_min: null, values_max: null, values_max_us: null };
    expect(allRows(file)).to.deep.equal(before.map((row) => ({ ...(row as object), ...noAggregates })));

    const again = await runBin('ec-server', ['upgrade-store', '--data-dir', sub]);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.match(/already has the current layout; nothing to do/);

    // The converted file is a normal store: a batch with an existing key replaces its row.
    const store = sqliteStore({ dir: sub, synchronous: 'FULL', writer: 'thread' });
    await store.open();
    const replacement = {
      ...makeBatch('up-1', T0, 3, 0, 2),
      start_us: batches[0]!.start_us,
      end_us: batches[0]!.end_us,
    };
    await store.upsertBatches([replacement]);
    const rows = await store.readBatches({ device_id: 'up-1', from: T0, to: T0 + 2 });
    // The new row has its aggregates stored, the older one gets them from its records: the same answer.
    const aggregates = await store.readBatchAggregates({ device_id: 'up-1', from: T0, to: T0 + 2 });
    expect(aggregates).to.deep.equal([replacement, batches[1]!].map(batchAggregate));
    expect(allRows(file).map((row) => (row as { values_sum: number | null }).values_sum === null)).to.deep.equal([
      false,
      true,
      true,
    ]);
    await store.close();
    expect(rows.map((b) => b.values_checksum)).to.deep.equal([
      replacement.values_checksum,
      batches[1]!.values_checksum,
    ]);
  });

  it('ec-server upgrade-store never creates a store (no file: exit 1); an unreachable Cassandra: exit 1', async () => {
    const missing = join(dir, 'layout-none');
    const r = await runBin('ec-server', ['upgrade-store', '--data-dir', missing]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include(join(missing, SQLITE_FILE)).and.include('no embedded store');
    // Port 1: nothing listens there (the shared node on 9042 is not touched).
    const cassandra = await runBin('ec-server', [
      'upgrade-store',
      '--storage',
      'cassandra',
      '--set',
      'cassandra.port=1',
    ]);
    expect(cassandra.code).to.equal(1);
    expect(cassandra.stderr).to.include('cannot open Cassandra store');
  });
});

describe('sqlite record-list compression (storage.sqlite_compression)', () => {
  const T0 = Date.UTC(2026, 0, 2) / 1000;
  /** [device, SQLite type of ec_consumption_values, stored bytes] per row, read beside the store. */
  const stored = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db
        .prepare(
          'SELECT device_id, typeof(ec_consumption_values) AS t, length(CAST(ec_consumption_values AS BLOB)) ' +
            'AS n FROM ec_consumption ORDER BY device_id',
        )
        .all() as { device_id: string; t: string; n: number }[];
    } finally {
      db.close();
    }
  };

  for (const writer of ['inline', 'thread'] as const) {
    // Both read back exactly.
    it(`deflate (default, writer ${writer}): big record lists become smaller BLOBs, small ones stay TEXT`, async () => {
      const large = makeBatch('z-large', T0, 1000, 0, 9);
      const small = makeBatch('z-small', T0, 10);
      const store = sqliteStore({ dir: join(dir, `z-${writer}`), synchronous: 'FULL', writer });
      await store.open();
      await store.upsertBatches([large, small]);
      const back = [
        ...(await store.readBatches({ device_id: 'z-large', from: T0, to: T0 + 1 })),
        ...(await store.readBatches({ device_id: 'z-small', from: T0, to: T0 + 1 })),
      ];
      await store.close();
      expect(back.map((b) => b.ec_consumption_values)).to.deep.equal([
        large.ec_consumption_values,
        small.ec_consumption_values,
      ]);
      const rows = stored(store.file);
      expect(rows.map((r) => [r.device_id, r.t])).to.deep.equal([
        ['z-large', 'blob'],
        ['z-small', 'text'],
      ]);
      expect(rows[0]!.n).to.be.below(large.ec_consumption_values.length / 2);
      expect(rows[1]!.n).to.equal(small.ec_consumption_values.length);
    });
  }

  it("the config key reaches the server's store: sqlite_compression=none stores TEXT, the default a BLOB", async () => {
    for (const [setting, kind] of [
      [undefined, 'blob'],
      ['none', 'text'],
    ] as const) {
      const path = join(dir, `z-config-${setting ?? 'default'}`);
      const overrides: Record<string, string> = {
        'storage.path': path,
        ...(setting ? { 'storage.sqlite_compression': setting } : {}),
      };
      const store = createStore(loadConfig({ configPath: '/dev/null', overrides, env: {} }).config, 'ingest');
      await store.open();
      await store.upsertBatches([makeBatch('z-config', T0, 1000)]);
      await store.close();
      expect(
        stored(join(path, SQLITE_FILE)).map((r) => r.t),
        setting ?? 'default',
      ).to.deep.equal([kind]);
    }
  });

  it('none keeps TEXT; a file holding both forms reads back exactly under either setting', async () => {
    const sub = join(dir, 'z-mixed');
    const plain = makeBatch('z-plain', T0, 1000, 0, 1);
    const packed = makeBatch('z-packed', T0, 1000, 0, 2);
    const off = sqliteStore({ dir: sub, synchronous: 'FULL', writer: 'thread', compression: 'none' });
    await off.open();
    await off.upsertBatches([plain]);
    await off.close();
    const on = sqliteStore({ dir: sub, synchronous: 'FULL', writer: 'thread', compression: 'deflate' });
    await on.open();
    await on.upsertBatches([packed]);
    await on.close();
    expect(stored(on.file).map((r) => [r.device_id, r.t])).to.deep.equal([
      ['z-packed', 'blob'],
      ['z-plain', 'text'],
    ]);
    for (const compression of ['none', 'deflate'] as const) {
      const s = new SqliteStore({ dir: sub, synchronous: 'FULL', compression });
      await s.open();
      const got = [
        ...(await s.readBatches({ device_id: 'z-plain', from: T0, to: T0 + 1 })),
        ...(await s.readBatches({ device_id: 'z-packed', from: T0, to: T0 + 1 })),
      ];
      await s.close();
      expect(
        got.map((b) => b.ec_consumption_values),
        compression,
      ).to.deep.equal([plain.ec_consumption_values, packed.ec_consumption_values]);
    }
  });
});
