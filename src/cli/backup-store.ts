import { join, resolve } from 'node:path';
import type { Config } from '../config/load-config.js';
import { UsageError } from '../errors.js';
import { backupSqliteFile, type BackupProgress } from '../store/sqlite-backup.js';
import { SQLITE_FILE } from '../store/sqlite-store.js';

/**
 * `ec-server backup DEST`: an online copy of the configured embedded store (sqlite-backup.ts).
 * Progress goes to stderr when it is a terminal, as one line rewritten in place; a log or a pipe
 * gets only the result. Throws UsageError/ConfigError (exit 2) for a Cassandra config, no store,
 * or an existing DEST.
 */
export async function backupStore(config: Config, dest: string): Promise<string> {
  if (config.storage.backend !== 'sqlite') {
    throw new UsageError(
      `backup copies the embedded SQLite store; storage.backend is ${config.storage.backend} ` +
        '(use nodetool snapshot, docs/operations.md)',
    );
  }
  const source = join(resolve(config.storage.path), SQLITE_FILE);
  const terminal = process.stderr.isTTY === true;
  const r = await backupSqliteFile(source, dest, terminal ? showProgress : undefined);
  if (terminal) showProgress({ totalPages: r.pages, remainingPages: 0 }, '\n');
  return (
    `backup of ${source} written to ${r.dest}: ${r.batches} batches, ` +
    `${(r.bytes / 1e6).toFixed(1)} MB in ${r.ms} ms (quick_check ok)`
  );
}

function showProgress({ totalPages, remainingPages }: BackupProgress, end = ''): void {
  const done = totalPages - remainingPages;
  const percent = totalPages === 0 ? 100 : Math.floor((done * 100) / totalPages);
  process.stderr.write(`\rbackup: ${percent}% (${done} of ${totalPages} pages)${end}`);
}
