import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Batch } from '../../src/domain/batch.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { makeBatch } from '../helpers/batches.js';
import { samplesOf } from '../helpers/direct-stats.js';
import { runBin } from '../helpers/server-process.js';

const DEVICE = 'meter-x';
const T0 = Date.UTC(2026, 11, 1, 10) / 1000;
/**
 * A V8 heap far below the data: 20 minutes are 1.2 M rows (~25 MB of CSV, ~20 MB of record text), so an export
 * that held them would fail; the young generation is kept small too, so that its growth (V8's, not the data's)
 * does not blur the comparison of peak RSS.
 */
const HEAP_CAP = { NODE_OPTIONS: '--max-old-space-size=24 --max-semi-space-size=2' };

/** Must-show 6 at a small scale: ec-export streams in constant memory, and its rows add up to the store's. */
describe('ec-export and ec-server daily (bins, real SQLite file)', function () {
  this.timeout(120_000);
  let dir: string;
  let dataDir: string;
  const batches: Batch[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-export-'));
    dataDir = join(dir, 'data');
    const store = new SqliteStore({ dir: dataDir, synchronous: 'NORMAL' });
    await store.open();
    // 20 minutes of a 1 kHz meter (1.2 M samples), the seventh minute missing.
    for (let s = T0; s < T0 + 1200; s++)
      if (s < T0 + 360 || s >= T0 + 420) batches.push(makeBatch(DEVICE, s, 1000, 0, s));
    for (let i = 0; i < batches.length; i += 200) await store.upsertBatches(batches.slice(i, i + 200));
    await store.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const exportCsv = async (minutes: number) => {
    const out = join(dir, `raw-${minutes}.csv`);
    const r = await runBin(
      'ec-export',
      [
        '--data-dir',
        dataDir,
        '-i',
        DEVICE,
        '--from',
        String(T0 * 1000),
        '--to',
        new Date((T0 + minutes * 60) * 1000).toISOString(),
        '--out',
        out,
      ],
      HEAP_CAP,
    );
    expect(r.code, r.stderr).to.equal(0);
    const rss = Number(/peak RSS (\d+) MB/.exec(r.stderr)![1]);
    return { lines: readFileSync(out, 'latin1').trimEnd().split('\n'), rss, stderr: r.stderr };
  };

  // Exports 1.2 M samples in two child processes under a heap cap: a memory check with a large input, full tier.
  const title = 'raw CSV: one row per sample, rows and sum equal to the store, memory flat from 2 to 20 minutes';
  it(`${title} @full`, async () => {
    const small = await exportCsv(2);
    const large = await exportCsv(20);
    expect(large.lines[0]).to.equal('t,value');
    const samples = samplesOf(batches);
    expect(large.lines.length - 1).to.equal(samples.length);
    expect(large.stderr).to.include(`${samples.length} row(s) of ${DEVICE}, step raw`);
    let sum = 0;
    for (let i = 1; i < large.lines.length; i++) sum += Number(large.lines[i]!.split(',')[1]);
    expect(sum).to.be.closeTo(
      samples.reduce((a, s) => a + s.v, 0),
      1e-3,
    );
    expect(large.lines[1]).to.equal(`${samples[0]!.t},${samples[0]!.v}`);
    expect(small.lines.length - 1).to.equal(120_000);
    // Ten times the data, (about) the same memory: the export holds a minute of samples at a time.
    expect(large.rss, `peak RSS ${small.rss} MB for 2 minutes, ${large.rss} MB for 20`).to.be.below(small.rss + 25);
  });

  it('--step 1m --format jsonl to stdout: a line per minute with data, a gap for the missing minute', async () => {
    const r = await runBin('ec-export', [
      '--data-dir',
      dataDir,
      '-i',
      DEVICE,
      '--from',
      '2026-12-01T10:00:00Z',
      '--to',
      '2026-12-01T10:20:00Z',
      '--step',
      '1m',
      '--format',
      'jsonl',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    const rows = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: number; count: number });
    expect(rows.map((x) => (x.t / 1000 - T0) / 60)).to.deep.equal([
      0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
    ]);
    expect(rows.every((x) => x.count === 60_000)).to.equal(true);
  });

  it('exit 2: no store at the path, a bad time; --help names the exit codes', async () => {
    const missing = join(dir, 'nowhere');
    const r = await runBin('ec-export', ['--data-dir', missing, '-i', DEVICE, '--from', '0', '--to', '1000']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`no store at ${join(missing, 'ec-server.sqlite')}`);
    const bad = await runBin('ec-export', ['--data-dir', dataDir, '-i', DEVICE, '--from', 'soon', '--to', '1000']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/from="soon" is not epoch ms or ISO-8601/);
    const help = await runBin('ec-export', ['--help']);
    expect(help.stdout).to.match(/Exit codes/);
  });

  it('ec-server daily: the day of the data, with its total, samples and coverage', async () => {
    const daily = (...more: string[]) =>
      runBin('ec-server', [
        'daily',
        '--data-dir',
        dataDir,
        '-i',
        DEVICE,
        '--from',
        '2026-12-01',
        '--to',
        '2026-12-02',
        ...more,
      ]);
    const r = await daily('--json');
    expect(r.code, r.stderr).to.equal(0);
    const days = (JSON.parse(r.stdout) as { days: { day: string; samples: number; coverage: number; total: number }[] })
      .days;
    const samples = samplesOf(batches);
    expect(days.map((d) => [d.day, d.samples, d.coverage])).to.deep.equal([
      ['2026-12-01', samples.length, 1140 / 86_400],
    ]);
    expect(days[0]!.total).to.be.closeTo(
      samples.reduce((a, s) => a + s.v, 0),
      1e-3,
    );
    const table = await daily();
    expect(table.stdout.split('\n')[0]).to.equal(
      'day\ttotal\tmean\tpeak\tpeak_at\tmin\tsamples\tcoverage\tsync_status',
    );
    expect(table.stdout).to.include('\tunchecked');
  });
});
