import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Batch, BatchKey, BatchSummary } from '../domain/batch.js';
import { summarizeIntervals } from '../domain/interval-digest.js';
import { StoreUnavailableError } from '../errors.js';
import type { ConsumptionStore, DeviceRange, IntervalCheck, IntervalSummary } from './consumption-store.js';
import { daySlices } from './day-slices.js';

export const SQLITE_FILE = 'ec-server.sqlite';

/** Tables mirror the original Cassandra ones; the key is (device, date, time, start_us, end_us). */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ec_consumption (
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
  PRIMARY KEY (device_id, ec_date, ec_time, start_us, end_us)
) WITHOUT ROWID;
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
`;

const SUMMARY_COLUMNS = 'device_id, ec_date, ec_time, start_us, end_us, values_count, values_checksum, batch_seq, insert_time';
const RANGE_WHERE = 'device_id = ? AND ec_date = ? AND ec_time >= ? AND ec_time < ?';
const KEY_ORDER = 'ORDER BY ec_time, start_us, end_us';

export interface SqliteStoreOptions {
  /** Data directory; the database file is created inside it. ':memory:' for throwaway tests. */
  dir: string;
  synchronous: 'FULL' | 'NORMAL';
}

/**
 * The embedded default store: one SQLite file in WAL mode. better-sqlite3 is synchronous, so each
 * call finishes its work before returning; a resolved upsertBatches has committed (and with
 * synchronous=FULL, fsynced) its whole transaction.
 */
export class SqliteStore implements ConsumptionStore {
  readonly backend = 'sqlite';
  protected db: Database.Database | undefined;
  private stmts!: ReturnType<SqliteStore['prepare']>;

  constructor(private readonly options: SqliteStoreOptions) {}

  get file(): string {
    return this.options.dir === ':memory:' ? ':memory:' : join(this.options.dir, SQLITE_FILE);
  }

  async open(): Promise<void> {
    try {
      if (this.options.dir !== ':memory:') mkdirSync(this.options.dir, { recursive: true });
      const db = new Database(this.file);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.options.synchronous}`);
      db.pragma('busy_timeout = 5000');
      db.exec(SCHEMA);
      this.db = db;
      this.stmts = this.prepare(db);
    } catch (e) {
      throw new StoreUnavailableError(`cannot open SQLite store ${this.file}: ${(e as Error).message}`, e);
    }
  }

  private prepare(db: Database.Database) {
    const upsert = db.prepare(
      `INSERT OR REPLACE INTO ec_consumption (device_id, ec_date, ec_time, start_us, end_us, ec_consumption_values,
        values_count, values_checksum, batch_seq, insert_time)
       VALUES (@device_id, @ec_date, @ec_time, @start_us, @end_us, @ec_consumption_values,
        @values_count, @values_checksum, @batch_seq, @insert_time)`,
    );
    return {
      upsertMany: db.transaction((batches: readonly Batch[]) => {
        for (const b of batches) upsert.run(b);
      }),
      readBatches: db.prepare(`SELECT * FROM ec_consumption WHERE ${RANGE_WHERE} ${KEY_ORDER}`),
      readSummaries: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM ec_consumption WHERE ${RANGE_WHERE} ${KEY_ORDER}`),
      deleteBatch: db.prepare(
        'DELETE FROM ec_consumption WHERE device_id = ? AND ec_date = ? AND ec_time = ? AND start_us = ? AND end_us = ?',
      ),
      writeCheck: db.prepare(
        `INSERT OR REPLACE INTO ec_checksum (device_id, ec_date, ec_time, interval_seconds, values_count, values_checksum,
          check_time, check_times, status)
         VALUES (@device_id, @ec_date, @ec_time, @interval_seconds, @values_count, @values_checksum,
          @check_time, @check_times, @status)`,
      ),
      readChecks: db.prepare(`SELECT * FROM ec_checksum WHERE ${RANGE_WHERE} ORDER BY ec_time, interval_seconds`),
    };
  }

  private get handle(): Database.Database {
    if (!this.db) throw new StoreUnavailableError('SQLite store is not open');
    return this.db;
  }

  async upsertBatches(batches: readonly Batch[]): Promise<void> {
    this.handle;
    try {
      this.stmts.upsertMany(batches);
    } catch (e) {
      throw new StoreUnavailableError(`SQLite write failed: ${(e as Error).message}`, e);
    }
  }

  async readBatches(range: DeviceRange): Promise<Batch[]> {
    return this.sliced(range, (s) => this.stmts.readBatches.all(range.device_id, s.ec_date, s.fromTime, s.toTime) as Batch[]);
  }

  async readSummaries(range: DeviceRange): Promise<BatchSummary[]> {
    return this.sliced(range, (s) => this.stmts.readSummaries.all(range.device_id, s.ec_date, s.fromTime, s.toTime) as BatchSummary[]);
  }

  async intervalSummaries(range: DeviceRange, intervalSeconds: number): Promise<IntervalSummary[]> {
    return summarizeIntervals(await this.readSummaries(range), intervalSeconds);
  }

  async deleteBatch(k: BatchKey): Promise<boolean> {
    this.handle;
    return this.stmts.deleteBatch.run(k.device_id, k.ec_date, k.ec_time, k.start_us, k.end_us).changes > 0;
  }

  async writeIntervalCheck(check: IntervalCheck): Promise<void> {
    this.handle;
    this.stmts.writeCheck.run(check);
  }

  async readIntervalChecks(range: DeviceRange): Promise<IntervalCheck[]> {
    return this.sliced(range, (s) => this.stmts.readChecks.all(range.device_id, s.ec_date, s.fromTime, s.toTime) as IntervalCheck[]);
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }

  private sliced<T>(range: DeviceRange, read: (s: ReturnType<typeof daySlices>[number]) => T[]): T[] {
    this.handle;
    return daySlices(range).flatMap(read);
  }
}
