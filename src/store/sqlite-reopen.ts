import type Database from 'better-sqlite3';

/**
 * Re-opening recorded sync periods, and counting replaced batches, in SQL triggers on ec_consumption:
 * they run inside the transaction of every write (the writer thread's, the inline store's, a tool's),
 * so the write path pays no extra round trip, and no connection needs a function registered first.
 *
 * - A write that is not identical to the stored row (a new batch, or another value under an existing
 *   key) turns the `verified`/`repaired` rows of its minute and of its sync period into `pending`: the
 *   next round checks the period again. A retransmission or replay of the stored row re-opens nothing.
 * - A write that replaces a stored batch with other values is logged in ec_replacement (the server
 *   counts and logs those rows: replacement-watch.ts).
 */
export const REPLACEMENT_TABLE = `CREATE TABLE IF NOT EXISTS ec_replacement (
  id               INTEGER PRIMARY KEY,
  device_id        TEXT    NOT NULL,
  ec_date          TEXT    NOT NULL,
  ec_time          TEXT    NOT NULL,
  start_us         TEXT    NOT NULL,
  end_us           TEXT    NOT NULL,
  old_count        INTEGER NOT NULL,
  old_checksum     TEXT    NOT NULL,
  new_count        INTEGER NOT NULL,
  new_checksum     TEXT    NOT NULL,
  replaced_ms      INTEGER NOT NULL
)`;

const SAME_KEY =
  'd.device_id = NEW.device_id AND d.ec_date = NEW.ec_date AND d.ec_time = NEW.ec_time AND ' +
  'd.start_us = NEW.start_us AND d.end_us = NEW.end_us';
const SAME_VALUES = 'd.values_checksum = NEW.values_checksum AND d.values_count = NEW.values_count';

/** Seconds of the day of NEW.ec_time (hhmmss) as an SQL expression. */
const SECOND_OF_DAY =
  'CAST(substr(NEW.ec_time, 1, 2) AS INTEGER) * 3600 + CAST(substr(NEW.ec_time, 3, 2) AS INTEGER) * 60 + ' +
  'CAST(substr(NEW.ec_time, 5, 2) AS INTEGER)';

/**
 * SQL for the (ec_date, ec_time) of the start of NEW's sync period. Periods are aligned to multiples of
 * their length in epoch seconds; when the length divides a day, that is arithmetic on the time of day.
 */
function periodStart(periodS: number): { date: string; time: string } {
  if (86_400 % periodS === 0) {
    const s = `((${SECOND_OF_DAY}) / ${periodS} * ${periodS})`;
    return { date: 'NEW.ec_date', time: `printf('%02d%02d%02d', ${s} / 3600, ${s} / 60 % 60, ${s} % 60)` };
  }
  const epoch =
    "CAST(strftime('%s', substr(NEW.ec_date, 1, 4) || '-' || substr(NEW.ec_date, 5, 2) || '-' || " +
    'substr(NEW.ec_date, 7, 2)) AS INTEGER) + ' +
    SECOND_OF_DAY;
  const start = `((${epoch}) / ${periodS} * ${periodS})`;
  return {
    date: `strftime('%Y%m%d', ${start}, 'unixepoch')`,
    time: `strftime('%H%M%S', ${start}, 'unixepoch')`,
  };
}

/**
 * (Re)creates the triggers for sync periods of `periodS` seconds (sync.syncfreq may change between
 * starts). Run on the main connection at open, before the writer thread starts.
 */
export function installReopenTriggers(db: Database.Database, periodS: number): void {
  if (!Number.isSafeInteger(periodS) || periodS < 60) throw new RangeError(`sync period ${periodS} s`);
  const period = periodStart(periodS);
  const minute = "substr(NEW.ec_time, 1, 4) || '00'";
  // One trigger without a WHEN clause: its statements look the stored row up only where they must (the
  // UPDATEs only for a check row that is verified or repaired, found by its primary key), so a new batch
  // costs one lookup of ec_consumption's key (its page is the one the insert touches) and two of ec_checksum.
  const unchanged = `EXISTS (SELECT 1 FROM ec_consumption d WHERE ${SAME_KEY} AND ${SAME_VALUES})`;
  const reopen = (date: string, time: string, interval: number | string) =>
    `UPDATE ec_checksum SET status = 'pending' WHERE device_id = NEW.device_id AND ec_date = ${date} AND ` +
    `ec_time = ${time} AND interval_seconds = ${interval} AND status IN ('verified', 'repaired') AND NOT ${unchanged};`;
  db.exec(`
    ${REPLACEMENT_TABLE};
    DROP TRIGGER IF EXISTS ec_reopen_on_write;
    CREATE TRIGGER ec_reopen_on_write BEFORE INSERT ON ec_consumption
    BEGIN
      ${reopen('NEW.ec_date', minute, 60)}
      ${reopen(period.date, period.time, periodS)}
      INSERT INTO ec_replacement (device_id, ec_date, ec_time, start_us, end_us, old_count, old_checksum,
        new_count, new_checksum, replaced_ms)
      SELECT NEW.device_id, NEW.ec_date, NEW.ec_time, NEW.start_us, NEW.end_us, d.values_count, d.values_checksum,
        NEW.values_count, NEW.values_checksum, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
        FROM ec_consumption d WHERE ${SAME_KEY} AND NOT (${SAME_VALUES});
    END;
  `);
}
