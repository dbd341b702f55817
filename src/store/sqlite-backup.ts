import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { UsageError } from '../errors.js';
import { openDatabaseReadOnly } from './sqlite-schema.js';

/** Pages copied per backup step (4 MiB with SQLite's 4-KiB pages): the progress granularity. */
const PAGES_PER_STEP = 1024;

export interface BackupProgress {
  totalPages: number;
  remainingPages: number;
}

export interface BackupResult {
  dest: string;
  pages: number;
  bytes: number;
  /** Rows of ec_consumption in the copy. */
  batches: number;
  ms: number;
}

/**
 * An online, consistent copy of an embedded store file, taken with SQLite's backup API while the
 * server keeps writing. The copy is the store as it was when the backup began: the source is read
 * inside one read transaction held over every step. (Without it SQLite restarts a backup whenever
 * another connection commits between two steps, which under one batch a second never finishes.)
 * In WAL mode that read transaction does not block the server's commits; it only keeps the WAL
 * from being checkpointed past it until the copy is done.
 *
 * The copy is written as DEST.partial and renamed to DEST once complete and `PRAGMA quick_check`
 * passes, so an interrupted backup never leaves a file that looks like a backup. An existing DEST
 * is not overwritten.
 */
export async function backupSqliteFile(
  source: string,
  dest: string,
  onProgress: (p: BackupProgress) => void = () => undefined,
): Promise<BackupResult> {
  const target = resolve(dest);
  if (existsSync(target)) throw new UsageError(`${target} exists; a backup never overwrites a file`);
  if (!existsSync(dirname(target))) throw new UsageError(`no directory ${dirname(target)} for the backup`);
  const partial = `${target}.partial`;
  rmSync(partial, { force: true });
  const started = Date.now();
  const db = openDatabaseReadOnly(source);
  try {
    db.exec('BEGIN');
    // A read starts the transaction's snapshot (BEGIN alone takes no lock).
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    const { totalPages } = await db.backup(partial, {
      progress: (p) => {
        onProgress(p);
        return PAGES_PER_STEP;
      },
    });
    db.exec('COMMIT');
    const batches = checkCopy(partial);
    renameSync(partial, target);
    return { dest: target, pages: totalPages, bytes: statSync(target).size, batches, ms: Date.now() - started };
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  } finally {
    db.close();
  }
}

/** Verifies the copy's structure and counts its batches; throws when SQLite finds a problem. */
function checkCopy(file: string): number {
  // Read-write although it only reads: the copy is in WAL mode like its source, and only a
  // connection that may write removes the -wal and -shm files it opened when it closes.
  const copy = new Database(file, { fileMustExist: true });
  try {
    const problems = copy.pragma('quick_check', { simple: false }) as { quick_check: string }[];
    const verdict = problems.map((p) => p.quick_check).join('; ');
    if (verdict !== 'ok') throw new Error(`the copy fails SQLite's quick_check: ${verdict}`);
    return (copy.prepare('SELECT count(*) AS n FROM ec_consumption').get() as { n: number }).n;
  } finally {
    copy.close();
  }
}
