import type { ConsumptionStore } from '../store/consumption-store.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { InlineIngestSink, type IngestSink } from './ingest-sink.js';
import { WorkerIngestSink } from './worker-sink.js';
import type { TransactionBounds } from './writer-backlog.js';

export interface IngestSinkOptions {
  /** storage.sqlite_writer: 'thread' parses and writes on the SQLite writer thread; 'inline' on the event loop. */
  writer: 'thread' | 'inline';
  /** storage.commit_max_batches / commit_max_bytes: what the writer thread merges into one transaction. */
  bounds: TransactionBounds;
  /** ingest.max_future_seconds. */
  maxFutureS?: number;
  /**
   * storage.aggregates (default true): each batch's statistics computed where its body is parsed (inline;
   * the writer thread follows the SQLite store's own setting).
   */
  aggregates?: boolean;
}

/**
 * The ingest sink for an open store: the writer thread for a SQLite file when configured (the
 * store's writes are then routed to it, and closing the store closes it), else inline. The thread
 * starts now, so that a failure to open shows at start-up, not at the first batch.
 */
export async function openIngestSink(store: ConsumptionStore, options: IngestSinkOptions): Promise<IngestSink> {
  const settings = options.writer === 'thread' && store instanceof SqliteStore ? store.writeSettings : undefined;
  if (!settings || !(store instanceof SqliteStore)) {
    return new InlineIngestSink(store, { maxFutureS: options.maxFutureS, aggregates: options.aggregates });
  }
  const sink = new WorkerIngestSink({ ...settings, bounds: options.bounds, maxFutureS: options.maxFutureS });
  try {
    await sink.upsertBatches([]);
  } catch (e) {
    await sink.close();
    throw e;
  }
  store.routeWritesTo(sink);
  return sink;
}
