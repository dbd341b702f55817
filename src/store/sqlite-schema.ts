import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigError } from '../errors.js';
import type { Batch } from '../domain/batch.js';
import { ROW_COLUMNS, rowOf } from './batch-rows.js';
import { encodeValues, type ValuesCompression } from './stored-values.js';
import { valueStats } from '../domain/sample-stats.js';

/** ec_consumption's columns in the current layout (the upgrade builds a second table from them). */
const CONSUMPTION_COLUMNS = `(
  device_id             TEXT    NOT NULL,
  ec_date               TEXT    NOT NULL,
  ec_time               TEXT    NOT NULL,
  start_us              TEXT    NOT NULL,
  end_us                TEXT    NOT NULL,
  ec_consumption_values TEXT    NOT NULL,
  values_count          INTEGER NOT NULL,
  values_checksum       TEXT    NOT NULL,
  batch_seq             INTEGER,
  insert_time           INTEGER NOT NULL,
  values_sum            REAL,
  values_min            REAL,
  values_max            REAL,
  values_max_us         INTEGER
)`;

/**
 * Per-batch aggregates of the records (domain/sample-stats.ts), written with the row when storage.aggregates is
 * on; NULL in rows written before they existed or with it off (queries then add up the records themselves).
 */
export const AGGREGATE_COLUMNS = ['values_sum', 'values_min', 'values_max', 'values_max_us'] as const;

/** Adds the aggregate columns to an ec_consumption from before them (ALTER TABLE ADD COLUMN: no rewrite). */
export function addAggregateColumns(db: Database.Database): string[] {
  const have = new Set(
    (db.prepare('PRAGMA table_info(ec_consumption)').all() as { name: string }[]).map((c) => c.name),
  );
  const added = AGGREGATE_COLUMNS.filter((c) => !have.has(c));
  for (const c of added)
    db.exec(`ALTER TABLE ec_consumption ADD COLUMN ${c} ${c === 'values_max_us' ? 'INTEGER' : 'REAL'}`);
  return added;
}

/** Whether ec_consumption has the aggregate columns (a file from before them, opened read-only, may not). */
export function hasAggregateColumns(db: Database.Database): boolean {
  const have = new Set(
    (db.prepare('PRAGMA table_info(ec_consumption)').all() as { name: string }[]).map((c) => c.name),
  );
  return AGGREGATE_COLUMNS.every((c) => have.has(c));
}

/**
 * Tables mirror the original Cassandra ones; the key is (device, date, time, start_us, end_us).
 *
 * ec_consumption is a rowid table with the key as a UNIQUE index, not a WITHOUT ROWID table
 * clustered on the key: its rows are 0.3-17 kB (SQLite advises WITHOUT ROWID only for rows under
 * ~1/20 of a page), and inserting them in key order across many devices dirtied a leaf page per row
 * and slowed down as the file grew (measured: docs/storage.md).
 * INSERT OR REPLACE keeps the same meaning (a batch with an existing key replaces that row).
 * Files created with the older WITHOUT ROWID table keep it, without the index (its primary key is
 * the same key): every query works on both layouts. `ec-server upgrade-store` converts such a file
 * (upgradeConsumptionTable below).
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS ec_consumption ${CONSUMPTION_COLUMNS};
CREATE TABLE IF NOT EXISTS ec_checksum (
  device_id        TEXT    NOT NULL,
  ec_date          TEXT    NOT NULL,
  ec_time          TEXT    NOT NULL,
  interval_seconds INTEGER NOT NULL,
  values_count     INTEGER NOT NULL,
  values_checksum  TEXT    NOT NULL,
  check_time       INTEGER NOT NULL,
  check_times      INTEGER NOT NULL,
  status           TEXT    NOT NULL,
  PRIMARY KEY (device_id, ec_date, ec_time, interval_seconds)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ec_device_credential (
  device_id   TEXT    NOT NULL PRIMARY KEY,
  realm       TEXT    NOT NULL,
  ha1_md5     TEXT    NOT NULL,
  ha1_sha256  TEXT    NOT NULL,
  created_ms  INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ec_meta (
  name   TEXT NOT NULL PRIMARY KEY,
  value  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ec_rollup_minute (
  device_id   TEXT    NOT NULL,
  ec_date     TEXT    NOT NULL,
  ec_minute   TEXT    NOT NULL,
  samples     INTEGER NOT NULL,
  values_sum  REAL    NOT NULL,
  values_min  REAL,
  values_max  REAL,
  max_at      REAL,
  seconds     INTEGER NOT NULL,
  PRIMARY KEY (device_id, ec_date, ec_minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ec_device (
  device_id      TEXT    NOT NULL PRIMARY KEY,
  first_seen_ms  INTEGER NOT NULL,
  last_seen_ms   INTEGER NOT NULL,
  last_seq       INTEGER,
  day            TEXT    NOT NULL,
  batches_today  INTEGER NOT NULL,
  samples_today  INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Upserts rows of ec_rollup_minute (minute-rollups.ts), by name. */
export const ROLLUP_UPSERT =
  'INSERT OR REPLACE INTO ec_rollup_minute (device_id, ec_date, ec_minute, samples, values_sum, values_min, ' +
  'values_max, max_at, seconds) VALUES (@device_id, @ec_date, @ec_minute, @samples, @values_sum, @values_min, ' +
  '@values_max, @max_at, @seconds)';

/** Upserts rows of ec_device (the device registry), by name. */
export const DEVICE_UPSERT =
  'INSERT OR REPLACE INTO ec_device (device_id, first_seen_ms, last_seen_ms, last_seq, day, batches_today, ' +
  'samples_today) VALUES (@device_id, @first_seen_ms, @last_seen_ms, @last_seq, @day, @batches_today, ' +
  '@samples_today)';

/** The key of ec_consumption (its uniqueness makes INSERT OR REPLACE an upsert). */
export const CONSUMPTION_KEY_INDEX =
  'CREATE UNIQUE INDEX IF NOT EXISTS ec_consumption_key ON ec_consumption (device_id, ec_date, ec_time, ' +
  'start_us, end_us)';

/** Whether ec_consumption is the older WITHOUT ROWID table, clustered on its key. */
export function isLegacyConsumptionTable(db: Database.Database): boolean {
  const row = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ec_consumption'").get() as
    { sql?: string } | undefined;
  return /\)\s*WITHOUT\s+ROWID\s*$/i.test(row?.sql ?? '');
}

/**
 * Opens an existing database file for reading only: never creates a file, changes nothing (no
 * pragmas, no schema). Throws ConfigError "no store at FILE" when there is none, so that a wrong
 * storage.path or --data-dir is reported (exit 2) instead of reading as an empty store.
 */
export function openDatabaseReadOnly(file: string): Database.Database {
  if (!existsSync(file))
    throw new ConfigError(undefined, undefined, `no store at ${file} (check storage.path / --data-dir)`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Opens (creating if needed) the database file in WAL mode with the given fsync policy. */
export function openDatabase(file: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  addAggregateColumns(db);
  if (!isLegacyConsumptionTable(db)) db.exec(CONSUMPTION_KEY_INDEX);
  return db;
}

/**
 * One transaction of idempotent upserts: it commits (and with FULL, fsyncs) as a whole or not at
 * all. Rows are bound by position (which spares better-sqlite3 a lookup per named parameter), and
 * their record lists encoded on the way (stored-values.ts).
 */
export function preparePositionalUpsert(
  db: Database.Database,
  compression: ValuesCompression,
  aggregates = true,
): { batches: (batches: readonly Batch[]) => void } {
  const columns = [...ROW_COLUMNS, ...AGGREGATE_COLUMNS];
  const upsert = db.prepare(
    `INSERT OR REPLACE INTO ec_consumption (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
  );
  // The aggregates as ingest computed them with the parse (values_stats); only a batch that comes without
  // them (a test's, an older caller's) has them computed here.
  const run = (b: Batch): void => {
    const r = rowOf(b);
    const a = aggregates ? (b.values_stats ?? valueStats(r[5])) : undefined;
    const has = a !== undefined && a.count > 0;
    void upsert.run(
      ...[r[0], r[1], r[2], r[3], r[4], encodeValues(r[5], compression), r[6], r[7], r[8], r[9]],
      has ? a.sum : null,
      has ? a.min : null,
      has ? a.max : null,
      has ? a.max_us : null,
    );
  };
  return {
    batches: db.transaction((batches: readonly Batch[]) => {
      for (const b of batches) run(b);
    }),
  };
}

/**
 * Rewrites an older WITHOUT ROWID ec_consumption as the current rowid table with its unique key
 * index (see SCHEMA for why), in one IMMEDIATE transaction: all of it or nothing, and no other
 * writer in between. Returns the rows copied, or null when the table already has the current
 * layout. The old table's pages go to SQLite's free list and are reused by later inserts.
 */
export function upgradeConsumptionTable(db: Database.Database): number | null {
  if (!isLegacyConsumptionTable(db)) return null;
  addAggregateColumns(db);
  const columns = [...ROW_COLUMNS, ...AGGREGATE_COLUMNS].join(', ');
  return db
    .transaction(() => {
      db.exec(`CREATE TABLE ec_consumption_upgrade ${CONSUMPTION_COLUMNS}`);
      const copied = db
        .prepare(`INSERT INTO ec_consumption_upgrade (${columns}) SELECT ${columns} FROM ec_consumption`)
        .run().changes;
      db.exec('DROP TABLE ec_consumption');
      db.exec('ALTER TABLE ec_consumption_upgrade RENAME TO ec_consumption');
      db.exec(CONSUMPTION_KEY_INDEX);
      return copied;
    })
    .immediate();
}
