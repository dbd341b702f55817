import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../config/load-config.js';
import { hasAggregateColumns, openDatabase, upgradeConsumptionTable } from '../store/sqlite-schema.js';
import { CassandraStore } from '../store/cassandra-store.js';
import { SQLITE_FILE } from '../store/sqlite-store.js';

export type UpgradeResult = { ok: true; message: string } | { ok: false; exitCode: number; message: string };

/**
 * `ec-server upgrade-store`: converts the configured embedded store's ec_consumption from the
 * older WITHOUT ROWID layout to the current one. Never creates a store: a missing file is an
 * error (a wrong --data-dir must not look like success).
 */
export async function upgradeStore(config: Config): Promise<UpgradeResult> {
  if (config.storage.backend === 'cassandra') return upgradeCassandra(config);
  const file = join(resolve(config.storage.path), SQLITE_FILE);
  if (!existsSync(file))
    return { ok: false, exitCode: 1, message: `no embedded store at ${file} (check storage.path / --data-dir)` };
  let db: Database.Database | undefined;
  try {
    // The store's own pragmas (WAL, fsync policy, busy_timeout: a running server holds the write
    // lock only for its commits); the file exists, checked above.
    const old = new Database(file, { readonly: true, fileMustExist: true });
    const hadAggregates = hasAggregateColumns(old);
    old.close();
    // Opening adds what is missing: the aggregate columns (no rewrite) and the rollup table.
    db = openDatabase(file, config.storage.sqliteSynchronous);
    const started = Date.now();
    const copied = upgradeConsumptionTable(db);
    const columns = hadAggregates
      ? ''
      : '; aggregate columns added (older rows keep none: queries add up their records)';
    return copied === null
      ? { ok: true, message: `${file}: ec_consumption already has the current layout${columns || '; nothing to do'}` }
      : {
          ok: true,
          message:
            `${file}: ec_consumption converted to the current layout (${copied} rows in ` +
            `${Date.now() - started} ms)${columns}`,
        };
  } catch (e) {
    return {
      ok: false,
      exitCode: 1,
      message: `${file}: upgrade failed, the file is unchanged: ${(e as Error).message}`,
    };
  } finally {
    db?.close();
  }
}

/**
 * Cassandra: creates what is missing (CREATE ... IF NOT EXISTS, e.g. ec_rollup_minute) and adds the aggregate
 * columns to an ec_consumption from before them (ALTER TABLE ADD: no rewrite; older rows keep none).
 */
async function upgradeCassandra(config: Config): Promise<UpgradeResult> {
  const store = new CassandraStore({ ...config.cassandra, createSchema: true });
  try {
    await store.open();
    return {
      ok: true,
      message: `keyspace ${config.cassandra.keyspace}: every table and column of the current schema is there`,
    };
  } catch (e) {
    return { ok: false, exitCode: 1, message: `keyspace ${config.cassandra.keyspace}: ${(e as Error).message}` };
  } finally {
    await store.close();
  }
}
