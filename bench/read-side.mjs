#!/usr/bin/env node
// The read side at full scale (issue 16, must-shows 5 and 6), on one backend per run:
//   1. ingest throughput through the real ingest path (parse, checks, group commit, store) with the read
//      side's ingest-time work (per-batch aggregates, device registry) on and off, alternated, in one run;
//   2. a day of a 1 kHz meter (86,400 batches x 1000 samples) loaded through the store in big groups,
//      its 24 hours marked verified by sync checks (minute rollups written);
//   3. p50/p99 of 1m and 1d over the day (rollups) and a raw hour, and 1m over the day without rollups;
//   4. ec-export of the day (raw CSV) read back here: rows and sum against the store's, ec-export's peak RSS.
//
//   npm run build && node bench/read-side.mjs --backend sqlite|cassandra [--seconds 86400] [--ingest 20000]
//
// SQLite works in a temporary directory; Cassandra (127.0.0.1:9042) in keyspace ec_readbench, dropped at the end.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { BENCH_DIR, REPO, percentile } from './lib/util.mjs';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'sqlite' },
    seconds: { type: 'string', default: '86400' },
    ingest: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '2' },
    keyspace: { type: 'string', default: 'ec_readbench' },
  },
});
const SECONDS = Number(a.seconds);
const DAY0 = Date.UTC(2026, 10, 1) / 1000;
const DEVICE = 'bench-meter';

const { SqliteStore } = await import('../dist/src/store/sqlite-store.js');
const { CassandraStore } = await import('../dist/src/store/cassandra-store.js');
const { ConsumptionQuery } = await import('../dist/src/query/consumption-query.js');
const { openIngestSink } = await import('../dist/src/ingest/open-sink.js');
const { GroupCommitter } = await import('../dist/src/ingest/group-commit.js');
const { DeviceRegistry } = await import('../dist/src/registry/device-registry.js');
const { epochSecondToParts, recordsChecksum } = await import('../dist/src/domain/batch.js');

/** 16 record lists of 1000 samples (1 kHz), rotated by second: sums differ between seconds. */
const LISTS = Array.from({ length: 16 }, (_, k) => {
  const values = Array.from({ length: 1000 }, (_, i) => `${i * 1000},${((k * 7919 + i * 31) % 100000) / 100}`);
  const text = values.join(';');
  return { text, checksum: recordsChecksum(text) };
});

function batchAt(device, sec) {
  const l = LISTS[sec % 16];
  return {
    device_id: device,
    ...epochSecondToParts(sec),
    start_us: '000000',
    end_us: '999000',
    ec_consumption_values: l.text,
    values_count: 1000,
    values_checksum: l.checksum,
    batch_seq: null,
    insert_time: Date.now(),
  };
}

const cassandraConfig = (keyspace) => ({
  hosts: ['127.0.0.1'],
  port: 9042,
  keyspace,
  localDc: 'datacenter1',
  replication: { class: 'SimpleStrategy', replication_factor: 1 },
  username: '',
  password: '',
  consistency: 'LOCAL_QUORUM',
  requestTimeoutMs: 12_000,
  ttlDays: 0,
  createSchema: true,
});

const dirs = [];
async function openStore(aggregates, name) {
  if (a.backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), `ec-readbench-${name}-`));
    dirs.push(dir);
    const s = new SqliteStore({ dir, synchronous: 'FULL', aggregates });
    await s.open();
    return { store: s, dir };
  }
  const s = new CassandraStore(cassandraConfig(`${a.keyspace}_${name}`), { aggregates });
  await s.open();
  return { store: s, keyspace: `${a.keyspace}_${name}` };
}

/** Batches/s through the ingest sink and group commit, `n` 1000-sample bodies of 100 devices. */
async function ingestRate(on, n, name) {
  const { store } = await openStore(on, name);
  const sink = await openIngestSink(store, {
    writer: 'thread',
    bounds: { maxBatches: 2000, maxBytes: 2 * 1024 * 1024 },
    aggregates: on, // the inline sink (Cassandra) computes them where it parses, as the server does
  });
  const registry = new DeviceRegistry(store, { offlineAfterMs: 300_000, flushMs: 3_600_000 });
  const committer = new GroupCommitter(sink, {
    maxBatches: 2000,
    maxBytes: 2 * 1024 * 1024,
    maxQueued: 1_000_000,
    maxQueuedBytes: 1e11,
    ...(on ? { onStored: registry.observe } : {}),
  });
  const bodies = [];
  for (let i = 0; i < n; i++) {
    const sec = DAY0 + Math.floor(i / 100);
    const p = epochSecondToParts(sec);
    bodies.push(`m${i % 100}|${p.ec_date}${p.ec_time}|${LISTS[i % 16].text}`);
  }
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const body = bodies[next++];
      await committer.submit({ body, count: undefined, checksum: undefined, seq: undefined, insert_time: Date.now() });
    }
  };
  await Promise.all(Array.from({ length: 4000 }, worker));
  const s = (performance.now() - started) / 1000;
  if (on) await registry.flush();
  await sink.close();
  await store.close();
  return { batchesPerS: Math.round(n / s), seconds: Number(s.toFixed(2)), devices: on ? registry.size : 0 };
}

async function timed(fn) {
  const t = performance.now();
  const r = await fn();
  return { ms: performance.now() - t, r };
}

async function collect(gen) {
  let n = 0;
  let count = 0;
  let sum = 0;
  for await (const c of gen) {
    if (Array.isArray(c)) {
      n += c.length;
      for (const b of c) {
        count += b.count;
        sum += b.sum;
      }
    } else {
      n += c.t.length;
      for (const v of c.value) sum += v;
      count += c.t.length;
    }
  }
  return { rows: n, count, sum };
}

function latency(samples) {
  const s = [...samples].sort((x, y) => x - y);
  return { n: s.length, p50: Number(percentile(s, 50).toFixed(1)), p99: Number(percentile(s, 99).toFixed(1)) };
}

/** ec-export of [from, to) raw CSV to stdout, counted and summed here as it streams. */
async function exportDay(target, from, to) {
  const args = [join(REPO, 'bin/ec-export.js'), '-i', DEVICE, '--from', String(from), '--to', String(to)];
  if (target.dir) args.push('--data-dir', target.dir);
  else args.push('--storage', 'cassandra', '--set', `cassandra.keyspace=${target.keyspace}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let rows = -1;
  let sum = 0;
  const started = performance.now();
  for await (const line of createInterface({ input: child.stdout })) {
    rows++;
    if (rows > 0) sum += Number(line.slice(line.indexOf(',') + 1));
  }
  const code = await new Promise((r) => child.on('close', r));
  const rss = Number(/peak RSS (\d+) MB/.exec(stderr)?.[1]);
  return {
    code,
    rows,
    sum,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    peakRssMb: rss,
    stderr,
  };
}

const result = { backend: a.backend, date: new Date().toISOString(), seconds: SECONDS };
try {
  // 1. Ingest, read-side work on and off, alternated.
  const n = Number(a.ingest);
  result.ingest = { batches: n, samplesPerBatch: 1000, on: [], off: [] };
  for (let r = 0; r < Number(a.rounds); r++) {
    result.ingest.off.push(await ingestRate(false, n, `off${r}`));
    result.ingest.on.push(await ingestRate(true, n, `on${r}`));
    console.log('ingest', JSON.stringify(result.ingest));
  }
  const best = (xs) => Math.max(...xs.map((x) => x.batchesPerS));
  result.ingest.costPercent = Number((100 * (1 - best(result.ingest.on) / best(result.ingest.off))).toFixed(1));

  // 2. A day of a 1 kHz meter, loaded in groups of 2000 batches.
  const target = await openStore(true, 'day');
  const store = target.store;
  const load = await timed(async () => {
    for (let s = 0; s < SECONDS; s += 2000) {
      const group = [];
      for (let k = s; k < Math.min(SECONDS, s + 2000); k++) group.push(batchAt(DEVICE, DAY0 + k));
      await store.upsertBatches(group);
    }
  });
  result.load = { batches: SECONDS, seconds: Number((load.ms / 1000).toFixed(1)) };
  console.log('load', JSON.stringify(result.load));
  const q = new ConsumptionQuery(store);
  const from = DAY0 * 1000;
  const to = (DAY0 + SECONDS) * 1000;
  const dayTo = (DAY0 + 86_400) * 1000;

  // 1m over the day before any rollup (computed from the batch aggregates).
  const open = [];
  for (let i = 0; i < 3; i++) open.push((await timed(() => collect(q.buckets(DEVICE, '1m', from, dayTo)))).ms);
  result.query = { '1m-no-rollups': latency(open) };

  // Sync marks every hour verified: its minute rollups are written.
  const fin = await timed(async () => {
    for (let h = 0; h < Math.ceil(SECONDS / 3600); h++) {
      const p = epochSecondToParts(DAY0 + h * 3600);
      await store.writeIntervalCheck({
        device_id: DEVICE,
        ...p,
        interval_seconds: 3600,
        values_count: 3_600_000,
        values_checksum: '',
        check_time: Date.now(),
        check_times: 1,
        status: 'verified',
      });
    }
  });
  result.finalise = {
    hours: Math.ceil(SECONDS / 3600),
    msPerHour: Number((fin.ms / Math.ceil(SECONDS / 3600)).toFixed(1)),
  };

  // 3. Queries.
  const runs = { '1m': 20, '1d': 20, 'raw-hour': 5 };
  let day;
  for (const [name, reps] of Object.entries(runs)) {
    const ms = [];
    for (let i = 0; i < reps; i++) {
      const t = await timed(() =>
        name === 'raw-hour'
          ? collect(q.raw(DEVICE, from, from + 3_600_000))
          : collect(q.buckets(DEVICE, name, name === '1d' ? from : from, dayTo)),
      );
      ms.push(t.ms);
      if (name === '1d') day = t.r;
      if (i === 0) result.query[`${name}-rows`] = t.r.rows;
    }
    result.query[name] = latency(ms);
    console.log('query', name, JSON.stringify(result.query[name]));
  }
  result.store = { samples: day.count, sum: day.sum };

  // 4. Export of the day.
  const ex = await exportDay(target, from, to);
  result.export = {
    rows: ex.rows,
    sum: ex.sum,
    seconds: ex.seconds,
    peakRssMb: ex.peakRssMb,
    rowsEqual: ex.rows === day.count,
    sumRelativeDiff: Math.abs(ex.sum - day.sum) / Math.abs(day.sum),
    exitCode: ex.code,
  };
  const hour = await exportDay(target, from, from + 3_600_000);
  result.export.hourPeakRssMb = hour.peakRssMb;
  console.log('export', JSON.stringify(result.export));
  await store.close();
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (a.backend === 'cassandra') {
    const cassandra = (await import('cassandra-driver')).default;
    const c = new cassandra.Client({ contactPoints: ['127.0.0.1:9042'], localDataCenter: 'datacenter1' });
    for (const ks of ['off0', 'on0', 'off1', 'on1', 'off2', 'on2', 'day'])
      await c
        .execute(`DROP KEYSPACE IF EXISTS ${a.keyspace}_${ks}`, [], { readTimeout: 60_000 })
        .catch(() => undefined);
    await c.shutdown();
  }
}
mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
writeFileSync(join(BENCH_DIR, 'results', `read-side-${a.backend}.json`), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
