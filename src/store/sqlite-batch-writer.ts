import type { Batch } from '../domain/batch.js';
import type { DeviceRecord } from '../domain/device-record.js';
import { DEVICE_UPSERT, openDatabase, preparePositionalUpsert } from './sqlite-schema.js';
import type { ValuesCompression } from './stored-values.js';

/** How the SQLite write connection is opened: the store's own settings, handed to whoever writes. */
export interface SqliteWriteSettings {
  file: string;
  synchronous: 'FULL' | 'NORMAL';
  compression: ValuesCompression;
  /** storage.aggregates: write each batch's count/sum/min/max with its row (default true). */
  aggregates?: boolean;
}

/**
 * Synchronous writes on a connection of its own, each call one transaction: what the SQLite writer
 * thread runs (ingest/sqlite-sink-work.ts), so that the thread holds no SQL of its own.
 */
export class SqliteBatchWriter {
  private readonly db;
  private readonly upsert;
  private readonly upsertDevices;

  constructor(settings: SqliteWriteSettings) {
    this.db = openDatabase(settings.file, settings.synchronous);
    this.upsert = preparePositionalUpsert(this.db, settings.compression, settings.aggregates ?? true);
    const deviceUpsert = this.db.prepare(DEVICE_UPSERT);
    this.upsertDevices = this.db.transaction((rows: readonly DeviceRecord[]) => {
      for (const r of rows) deviceUpsert.run(r);
    });
  }

  batches(batches: readonly Batch[]): void {
    this.upsert.batches(batches);
  }

  devices(rows: readonly DeviceRecord[]): void {
    this.upsertDevices(rows);
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Where a SqliteStore sends its writes when another thread owns the write connection (the ingest
 * sink's writer thread): they then apply in order with the ingested batches, and none waits on
 * the event loop for that thread's transaction (busy_timeout). close() runs before the store's.
 */
export interface SqliteWriteRoute {
  upsertBatches(batches: readonly Batch[]): Promise<void>;
  upsertDevices(rows: readonly DeviceRecord[]): Promise<void>;
  close(): Promise<void>;
}
