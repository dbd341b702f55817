import { resolve } from 'node:path';
import type { Config } from '../config/load-config.js';
import { CassandraStore } from './cassandra-store.js';
import type { ConsumptionStore } from './consumption-store.js';
import { SqliteStore } from './sqlite-store.js';

/** The configured backend, not yet opened. */
export function createStore(config: Config): ConsumptionStore {
  switch (config.storage.backend) {
    case 'sqlite':
      return new SqliteStore({ dir: resolve(config.storage.path), synchronous: config.storage.sqliteSynchronous });
    case 'cassandra':
      return new CassandraStore(config.cassandra);
  }
}
