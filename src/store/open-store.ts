import { resolve } from 'node:path';
import type { Config } from '../config/load-config.js';
import { CassandraStore } from './cassandra-store.js';
import type { ConsumptionStore } from './consumption-store.js';
import { SqliteStore } from './sqlite-store.js';

/**
 * The configured backend, not yet opened. `ingest` (the server) commits SQLite writes in a writer
 * thread; tools that mostly read keep everything on their own thread.
 */
export function createStore(config: Config, use: 'ingest' | 'tool' = 'tool'): ConsumptionStore {
  switch (config.storage.backend) {
    case 'sqlite':
      return new SqliteStore({
        dir: resolve(config.storage.path),
        synchronous: config.storage.sqliteSynchronous,
        writer: use === 'ingest' ? config.storage.sqliteWriter : 'inline',
        commitBounds: { maxBatches: config.storage.commitMaxBatches, maxBytes: config.storage.commitMaxBytes },
        compression: config.storage.sqliteCompression,
        maxFutureS: config.ingest.maxFutureS,
        // The server checks at start; tools that read (ec-test) do not pay for it on every run.
        checkOnOpen: use === 'ingest' && config.storage.sqliteCheckOnStart,
      });
    case 'cassandra':
      return new CassandraStore(config.cassandra);
  }
}
