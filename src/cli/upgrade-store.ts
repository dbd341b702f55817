import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type Database from 'better-sqlite3';
import type { Config } from '../config/load-config.js';
import { openDatabase, upgradeConsumptionTable } from '../store/sqlite-schema.js';
import { SQLITE_FILE } from '../store/sqlite-store.js';

export type UpgradeResult = { ok: true; message: string } | { ok: false; exitCode: number; message: string };

/**
 * `ec-server upgrade-store`: converts the configured embedded store's ec_consumption from the
 * older WITHOUT ROWID layout to the current one. Never creates a store: a missing file is an
 * error (a wrong --data-dir must not look like success).
 */
export function upgradeStore(config: Config): UpgradeResult {
  if (config.storage.backend !== 'sqlite') {
    return {
      ok: false,
      exitCode: 2,
      message: `upgrade-store converts the embedded SQLite store; storage.backend is ${config.storage.backend}`,
    };
  }
  const file = join(resolve(config.storage.path), SQLITE_FILE);
  if (!existsSync(file))
    return { ok: false, exitCode: 1, message: `no embedded store at ${file} (check storage.path / --data-dir)` };
  let db: Database.Database | undefined;
  try {
    // The store's own pragmas (WAL, fsync policy, busy_timeout: a running server holds the write
    // lock only for its commits); the file exists, checked above.
    db = openDatabase(file, config.storage.sqliteSynchronous);
    const started = Date.now();
    const copied = upgradeConsumptionTable(db);
    return copied === null
      ? { ok: true, message: `${file}: ec_consumption already has the current layout; nothing to do` }
      : {
          ok: true,
          message:
            `${file}: ec_consumption converted to the current layout (${copied} rows in ` +
            `${Date.now() - started} ms)`,
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
