import type Database from 'better-sqlite3';

/** Most problems PRAGMA quick_check lists (and the error message quotes) before it stops. */
const MAX_PROBLEMS = 5;

/**
 * Runs PRAGMA quick_check (structure, pages, record formats; not index contents: that is
 * integrity_check, slower) and throws an Error naming `file` and the first problems when the file
 * is damaged. Starting on a damaged file would acknowledge batches that a later read may lose.
 */
export function assertNotDamaged(db: Database.Database, file: string): void {
  let problems: string[];
  try {
    problems = (db.pragma(`quick_check(${MAX_PROBLEMS})`) as { quick_check: string }[]).map((r) => r.quick_check);
  } catch (e) {
    // A badly damaged file fails the check itself ("database disk image is malformed").
    problems = [(e as Error).message];
  }
  if (problems.length === 1 && problems[0] === 'ok') return;
  throw new Error(
    `${file} is damaged (PRAGMA quick_check: ${problems.map((p) => p.slice(0, 200)).join('; ')}); ` +
      'refusing to start on it: restore it from a backup, or move it away to start with an empty store ' +
      '(storage.sqlite_check_on_start=false skips this check)',
  );
}
