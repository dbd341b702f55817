import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { isLegacyConsumptionTable } from '../../src/store/sqlite-schema.js';
import { SQLITE_FILE, SqliteStore } from '../../src/store/sqlite-store.js';
import { makeBatch } from '../helpers/batches.js';
import { storeContract } from '../contract/store-contract.js';

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
      return new SqliteStore({ dir: join(dir, `s${n}`), synchronous: 'FULL', writer });
    },
    device: () => `dev-${++devices}`,
  });
}

describe('sqlite table layout', () => {
  const T0 = Date.UTC(2026, 0, 1) / 1000;
  const indexes = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ec_consumption' AND sql IS NOT NULL").all().map((r) => (r as { name: string }).name);
    } finally {
      db.close();
    }
  };

  it('a new file: ec_consumption is a rowid table whose key is a unique index', async () => {
    const store = new SqliteStore({ dir: join(dir, 'layout-new'), synchronous: 'FULL', writer: 'thread' });
    await store.open();
    await store.upsertBatches([makeBatch('lay-1', T0)]);
    await store.close();
    const db = new Database(store.file, { readonly: true });
    expect(isLegacyConsumptionTable(db)).to.equal(false);
    expect(db.prepare('SELECT rowid FROM ec_consumption').all()).to.have.length(1);
    db.close();
    expect(indexes(store.file)).to.deep.equal(['ec_consumption_key']);
  });

  it('a file with the older WITHOUT ROWID table keeps it, gains no index, and reads, writes and replaces as before', async () => {
    const sub = join(dir, 'layout-legacy');
    mkdirSync(sub, { recursive: true });
    const file = join(sub, SQLITE_FILE);
    const legacy = new Database(file);
    legacy.exec(`CREATE TABLE ec_consumption (device_id TEXT NOT NULL, ec_date TEXT NOT NULL, ec_time TEXT NOT NULL,
      start_us TEXT NOT NULL, end_us TEXT NOT NULL, ec_consumption_values TEXT NOT NULL, values_count INTEGER NOT NULL,
      values_checksum TEXT NOT NULL, batch_seq INTEGER, insert_time INTEGER NOT NULL,
      PRIMARY KEY (device_id, ec_date, ec_time, start_us, end_us)) WITHOUT ROWID`);
    const old = makeBatch('lay-2', T0, 3, 0, 1);
    legacy.prepare('INSERT INTO ec_consumption VALUES (?,?,?,?,?,?,?,?,?,?)').run(old.device_id, old.ec_date, old.ec_time, old.start_us, old.end_us, old.ec_consumption_values, old.values_count, old.values_checksum, old.batch_seq, old.insert_time);
    legacy.close();

    const store = new SqliteStore({ dir: sub, synchronous: 'FULL', writer: 'thread' });
    await store.open();
    expect((await store.readBatches({ device_id: 'lay-2', from: T0, to: T0 + 1 })).map((b) => b.values_checksum)).to.deep.equal([old.values_checksum]);
    const replacement = { ...makeBatch('lay-2', T0, 3, 0, 2), start_us: old.start_us, end_us: old.end_us };
    await store.upsertBatches([replacement, makeBatch('lay-2', T0 + 1)]);
    const rows = await store.readBatches({ device_id: 'lay-2', from: T0, to: T0 + 2 });
    await store.close();
    expect(rows.map((b) => b.values_checksum)).to.deep.equal([replacement.values_checksum, makeBatch('lay-2', T0 + 1).values_checksum]);
    const db = new Database(file, { readonly: true });
    expect(isLegacyConsumptionTable(db)).to.equal(true);
    db.close();
    expect(indexes(file)).to.deep.equal([]);
  });
});
