import type Database from 'better-sqlite3';
import { epochSecondToParts } from '../domain/batch.js';

/**
 * Retention for the embedded store (storage.retention_days): deletes the batches and sync results
 * of old UTC days while the server keeps ingesting.
 *
 * Each step is one DELETE of at most STEP_ROWS rows of one device (an autocommit transaction), found
 * through the key index (device_id first), so a step holds SQLite's write lock for milliseconds and
 * never scans the table; the writer thread's commits wait for at most one step (busy_timeout).
 * Between steps the pass pauses STEP_PAUSE_MS, which bounds its share of the disk (at most
 * STEP_ROWS rows per pause: under 25,000 rows/s) and lets waiting commits through. The pages freed go
 * to SQLite's free list and new batches reuse them: the file stops growing once retention deletes
 * as much as arrives, but it does not shrink (VACUUM with the server stopped would shrink it).
 */
export const STEP_ROWS = 500;
export const STEP_PAUSE_MS = 20;

/** Passes run at open and then every hour (a day's rows become old once a day). */
const PASS_INTERVAL_MS = 3_600_000;

const TABLES = [
  { name: 'ec_consumption', key: 'device_id, ec_date, ec_time, start_us, end_us', counts: 'batches' },
  { name: 'ec_checksum', key: 'device_id, ec_date, ec_time, interval_seconds', counts: 'checks' },
] as const;

export interface RetentionPassResult {
  /** Rows dated before this day (YYYYMMDD, UTC) were deleted. */
  before: string;
  batches: number;
  checks: number;
  steps: number;
  ms: number;
  /** Stopped by close() before it was done. */
  stopped: boolean;
}

/** The first day kept, YYYYMMDD: today (UTC) minus `days` days. */
export function firstDayKept(nowMs: number, days: number): string {
  const todayStart = Math.floor(nowMs / 86_400_000) * 86_400;
  return epochSecondToParts(todayStart - days * 86_400).ec_date;
}

export interface RetentionLog {
  info(fields: object, msg: string): void;
  debug(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/** Runs retention passes on the store's own connection (the event loop's, not the writer thread's). */
export class SqliteRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionPassResult> | undefined;
  private stopped = false;

  constructor(
    private readonly db: Database.Database,
    private readonly days: number,
    private readonly log: RetentionLog,
    private readonly now: () => number = Date.now,
  ) {}

  /** A pass now, then one every hour. */
  start(): void {
    const run = () => {
      if (this.running || this.stopped) return;
      this.running = this.pass().finally(() => (this.running = undefined));
      this.running.then(
        (r) => this.log[r.batches + r.checks > 0 ? 'info' : 'debug'](r, 'retention: old days deleted'),
        (err: unknown) => this.log.error({ err }, 'retention pass failed; next try in an hour'),
      );
    };
    run();
    this.timer = setInterval(run, PASS_INTERVAL_MS).unref();
  }

  /** Stops at the next pause (steps are synchronous: none is ever cut in half). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** The pass in progress, if any (tests wait on it). */
  get current(): Promise<RetentionPassResult> | undefined {
    return this.running;
  }

  private async pass(): Promise<RetentionPassResult> {
    const started = this.now();
    const before = firstDayKept(started, this.days);
    const result: RetentionPassResult = { before, batches: 0, checks: 0, steps: 0, ms: 0, stopped: false };
    for (const table of TABLES) {
      if (this.stopped) break;
      result[table.counts] += await this.deleteOld(table, before, result);
    }
    return { ...result, ms: this.now() - started, stopped: this.stopped };
  }

  /** Deletes the table's rows dated before `before`, device by device; returns how many. */
  private async deleteOld(table: (typeof TABLES)[number], before: string, tally: { steps: number }): Promise<number> {
    const nextDevice = this.db
      .prepare(`SELECT device_id FROM ${table.name} WHERE device_id > ? ORDER BY device_id LIMIT 1`)
      .pluck();
    const hasOld = this.db.prepare(`SELECT 1 FROM ${table.name} WHERE device_id = ? AND ec_date < ? LIMIT 1`);
    // By key, not rowid: the older WITHOUT ROWID ec_consumption has no rowid.
    const deleteStep = this.db.prepare(
      `DELETE FROM ${table.name} WHERE (${table.key}) IN
         (SELECT ${table.key} FROM ${table.name} WHERE device_id = ? AND ec_date < ? LIMIT ${STEP_ROWS})`,
    );
    let deleted = 0;
    let devicesWithoutOld = 0;
    let device = nextDevice.get('') as string | undefined;
    while (device !== undefined) {
      let more = false;
      if (hasOld.get(device, before)) {
        const n = deleteStep.run(device, before).changes;
        deleted += n;
        tally.steps++;
        more = n === STEP_ROWS;
        await pause(STEP_PAUSE_MS);
      } else if (++devicesWithoutOld % 1000 === 0) {
        // Many devices with nothing old: the seeks are cheap, but let the event loop in.
        await pause(0);
      }
      if (this.stopped) break; // the store may be closed by now
      if (!more) device = nextDevice.get(device) as string | undefined;
    }
    return deleted;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));
}
