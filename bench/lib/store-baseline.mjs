// @ts-check
// Raw store baseline: SqliteStore (dist/src/store/sqlite-store.js) opened directly, rows of the
// same shapes as the sipp scenarios (parsed by the server's own parseBatchBody from the same bodies),
// upsertBatches in groups of 500 rows (storage.commit_max_batches was 500 until 2026-12-02; now
// 2000. The group size is kept so that results compare across runs; at 500 rows per transaction the
// fsync is already a small part of the time).
// The store's settings are the server's (writer mode, record-list compression: 2026-12-02 on, the
// default deflates 1000-record lists, so a large-batch raw rate is not comparable with earlier runs).
// No SIP, no event loop contention: the most the store can take on this disk.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { records } from '../sipp/generate.mjs';
import { percentile } from './util.mjs';

const { SqliteStore } = await import('../../dist/src/store/sqlite-store.js');
const { openIngestSink } = await import('../../dist/src/ingest/open-sink.js');
const { parseBatchBody } = await import('../../dist/src/domain/batch-body.js');

/**
 * The server's SQLite writer mode (storage.sqlite_writer: 'thread' commits in a worker thread,
 * 'inline' on the caller's thread), from EC_STORAGE_SQLITE_WRITER or the built-in default; undefined
 * for builds that do not have the key. The baseline uses the same mode as the server.
 */
export async function serverWriterMode() {
  if (process.env.EC_STORAGE_SQLITE_WRITER) return process.env.EC_STORAGE_SQLITE_WRITER;
  try {
    const { KEY_INDEX } = await import('../../dist/src/config/config-keys.js');
    return KEY_INDEX?.get('storage.sqlite_writer')?.default;
  } catch {
    return undefined;
  }
}

/** The server's sync period (sync.syncfreq's default, seconds); undefined for builds without the key. */
const SERVER_SYNC_PERIOD_S = await (async () => {
  try {
    const { KEY_INDEX } = await import('../../dist/src/config/config-keys.js');
    const minutes = Number(KEY_INDEX?.get('sync.syncfreq')?.default);
    return minutes > 0 ? minutes * 60 : undefined;
  } catch {
    return undefined;
  }
})();

function template(nRecords) {
  return parseBatchBody(`rawX-0|20240101000000|${records(nRecords).join(';')}`);
}

/**
 * Inserts rows of nRecords records for about seconds (in groups of groupSize) into a fresh store in
 * dir; returns rows/s and samples/s over the time spent inside upsertBatches, plus commit latencies.
 */
export async function storeBaseline({
  dir,
  nRecords,
  seconds,
  groupSize = 500,
  synchronous = 'FULL',
  writer,
  syncPeriodS = SERVER_SYNC_PERIOD_S,
}) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // The server's record-list compression too (storage.sqlite_compression; the store's default is the server's).
  const compression = process.env.EC_STORAGE_SQLITE_COMPRESSION || undefined;
  // The server's sync period too: writes re-open recorded periods in the write's transaction (sqlite-reopen.ts).
  const store = new SqliteStore({
    dir,
    synchronous,
    ...(compression ? { compression } : {}),
    ...(syncPeriodS ? { syncPeriodS } : {}),
  });
  await store.open();
  // As the server opens it: with the writer thread, the store's writes go to the ingest sink's thread.
  await openIngestSink(store, { writer: writer ?? 'thread', bounds: { maxBatches: 2000, maxBytes: 2 << 20 } });
  const t = template(nRecords);
  let rows = 0;
  let busyNs = 0n;
  const commitMs = [];
  const wall0 = process.hrtime.bigint();
  const deadline = Date.now() + seconds * 1000;
  let g = 0;
  while (Date.now() < deadline) {
    const group = [];
    for (let i = 0; i < groupSize; i++) {
      group.push({ ...t, device_id: `raw${g}-${i}`, batch_seq: 1, insert_time: Date.now() });
    }
    g++;
    const t0 = process.hrtime.bigint();
    await store.upsertBatches(group);
    const dt = process.hrtime.bigint() - t0;
    busyNs += dt;
    commitMs.push(Number(dt) / 1e6);
    rows += group.length;
  }
  const wallS = Number(process.hrtime.bigint() - wall0) / 1e9;
  // The fsync floor: what one commit of a single row costs (a lone batch's latency floor).
  const single = [];
  for (let i = 0; i < 100; i++) {
    const t0 = process.hrtime.bigint();
    await store.upsertBatches([{ ...t, device_id: `one-${i}`, batch_seq: 1, insert_time: Date.now() }]);
    single.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  commitMs.sort((a, b) => a - b);
  single.sort((a, b) => a - b);
  const busyS = Number(busyNs) / 1e9;
  return {
    nRecords,
    groupSize,
    synchronous,
    writer: writer ?? 'inline (build without storage.sqlite_writer)',
    syncPeriodS: syncPeriodS ?? null,
    rows,
    seconds: busyS,
    wallSeconds: wallS,
    rowsPerS: rows / busyS,
    samplesPerS: (rows * nRecords) / busyS,
    commitMsP50: percentile(commitMs, 50),
    commitMsP99: percentile(commitMs, 99),
    singleRowCommitMsP50: percentile(single, 50),
    singleRowCommitMsP99: percentile(single, 99),
  };
}

export function storeDir(workDir, name) {
  return join(workDir, `raw-${name}`);
}
