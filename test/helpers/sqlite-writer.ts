import { openIngestSink } from '../../src/ingest/open-sink.js';
import type { IngestSink } from '../../src/ingest/ingest-sink.js';
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite-store.js';

/**
 * A SqliteStore as the server runs it: with writer 'thread', open() also opens the ingest sink's
 * writer thread and routes the store's writes to it (ingest/open-sink.ts), as startServer does;
 * 'inline' writes on the calling thread. `sink`: the ingest sink opened with it.
 */
class ServerSqliteStore extends SqliteStore {
  sink: IngestSink | undefined;

  constructor(
    options: SqliteStoreOptions,
    private readonly writer: 'thread' | 'inline',
  ) {
    super(options);
  }

  override async open(): Promise<void> {
    await super.open();
    this.sink = await openIngestSink(this, { writer: this.writer, bounds: { maxBatches: 2000, maxBytes: 2 << 20 } });
  }
}

export function sqliteStore(options: SqliteStoreOptions & { writer: 'thread' | 'inline' }): SqliteStore {
  const { writer, ...rest } = options;
  return new ServerSqliteStore(rest, writer);
}
