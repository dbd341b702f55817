import type { Batch } from '../domain/batch.js';
import type { DeviceRecord } from '../domain/device-record.js';
import type { ReceivedBatch, ReceivedReport } from '../domain/received-batch.js';
import type { SqliteWriteRoute } from '../store/sqlite-batch-writer.js';
import type { IngestSink } from './ingest-sink.js';
import { packReceived } from './received-packing.js';
import { SinkThread } from './sink-thread.js';
import type { SinkRequest, SqliteSinkOptions } from './sqlite-sink-work.js';

/**
 * Parses, checks and writes on the SQLite writer thread (sqlite-sink-work.ts), which owns the write
 * connection: the store's own writes (sync repairs, the device registry) are routed here too
 * (SqliteStore.routeWritesTo), in order with the ingested groups.
 */
export class WorkerIngestSink implements IngestSink, SqliteWriteRoute {
  readonly pipelined = true;
  /** One thread, one write connection: groups are written in turn. */
  readonly concurrent = false;
  private readonly thread: SinkThread<SqliteSinkOptions>;

  constructor(options: SqliteSinkOptions) {
    this.thread = new SinkThread(new URL('./sqlite-sink-work.js', import.meta.url), options);
  }

  /** Transactions the thread has finished: shows how many requests it merged. */
  get transactions(): number {
    return this.thread.transactions;
  }

  write(received: readonly ReceivedBatch[]): Promise<ReceivedReport> {
    return this.thread.post<SinkRequest>((id) => {
      // Packed into a buffer of its own that is moved to the thread, not copied.
      const packed = packReceived(received).buffer as ArrayBuffer;
      return [{ type: 'ingest', id, packed }, [packed]];
    });
  }

  upsertBatches(batches: readonly Batch[]): Promise<void> {
    return this.thread.post<SinkRequest>((id) => ({ type: 'write', id, batches })).then(() => undefined);
  }

  /** Registry rows, in a transaction of their own, in order with the batch writes. */
  upsertDevices(rows: readonly DeviceRecord[]): Promise<void> {
    return this.thread.post<SinkRequest>((id) => ({ type: 'devices', id, rows })).then(() => undefined);
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
