import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { epochSecondToParts } from '../../src/domain/batch.js';
import type { IntervalCheck } from '../../src/store/consumption-store.js';
import { firstDayKept, STEP_ROWS } from '../../src/store/sqlite-retention.js';
import { SQLITE_FILE, SqliteStore } from '../../src/store/sqlite-store.js';
import { bodyOf, makeBatch } from '../helpers/batches.js';
import { spawnServer, waitForOutput } from '../helpers/server-process.js';
import { StreamingMeter } from '../helpers/streaming-meter.js';

const DAY = 86_400;
const today = Math.floor(Date.now() / 1000 / DAY) * DAY;
const dateOf = (sec: number) => epochSecondToParts(sec).ec_date;

/** Rows per ec_date of one table, read straight from the file. */
function rowsPerDay(file: string, table = 'ec_consumption'): Record<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare(`SELECT ec_date, count(*) AS n FROM ${table} GROUP BY ec_date`).all() as {
      ec_date: string;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.ec_date, r.n]));
  } finally {
    db.close();
  }
}

function check(device: string, sec: number): IntervalCheck {
  const p = epochSecondToParts(sec);
  return {
    device_id: device,
    ec_date: p.ec_date,
    ec_time: p.ec_time,
    interval_seconds: 60,
    values_count: 1,
    values_checksum: 'x',
    check_time: 0,
    check_times: 1,
    status: 'verified',
  };
}

describe('retention of the embedded store (storage.retention_days)', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ec-retention-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('the first day kept is today (UTC) minus the days', () => {
    const noon = Date.UTC(2026, 11, 3, 12);
    expect(firstDayKept(noon, 1)).to.equal('20261202');
    expect(firstDayKept(noon, 30)).to.equal('20261103');
    expect(firstDayKept(Date.UTC(2026, 11, 3, 0, 0, 0), 1)).to.equal('20261202');
  });

  it('deletes batches and sync results of days before the first day kept, in steps, and keeps the rest', async () => {
    const data = join(dir, 'data');
    const fill = new SqliteStore({ dir: data, synchronous: 'NORMAL' });
    await fill.open();
    // Day offsets -5..0 for two devices; device a has more old rows than one step deletes.
    for (const offset of [5, 4, 3, 2, 1, 0]) {
      const n = offset === 4 ? STEP_ROWS * 2 + 7 : 10;
      for (const device of ['a', 'b']) {
        await fill.upsertBatches(Array.from({ length: n }, (_, s) => makeBatch(device, today - offset * DAY + s)));
        await fill.writeIntervalCheck(check(device, today - offset * DAY));
      }
    }
    await fill.close();

    const store = new SqliteStore({ dir: data, synchronous: 'FULL', retentionDays: 2 });
    await store.open();
    const pass = await store.retention!.current!;
    await store.close();
    expect(pass).to.include({ before: dateOf(today - 2 * DAY), batches: 2 * (10 + 10 + STEP_ROWS * 2 + 7) });
    expect(pass).to.include({ checks: 6, stopped: false });
    // Per device 1027 old batches (three days): steps of 500, 500 and 27; then its 3 old checks in one.
    expect(pass.steps).to.equal(2 * 3 + 2);
    const kept = { [dateOf(today - 2 * DAY)]: 20, [dateOf(today - DAY)]: 20, [dateOf(today)]: 20 };
    expect(rowsPerDay(join(data, SQLITE_FILE))).to.deep.equal(kept);
    expect(rowsPerDay(join(data, SQLITE_FILE), 'ec_checksum')).to.deep.equal({
      [dateOf(today - 2 * DAY)]: 2,
      [dateOf(today - DAY)]: 2,
      [dateOf(today)]: 2,
    });
  });

  it('close() during a pass stops it between two steps, and the rest is deleted by the next pass', async () => {
    const data = join(dir, 'data');
    const fill = new SqliteStore({ dir: data, synchronous: 'NORMAL' });
    await fill.open();
    await fill.upsertBatches(Array.from({ length: STEP_ROWS * 3 }, (_, s) => makeBatch('a', today - 9 * DAY + s)));
    await fill.close();
    const store = new SqliteStore({ dir: data, synchronous: 'FULL', retentionDays: 1 });
    await store.open(); // its first step has run; the pass waits in its pause
    const pass = store.retention!.current!;
    await store.close();
    expect(await pass).to.include({ batches: STEP_ROWS, steps: 1, stopped: true });
    const again = new SqliteStore({ dir: data, synchronous: 'FULL', retentionDays: 1 });
    await again.open();
    expect(await again.retention!.current!).to.include({ batches: STEP_ROWS * 2, stopped: false });
    await again.close();
    expect(rowsPerDay(join(data, SQLITE_FILE))).to.deep.equal({});
  });

  it('new batches reuse the space old days freed: the file does not grow', async () => {
    const data = join(dir, 'data');
    const batches = (offset: number) =>
      Array.from({ length: 300 }, (_, s) => makeBatch('big', today - offset * DAY + s, 1000));
    const fill = new SqliteStore({ dir: data, synchronous: 'NORMAL', compression: 'none' });
    await fill.open();
    await fill.upsertBatches(batches(10));
    await fill.close();
    const pages = (): { total: number; free: number } => {
      const db = new Database(join(data, SQLITE_FILE));
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
        return {
          total: db.pragma('page_count', { simple: true }) as number,
          free: db.pragma('freelist_count', { simple: true }) as number,
        };
      } finally {
        db.close();
      }
    };
    const before = pages();
    const store = new SqliteStore({ dir: data, synchronous: 'FULL', compression: 'none', retentionDays: 1 });
    await store.open();
    expect((await store.retention!.current!).batches).to.equal(300);
    await store.close();
    const afterDelete = pages();
    expect(afterDelete.total).to.equal(before.total);
    expect(afterDelete.free, 'the deleted rows pages are free').to.be.greaterThan(before.total * 0.8);
    const again = new SqliteStore({ dir: data, synchronous: 'FULL', compression: 'none' });
    await again.open();
    await again.upsertBatches(batches(0));
    await again.close();
    const afterInsert = pages();
    expect(afterInsert.total, 'no growth: the freed pages were reused').to.equal(before.total);
    expect(afterInsert.free).to.be.lessThan(before.total * 0.2);
  });

  // The server as a process over 50,000 old batches: the full tier (`@full` in the title), like every server process.
  it('a real server deletes old days while a meter streams, and answers every batch 200 (no 503) @full', async () => {
    const data = join(dir, 'data');
    const OLD = 50_000; // 100 steps: at least 100 x STEP_PAUSE_MS, whatever the machine
    const fill = new SqliteStore({ dir: data, synchronous: 'NORMAL' });
    await fill.open();
    for (let d = 0; d < 5; d++)
      for (let s = 0; s < OLD / 5; s += 5000)
        await fill.upsertBatches(
          Array.from({ length: 5000 }, (_, i) => makeBatch(`old${d}`, today - 10 * DAY + s + i, 2)),
        );
    await fill.upsertBatches(Array.from({ length: 100 }, (_, s) => makeBatch('recent', today - DAY + s)));
    await fill.close();

    const server = await spawnServer([
      '--port',
      '0',
      '--data-dir',
      data,
      '--set',
      'sync.enabled=false',
      '--set',
      'http.port=0',
      '--set',
      'storage.retention_days=1',
    ]);
    const meter = new StreamingMeter(server.port);
    try {
      // Today (UTC) up to now, nothing ahead of the clock (ingest.max_future_seconds, 300 s). Not the hour
      // before the current one: in the first hour after midnight that is yesterday, and the live batches
      // then add to yesterday's 100 counted below (3,700 rows; the pass itself was right).
      const dayStart = Math.floor(Date.now() / 1000 / DAY) * DAY;
      const span = Math.max(60, Math.floor(Date.now() / 1000) - dayStart);
      meter.stream((s) => bodyOf(makeBatch('live', dayStart + (s % span), 10, 0, s)));
      const done = await waitForOutput(server, /\{[^\n]*"msg":"retention: old days deleted"[^\n]*\}/);
      const answeredDuringPass = meter.statuses.length;
      await meter.acked(answeredDuringPass + 50); // ingest goes on after the pass as well
      await meter.stop();
      const pass = JSON.parse(done[0]) as { batches: number; steps: number; stopped: boolean };
      expect(pass).to.include({ batches: OLD, steps: OLD / STEP_ROWS, stopped: false });
      expect(answeredDuringPass, 'batches answered while the pass ran').to.be.greaterThan(0);
      expect(meter.statuses.filter((s) => s !== 200)).to.deep.equal([]);
    } finally {
      meter.close();
      server.child.kill('SIGTERM');
    }
    expect((await server.exited).code, server.output()).to.equal(0);
    const perDay = rowsPerDay(join(data, SQLITE_FILE));
    expect(perDay[dateOf(today - 10 * DAY)]).to.equal(undefined);
    expect(perDay[dateOf(today - DAY)]).to.equal(100);
  });
});
