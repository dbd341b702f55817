import { resolve } from 'node:path';
import type { Config } from '../config/load-config.js';
import { createLogger } from '../log.js';
import { CassandraStore } from './cassandra-store.js';
import type { ConsumptionStore } from './consumption-store.js';
import { SqliteStore } from './sqlite-store.js';

/**
 * The configured backend, not yet opened. `ingest` (the server) runs retention and checks the file
 * at start; its SQLite writes go where the ingest sink routes them (ingest/open-sink.ts). `read`
 * (ec-test and other tools that only read) never creates anything: the SQLite file is opened
 * read-only and must exist, and a Cassandra keyspace or table is not created. `write`
 * (`ec-server device`): writes on the calling thread, creating the store when missing.
 */
export function createStore(config: Config, use: 'ingest' | 'read' | 'write' = 'read'): ConsumptionStore {
  switch (config.storage.backend) {
    case 'sqlite':
      return new SqliteStore({
        dir: resolve(config.storage.path),
        synchronous: config.storage.sqliteSynchronous,
        readOnly: use === 'read',
        compression: config.storage.sqliteCompression,
        aggregates: config.storage.aggregates,
        retentionDays: use === 'ingest' ? config.storage.retentionDays : 0,
        log: use === 'ingest' ? createLogger(config.log.level) : undefined,
        // The server checks at start; tools that read (ec-test) do not pay for it on every run.
        checkOnOpen: use === 'ingest' && config.storage.sqliteCheckOnStart,
        // The server (re)creates the re-open trigger for its sync period; the trigger stays in the file, so a
        // tool opening it to write (`ec-server device`) leaves it as the server made it.
        syncPeriodS: use === 'ingest' ? config.sync.freqMinutes * 60 : undefined,
      });
    case 'cassandra':
      return use === 'read'
        ? new CassandraStore({ ...config.cassandra, createSchema: false }, undefined, {
            aggregates: config.storage.aggregates,
          })
        : new CassandraStore(config.cassandra, use === 'ingest' ? config.sync.freqMinutes * 60 : undefined, {
            aggregates: config.storage.aggregates,
          });
  }
}
