import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import {
  DEVICE_UPSERT,
  ROLLUP_UPSERT,
  AGGREGATE_COLUMNS,
  hasAggregateColumns,
  openDatabase,
  openDatabaseReadOnly,
  preparePositionalUpsert,
} from './sqlite-schema.js';
import { SqliteRetention, type RetentionLog } from './sqlite-retention.js';
import { assertNotDamaged } from './sqlite-quick-check.js';
import type { SqliteWriteRoute, SqliteWriteSettings } from './sqlite-batch-writer.js';
import { batchEpochSecond, type Batch, type BatchKey, type BatchSummary } from '../domain/batch.js';
import { newCredentialsVersion, type DeviceCredential } from '../domain/device-credential.js';
import type { DeviceRecord } from '../domain/device-record.js';
import { summarizeIntervals } from '../domain/interval-digest.js';
import { batchAggregate, type BatchAggregate, type Bucket } from '../domain/sample-stats.js';
import {
  bucketOfRow,
  FINAL_STATUSES,
  minuteBounds,
  minuteRollups,
  rollupRow,
  type RollupRow,
} from './minute-rollups.js';
import { ConfigError, StoreUnavailableError } from '../errors.js';
import type {
  BatchReplacement,
  ConsumptionStore,
  DeviceRange,
  IntervalCheck,
  IntervalSummary,
} from './consumption-store.js';
import { installReopenTriggers } from './sqlite-reopen.js';
import { InProcessLeases, type DeviceLeases } from './device-leases.js';
import { daySlices } from './day-slices.js';
import { decodeValues, type ValuesCompression } from './stored-values.js';

export const SQLITE_FILE = 'ec-server.sqlite';

/** Seconds of batch aggregates finaliseRollups reads at a time (600 rows at one batch per second). */
const FINALISE_CHUNK_S = 600;

/** A row as SQLite returns it: the record list as TEXT or as a deflated BLOB (stored-values.ts). */
type StoredBatch = Omit<Batch, 'ec_consumption_values'> & { ec_consumption_values: string | Uint8Array };

const SUMMARY_COLUMNS =
  'device_id, ec_date, ec_time, start_us, end_us, values_count, values_checksum, batch_seq, insert_time';
const RANGE_WHERE = 'device_id = ? AND ec_date = ? AND ec_time >= ? AND ec_time < ?';
const KEY_ORDER = 'ORDER BY ec_time, start_us, end_us';

export interface SqliteStoreOptions {
  /** Data directory; the database file is created inside it. ':memory:' for throwaway tests. */
  dir: string;
  synchronous: 'FULL' | 'NORMAL';
  /** storage.sqlite_compression (default 'deflate'): how new rows keep large record lists (stored-values.ts). */
  compression?: ValuesCompression;
  /** storage.aggregates (default true): each batch's count/sum/min/max stored with its row (queries read those). */
  aggregates?: boolean;
  /** For tools that only read (ec-test): the file must exist and is opened read-only; writes fail. */
  readOnly?: boolean;
  /** storage.retention_days: > 0 deletes older days in the background while open (sqlite-retention.ts). */
  retentionDays?: number;
  /** Where retention passes are logged. */
  log?: RetentionLog;
  /** storage.sqlite_check_on_start: PRAGMA quick_check on open, refusing a damaged file. */
  checkOnOpen?: boolean;
  /**
   * The sync period (sync.syncfreq, seconds): writes re-open recorded periods and replaced batches are
   * logged (sqlite-reopen.ts). Unset (a meter's journal, tools): neither.
   */
  syncPeriodS?: number;
}

/** Logs nothing: retention of a store opened without a logger. */
const SILENT: RetentionLog = { info: () => undefined, debug: () => undefined, error: () => undefined };

/**
 * The embedded default store: one SQLite file in WAL mode. better-sqlite3 is synchronous, so each
 * call finishes its work before returning; a resolved upsertBatches has committed (and with
 * synchronous=FULL, fsynced) its whole transaction. The server's writes go through a writer thread
 * that owns the write connection (routeWritesTo; ingest/worker-sink.ts), so fsync never blocks the
 * event loop; this connection then serves the reads.
 */
export class SqliteStore implements ConsumptionStore {
  readonly backend = 'sqlite';
  /** One process writes a database file: its sync leases live in memory. */
  readonly leases: DeviceLeases = new InProcessLeases();
  protected db: Database.Database | undefined;
  private route: SqliteWriteRoute | undefined;
  private stmts!: ReturnType<SqliteStore['prepare']>;
  /** The retention passes, when storage.retention_days > 0. */
  retention: SqliteRetention | undefined;

  constructor(private readonly options: SqliteStoreOptions) {}

  get file(): string {
    return this.options.dir === ':memory:' ? ':memory:' : join(this.options.dir, SQLITE_FILE);
  }

  async open(): Promise<void> {
    if (this.options.readOnly) {
      // A missing file stays a ConfigError (the caller's config: exit 2); anything else is the store's.
      try {
        this.db = openDatabaseReadOnly(this.file);
        this.stmts = this.prepare(this.db);
      } catch (e) {
        if (e instanceof ConfigError) throw e;
        throw new StoreUnavailableError(`cannot open SQLite store ${this.file}: ${(e as Error).message}`, e);
      }
      return;
    }
    try {
      if (this.options.dir !== ':memory:') mkdirSync(this.options.dir, { recursive: true });
      const db = openDatabase(this.file, this.options.synchronous);
      if (this.options.checkOnOpen && this.options.dir !== ':memory:') {
        try {
          assertNotDamaged(db, this.file);
        } catch (e) {
          db.close();
          throw e;
        }
      }
      if (this.options.syncPeriodS !== undefined) installReopenTriggers(db, this.options.syncPeriodS);
      this.db = db;
      this.stmts = this.prepare(db);
      const days = this.options.retentionDays ?? 0;
      if (days > 0) {
        this.retention = new SqliteRetention(db, days, this.options.log ?? SILENT);
        this.retention.start();
      }
    } catch (e) {
      throw new StoreUnavailableError(`cannot open SQLite store ${this.file}: ${(e as Error).message}`, e);
    }
  }

  private prepare(db: Database.Database) {
    return {
      upsertMany: preparePositionalUpsert(db, this.compression, this.options.aggregates ?? true).batches,
      readBatches: db.prepare(
        `SELECT ${SUMMARY_COLUMNS}, ec_consumption_values FROM ec_consumption WHERE ${RANGE_WHERE} ${KEY_ORDER}`,
      ),
      readSummaries: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM ec_consumption WHERE ${RANGE_WHERE} ${KEY_ORDER}`),
      // The record list only where a row lacks its aggregates; undefined on a read-only file from before them.
      readAggregates: hasAggregateColumns(db)
        ? db.prepare(
            `SELECT ${SUMMARY_COLUMNS}, ${AGGREGATE_COLUMNS.join(', ')}, CASE WHEN values_sum IS NULL THEN ` +
              'ec_consumption_values END AS ec_consumption_values FROM ec_consumption ' +
              `WHERE ${RANGE_WHERE} ${KEY_ORDER}`,
          )
        : undefined,
      deleteBatch: db.prepare(
        'DELETE FROM ec_consumption WHERE device_id = ? AND ec_date = ? AND ec_time = ? AND start_us = ? AND ' +
          'end_us = ?',
      ),
      writeCheck: db.prepare(
        `INSERT OR REPLACE INTO ec_checksum (device_id, ec_date, ec_time, interval_seconds, values_count,
          values_checksum, check_time, check_times, status)
         VALUES (@device_id, @ec_date, @ec_time, @interval_seconds, @values_count, @values_checksum,
          @check_time, @check_times, @status)`,
      ),
      readChecks: db.prepare(`SELECT * FROM ec_checksum WHERE ${RANGE_WHERE} ORDER BY ec_time, interval_seconds`),
    };
  }

  private get compression(): ValuesCompression {
    return this.options.compression ?? 'deflate';
  }

  /**
   * How another thread opens this file to write it; undefined when it cannot (in memory, read-only,
   * not open).
   */
  get writeSettings(): SqliteWriteSettings | undefined {
    if (!this.db || this.options.readOnly || this.options.dir === ':memory:') return undefined;
    return {
      file: this.file,
      synchronous: this.options.synchronous,
      compression: this.compression,
      aggregates: this.options.aggregates ?? true,
    };
  }

  /**
   * From now on batch and registry writes go to `route` (another thread's write connection), in
   * order with what it writes itself. close() closes the route first.
   */
  routeWritesTo(route: SqliteWriteRoute): void {
    this.route = route;
    this.pipelined = true;
  }

  private get handle(): Database.Database {
    if (!this.db) throw new StoreUnavailableError('SQLite store is not open');
    return this.db;
  }

  async upsertBatches(batches: readonly Batch[]): Promise<void> {
    void this.handle; // throws when the store is not open
    if (this.route) return this.route.upsertBatches(batches);
    try {
      this.stmts.upsertMany(batches);
    } catch (e) {
      throw new StoreUnavailableError(`SQLite write failed: ${(e as Error).message}`, e);
    }
  }

  /** With a write route: writes queue in the writer thread's inbox and apply in order. */
  pipelined = false;

  async readBatches(range: DeviceRange): Promise<Batch[]> {
    const rows = this.sliced(
      range,
      (s) => this.stmts.readBatches.all(range.device_id, s.ec_date, s.fromTime, s.toTime) as StoredBatch[],
    );
    for (const r of rows) r.ec_consumption_values = decodeValues(r.ec_consumption_values);
    return rows as Batch[];
  }

  async readBatchAggregates(range: DeviceRange): Promise<BatchAggregate[]> {
    // Row by row (iterate): the records of a row without aggregates (written before them, or with
    // storage.aggregates off) are read and added up here, one batch at a time.
    const out: BatchAggregate[] = [];
    const stmt = this.stmts.readAggregates ?? this.stmts.readBatches;
    this.sliced(range, (s) => {
      for (const r of stmt.iterate(range.device_id, s.ec_date, s.fromTime, s.toTime)) {
        const row = r as StoredBatch & { values_sum?: number | null; values_min: number; values_max: number } & {
          values_max_us: number;
        };
        if (row.values_sum === null || row.values_sum === undefined) {
          out.push(batchAggregate({ ...row, ec_consumption_values: decodeValues(row.ec_consumption_values) }));
          continue;
        }
        const { device_id, ec_date, ec_time, start_us, end_us } = row;
        const [sum, min, max, max_us] = [row.values_sum, row.values_min, row.values_max, row.values_max_us];
        out.push({ device_id, ec_date, ec_time, start_us, end_us, count: row.values_count, sum, min, max, max_us });
      }
      return [];
    });
    return out;
  }

  async readSummaries(range: DeviceRange): Promise<BatchSummary[]> {
    return this.sliced(
      range,
      (s) => this.stmts.readSummaries.all(range.device_id, s.ec_date, s.fromTime, s.toTime) as BatchSummary[],
    );
  }

  async intervalSummaries(range: DeviceRange, intervalSeconds: number): Promise<IntervalSummary[]> {
    return summarizeIntervals(await this.readSummaries(range), intervalSeconds);
  }

  async deleteBatch(k: BatchKey): Promise<boolean> {
    void this.handle; // throws when the store is not open
    return this.stmts.deleteBatch.run(k.device_id, k.ec_date, k.ec_time, k.start_us, k.end_us).changes > 0;
  }

  async readReplacements(after: number, limit: number): Promise<BatchReplacement[]> {
    const db = this.handle;
    // A store without the table (a journal, an older file opened read-only) has none.
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ec_replacement'").get();
    if (!exists) return [];
    return db
      .prepare('SELECT * FROM ec_replacement WHERE id > ? ORDER BY id LIMIT ?')
      .all(after, limit) as BatchReplacement[];
  }

  /** A verified or repaired period's minute rollups are written first: a crash in between leaves them unused. */
  async writeIntervalCheck(check: IntervalCheck): Promise<void> {
    void this.handle; // throws when the store is not open
    if (FINAL_STATUSES.has(check.status)) {
      const from = batchEpochSecond(check);
      await this.finaliseRollups({ device_id: check.device_id, from, to: from + check.interval_seconds });
    }
    this.stmts.writeCheck.run(check);
  }

  async finaliseRollups(range: DeviceRange): Promise<number> {
    const db = this.handle;
    // Ten minutes of batches per synchronous read, the event loop free in between (an hour of a 1 kHz
    // meter is 3,600 rows).
    const aggregates: BatchAggregate[] = [];
    for (let s = range.from; s < range.to; s += FINALISE_CHUNK_S) {
      if (s > range.from) await new Promise((r) => setImmediate(r));
      const to = Math.min(range.to, s + FINALISE_CHUNK_S);
      aggregates.push(...(await this.readBatchAggregates({ device_id: range.device_id, from: s, to })));
    }
    const rows = minuteRollups(aggregates, range.from, range.to).map((b) => ({
      device_id: range.device_id,
      ...rollupRow(b),
    }));
    const stmt = db.prepare(ROLLUP_UPSERT);
    db.transaction(() => {
      for (const r of rows) stmt.run(r);
    })();
    return rows.length;
  }

  async readMinuteRollups(range: DeviceRange): Promise<Bucket[]> {
    const db = this.handle;
    // A file from before rollups, opened read-only (ec-export), has no such table: nothing is final there.
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ec_rollup_minute'").get();
    if (!exists) return [];
    const stmt = db.prepare(
      'SELECT * FROM ec_rollup_minute WHERE device_id = ? AND ec_date = ? AND ec_minute >= ? AND ec_minute < ? ' +
        'ORDER BY ec_minute',
    );
    return this.sliced(range, (s) => {
      const { lo, hi } = minuteBounds(s);
      return (stmt.all(range.device_id, s.ec_date, lo, hi) as RollupRow[]).map(bucketOfRow);
    });
  }

  /**
   * Prepared on first use: a file from before credentials existed, opened read-only (ec-test),
   * has no ec_device_credential table, and must still open for everything else.
   */
  private get credentialStmts() {
    const db = this.handle;
    return (this.credentialStatements ??= {
      put: db.prepare(
        `INSERT OR REPLACE INTO ec_device_credential (device_id, realm, ha1_md5, ha1_sha256, created_ms, updated_ms)
         VALUES (@device_id, @realm, @ha1_md5, @ha1_sha256, @created_ms, @updated_ms)`,
      ),
      read: db.prepare('SELECT * FROM ec_device_credential WHERE device_id = ?'),
      list: db.prepare('SELECT * FROM ec_device_credential ORDER BY device_id'),
      remove: db.prepare('DELETE FROM ec_device_credential WHERE device_id = ?'),
      setVersion: db.prepare("INSERT OR REPLACE INTO ec_meta (name, value) VALUES ('credentials_version', ?)"),
      version: db.prepare("SELECT value FROM ec_meta WHERE name = 'credentials_version'").pluck(),
    });
  }
  private credentialStatements:
    Record<'put' | 'read' | 'list' | 'remove' | 'setVersion' | 'version', Database.Statement> | undefined;

  async putCredential(credential: DeviceCredential): Promise<void> {
    const s = this.credentialStmts;
    this.handle.transaction(() => {
      s.put.run(credential);
      s.setVersion.run(newCredentialsVersion());
    })();
  }

  async readCredential(deviceId: string): Promise<DeviceCredential | undefined> {
    return this.credentialStmts.read.get(deviceId) as DeviceCredential | undefined;
  }

  async listCredentials(): Promise<DeviceCredential[]> {
    return this.credentialStmts.list.all() as DeviceCredential[];
  }

  async removeCredential(deviceId: string): Promise<boolean> {
    const s = this.credentialStmts;
    return this.handle.transaction(() => {
      const removed = s.remove.run(deviceId).changes > 0;
      if (removed) s.setVersion.run(newCredentialsVersion());
      return removed;
    })();
  }

  async credentialsVersion(): Promise<string> {
    return (this.credentialStmts.version.get() as string | undefined) ?? '';
  }

  /**
   * With the writer thread, registry rows are written there, in order with the batches: a write here would
   * wait (busy_timeout, on the event loop) for the thread's transaction.
   */
  async upsertDevices(rows: readonly DeviceRecord[]): Promise<void> {
    const db = this.handle;
    if (rows.length === 0) return;
    if (this.route) return this.route.upsertDevices(rows);
    try {
      const stmt = db.prepare(DEVICE_UPSERT);
      db.transaction(() => {
        for (const r of rows) stmt.run(r);
      })();
    } catch (e) {
      throw new StoreUnavailableError(`SQLite write failed: ${(e as Error).message}`, e);
    }
  }

  async listDevices(page: { limit: number; after?: string }): Promise<DeviceRecord[]> {
    const db = this.handle;
    // A file from before the registry, opened read-only (ec-server devices), has no ec_device table.
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ec_device'").get();
    if (!exists) return [];
    const rows =
      page.after === undefined
        ? db.prepare('SELECT * FROM ec_device ORDER BY device_id LIMIT ?').all(page.limit)
        : db
            .prepare('SELECT * FROM ec_device WHERE device_id > ? ORDER BY device_id LIMIT ?')
            .all(page.after, page.limit);
    return rows as DeviceRecord[];
  }

  async readIntervalChecks(range: DeviceRange): Promise<IntervalCheck[]> {
    return this.sliced(
      range,
      (s) => this.stmts.readChecks.all(range.device_id, s.ec_date, s.fromTime, s.toTime) as IntervalCheck[],
    );
  }

  async close(): Promise<void> {
    this.retention?.stop();
    this.retention = undefined;
    await this.route?.close();
    this.route = undefined;
    this.pipelined = false;
    this.db?.close();
    this.db = undefined;
    this.credentialStatements = undefined;
  }

  private sliced<T>(range: DeviceRange, read: (s: ReturnType<typeof daySlices>[number]) => T[]): T[] {
    void this.handle; // throws when the store is not open
    return daySlices(range).flatMap(read);
  }
}
