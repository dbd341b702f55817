import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { epochSecondToParts } from '../../src/domain/batch.js';
import { UsageError } from '../../src/errors.js';
import { backupSqliteFile } from '../../src/store/sqlite-backup.js';
import { SQLITE_FILE, SqliteStore } from '../../src/store/sqlite-store.js';
import { bodyOf, makeBatch } from '../helpers/batches.js';
import { runBin, spawnServer } from '../helpers/server-process.js';
import { StreamingMeter } from '../helpers/streaming-meter.js';

const H = Date.UTC(2026, 2, 1, 10) / 1000; // 2026-03-01 10:00 UTC
const stamp = (sec: number) => {
  const p = epochSecondToParts(sec);
  return p.ec_date + p.ec_time;
};

/** Every row's key and checksum, in key order, read straight from a store file. */
function rowsOf(file: string, device: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (
      db
        .prepare(
          'SELECT ec_date, ec_time, start_us, end_us, values_checksum FROM ec_consumption WHERE device_id = ? ' +
            'ORDER BY ec_date, ec_time, start_us, end_us',
        )
        .raw()
        .all(device) as string[][]
    ).map((r) => r.join(' '));
  } finally {
    db.close();
  }
}

describe('backup of the embedded store', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ec-backup-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('copies the store as it was when the backup began, though another connection commits between steps', async () => {
    const live = new SqliteStore({ dir: join(dir, 'data'), synchronous: 'FULL', compression: 'none' });
    await live.open();
    // ~12 MB of 17-kB batches: several backup steps of 4 MiB.
    for (let s = 0; s < 700; s += 100)
      await live.upsertBatches(Array.from({ length: 100 }, (_, i) => makeBatch('before', H + s + i, 1000)));
    let steps = 0;
    const result = await backupSqliteFile(live.file, join(dir, 'copy.sqlite'), () => {
      // A commit between two steps, as the server makes while a backup runs.
      void live.upsertBatches([makeBatch('during', H + steps++, 1000)]);
    });
    expect(steps, 'the copy took more than one step').to.be.greaterThan(1);
    expect(rowsOf(live.file, 'during')).to.have.length(steps);
    await live.close();
    expect(readdirSync(dir).sort(), 'only the finished copy').to.deep.equal(['copy.sqlite', 'data']);
    expect(result.batches).to.equal(700);
    expect(rowsOf(join(dir, 'copy.sqlite'), 'before')).to.deep.equal(rowsOf(live.file, 'before'));
    expect(rowsOf(join(dir, 'copy.sqlite'), 'during')).to.deep.equal([]);
  });

  it('never overwrites a file, and names a missing store', async () => {
    const live = new SqliteStore({ dir: join(dir, 'data'), synchronous: 'FULL' });
    await live.open();
    await live.upsertBatches([makeBatch('m', H)]);
    await live.close();
    const dest = join(dir, 'copy.sqlite');
    await backupSqliteFile(live.file, dest);
    let error: unknown;
    await backupSqliteFile(live.file, dest).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(UsageError);
    expect((error as Error).message).to.equal(`${dest} exists; a backup never overwrites a file`);
    const noStore = await runBin('ec-server', ['backup', join(dir, 'other.sqlite'), '--data-dir', join(dir, 'none')]);
    expect(noStore.code).to.equal(2);
    expect(noStore.stderr).to.include(`no store at ${join(dir, 'none', SQLITE_FILE)}`);
    expect(existsSync(join(dir, 'none'))).to.equal(false);
    expect(existsSync(join(dir, 'other.sqlite'))).to.equal(false);
  });

  it('ec-server backup while a meter streams to a real server; restored, ec-test finds the same batches', async () => {
    const data = join(dir, 'data');
    const server = await spawnServer([
      '--port',
      '0',
      '--data-dir',
      data,
      '--set',
      'sync.enabled=false',
      '--set',
      'http.port=0',
    ]);
    const meter = new StreamingMeter(server.port);
    try {
      // A finished stretch of one meter, then a second meter that keeps streaming throughout.
      await meter.sendAll(Array.from({ length: 600 }, (_, s) => bodyOf(makeBatch('done', H + s, 100))));
      meter.stream((s) => bodyOf(makeBatch('live', H + s, 100)));
      await meter.acked(600 + 50);
      const ackedBefore = meter.okCount - 600;
      const backup = await runBin('ec-server', ['backup', join(dir, 'backup.sqlite'), '--data-dir', data]);
      const ackedAfter = meter.okCount - 600;
      expect(backup.code, backup.stderr).to.equal(0);
      expect(backup.stdout).to.match(/backup of .* written to .*backup\.sqlite: \d+ batches, .* \(quick_check ok\)/);
      await meter.acked(600 + ackedAfter + 50); // the stream went on after the backup
      await meter.stop();
      expect(
        meter.statuses.filter((s) => s !== 200),
        'every batch answered 200',
      ).to.deep.equal([]);

      // Restore: the copy as the store file of a fresh data directory.
      const restored = join(dir, 'restored');
      mkdirSync(restored);
      copyFileSync(join(dir, 'backup.sqlite'), join(restored, SQLITE_FILE));
      const ecTest = (dataDir: string, device: string) =>
        runBin('ec-test', ['--data-dir', dataDir, '-i', device, '-d', stamp(H), '--json']);
      const [fromLive, fromBackup] = [await ecTest(data, 'done'), await ecTest(restored, 'done')];
      expect(fromBackup.stderr).to.equal('');
      expect(JSON.parse(fromBackup.stdout)).to.include({ batches: 600, samples: 60_000 });
      expect(fromBackup.stdout).to.equal(fromLive.stdout);

      // The streaming meter: everything acknowledged before the backup began is in it, nothing
      // acknowledged after it ended, and what is in it is what the live store holds.
      const liveReport = JSON.parse((await ecTest(restored, 'live')).stdout) as { batches: number };
      expect(liveReport.batches).to.be.within(ackedBefore, ackedAfter);
      const inBackup = rowsOf(join(restored, SQLITE_FILE), 'live');
      expect(inBackup).to.have.length(liveReport.batches);
      expect(rowsOf(join(data, SQLITE_FILE), 'live').slice(0, inBackup.length)).to.deep.equal(inBackup);
    } finally {
      meter.close();
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
