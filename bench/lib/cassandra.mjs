// @ts-check
// The bench's Cassandra targets (issue 17): ec-server with storage.backend=cassandra against
//   - cassandra:  the shared development node of scripts/cassandra/cassandra.sh (127.0.0.1, RF=1);
//                 started when it is not running, never stopped (others use it);
//   - cassandra3: a 3-node cluster of the bench's own (scripts/cassandra/cluster.sh on 127.0.0.5-7,
//                 JMX 7301-7303, its own directory), RF=3 (NetworkTopologyStrategy), LOCAL_QUORUM;
//                 started when it is not running and then stopped at the end (BENCH_KEEP_CLUSTER=1 keeps it).
// and the baseline for both: cassandra-driver alone writing the same rows with the store's own prepared
// statements, at the same consistency and the concurrency ec-server's writer used (rawDriverRate).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import cassandra from 'cassandra-driver';
import { records } from '../sipp/generate.mjs';
import { REPO, log, percentile, treeCpuSeconds } from './util.mjs';

const { cassandraSchemaStatements, cassandraStatements, cassandraUpsertParams } =
  await import('../../dist/src/store/cassandra-store.js');
const { parseReplication } = await import('../../dist/src/config/cassandra-options.js');
const { parseBatchBody } = await import('../../dist/src/domain/batch-body.js');
const { isLateWrite, reopenedCheckKeys } = await import('../../dist/src/store/sync-period-keys.js');
const { KEY_INDEX } = await import('../../dist/src/config/config-keys.js');

const CACHE = process.env.EC_CASSANDRA_HOME ?? join(homedir(), '.cache/ec-server/cassandra');
/** The bench's own cluster: beside the default one of cluster.sh (127.0.0.2-4, JMX 7201-7203). */
const CLUSTER_ENV = {
  EC_CLUSTER_FIRST: process.env.BENCH_CLUSTER_FIRST ?? '5',
  EC_CLUSTER_JMX_BASE: process.env.BENCH_CLUSTER_JMX_BASE ?? '7300',
  EC_CLUSTER_DIR: process.env.BENCH_CLUSTER_DIR ?? join(CACHE, 'cluster-bench'),
  EC_CLUSTER_NAME: 'ec-bench-cluster',
  EC_CLUSTER_NODES: '3',
};
const first = Number(CLUSTER_ENV.EC_CLUSTER_FIRST);
/** The consistency of the server's reads and writes (cassandra.consistency), used by the baseline too. */
export const CONSISTENCY = process.env.EC_CASSANDRA_CONSISTENCY ?? KEY_INDEX.get('cassandra.consistency').default;

export const CASSANDRA_TARGETS = {
  cassandra: {
    id: 'cassandra',
    title: 'Cassandra, one node (RF=1)',
    hosts: ['127.0.0.1'],
    keyspace: 'ec_bench_c1',
    replication: 'SimpleStrategy:1',
    pidFiles: () => [join(CACHE, 'cassandra.pid')],
  },
  cassandra3: {
    id: 'cassandra3',
    title: 'Cassandra, three nodes (RF=3)',
    hosts: [0, 1, 2].map((i) => `127.0.0.${first + i}`),
    keyspace: 'ec_bench_c3',
    replication: 'NetworkTopologyStrategy:datacenter1=3',
    pidFiles: () => [1, 2, 3].map((n) => join(CLUSTER_ENV.EC_CLUSTER_DIR, `node${n}`, 'cassandra.pid')),
  },
};

/** The command that starts/stops the bench's cluster by hand (printed in the docs and the bench's log). */
export const CLUSTER_COMMAND =
  `EC_CLUSTER_FIRST=${CLUSTER_ENV.EC_CLUSTER_FIRST} EC_CLUSTER_JMX_BASE=${CLUSTER_ENV.EC_CLUSTER_JMX_BASE} ` +
  `EC_CLUSTER_DIR=${CLUSTER_ENV.EC_CLUSTER_DIR} EC_CLUSTER_NAME=${CLUSTER_ENV.EC_CLUSTER_NAME} ` +
  'bash scripts/cassandra/cluster.sh start|stop';

function script(name, args, env = {}) {
  return execFileSync('bash', [join(REPO, 'scripts/cassandra', name), ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** pids of the target's Cassandra JVMs (from the scripts' pid files), for their CPU. */
export function jvmPids(t) {
  const out = [];
  for (const f of t.pidFiles()) {
    try {
      const pid = Number(readFileSync(f, 'utf8').trim());
      if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('CassandraDaemon')) out.push(pid);
    } catch {
      /* not running */
    }
  }
  return out;
}

/**
 * Makes sure the target's Cassandra runs; returns a function that undoes what was done (stops the
 * bench's cluster if this call started it; the shared node is never stopped).
 */
export async function ensureCassandra(t) {
  if (t.id === 'cassandra') {
    if (jvmPids(t).length === 0) {
      log('cassandra: starting the development node (scripts/cassandra/cassandra.sh start); it is left running');
      script('cassandra.sh', ['start']);
    }
    return async () => {};
  }
  if (jvmPids(t).length === 3) {
    log(`cassandra3: the bench's cluster is running (${t.hosts.join(', ')}); it is left running`);
    return async () => {};
  }
  const t0 = Date.now();
  log(`cassandra3: starting the bench's 3-node cluster on ${t.hosts.join(', ')} (${CLUSTER_COMMAND})`);
  script('cluster.sh', ['start'], CLUSTER_ENV);
  log(`cassandra3: all 3 nodes UN after ${Math.round((Date.now() - t0) / 1000)} s`);
  return async () => {
    if (process.env.BENCH_KEEP_CLUSTER === '1') return;
    log("cassandra3: stopping the bench's cluster");
    script('cluster.sh', ['stop'], CLUSTER_ENV);
  };
}

/** The server's settings for the target (its keyspace, replication, contact points, consistency). */
export function serverArgs(t) {
  return [
    ['storage.backend', 'cassandra'],
    ['cassandra.host', t.hosts.join(',')],
    ['cassandra.keyspace', t.keyspace],
    ['cassandra.replication', t.replication],
    ['cassandra.consistency', CONSISTENCY],
  ].flatMap(([k, v]) => ['--set', `${k}=${v}`]);
}

/** A driver client for the bench's own statements (schema, truncate, count, the raw baseline). */
export async function benchClient(t) {
  const client = new cassandra.Client({
    contactPoints: t.hosts.map((h) => `${h}:9042`),
    localDataCenter: 'datacenter1',
    socketOptions: { readTimeout: 20_000 },
    queryOptions: {
      consistency: consistencyCode(CONSISTENCY),
      prepare: true,
      isIdempotent: true,
    },
  });
  await client.connect();
  for (const cql of cassandraSchemaStatements({
    keyspace: t.keyspace,
    replication: parseReplication(t.replication),
    ttlDays: 0,
  })) {
    await client.execute(cql, [], { prepare: false, readTimeout: 120_000 });
  }
  return client;
}

/** LOCAL_QUORUM -> the driver's code (its name there: localQuorum). */
function consistencyCode(c) {
  const name = c.replaceAll('_', '').toLowerCase();
  const hit = Object.entries(cassandra.types.consistencies).find(([k]) => k.toLowerCase() === name);
  if (!hit) throw new Error(`unknown consistency ${c}`);
  return Number(hit[1]);
}

/** Empties the tables a step writes (rows, check rows, devices), so that a count is that step's. */
export async function truncate(client, t) {
  const tables = await client.execute(
    'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?',
    [t.keyspace],
    { prepare: false },
  );
  for (const r of tables.rows) {
    await client.execute(`TRUNCATE ${t.keyspace}.${r.table_name}`, [], { prepare: false, readTimeout: 120_000 });
  }
}

/** Rows in ec_consumption (read at the server's consistency): the durability cross-check. */
export async function countRows(client, t) {
  const r = await client.execute(`SELECT count(*) AS n FROM ${t.keyspace}.ec_consumption`, [], {
    prepare: false,
    readTimeout: 600_000,
  });
  return Number(r.rows[0].n);
}

export async function dropKeyspace(client, t) {
  await client.execute(`DROP KEYSPACE IF EXISTS ${t.keyspace}`, [], { prepare: false, readTimeout: 120_000 });
}

/** The sync period the server runs with (sync.syncfreq's default, seconds): it decides which writes are late. */
const SYNC_PERIOD_S = Number(process.env.EC_SYNC_SYNCFREQ ?? KEY_INDEX.get('sync.syncfreq').default) * 60;
/** The store's margin before a period's end after which a write into it is late (sync-period-keys.ts). */
const LATE_MARGIN_S = 60;

/**
 * A live timestamp (YYYYMMDDhhmmss) for batches sent over the next spanS seconds: now, or the start
 * of the next sync period when the current one ends too soon (within the store's margin), so that
 * none of them is a late write. The bench's scenarios are dated 2024-01-01 (the embedded store's
 * runs compare across days with them); against Cassandra every such row is written into an ended
 * sync period, which costs a read and two more writes (CassandraStore.upsertLate), and that is not
 * what a live meter fleet sends. ingest.max_future_seconds (300) allows the next period's start.
 */
export function liveStamp(spanS, nowS = Math.floor(Date.now() / 1000)) {
  const end = (Math.floor(nowS / SYNC_PERIOD_S) + 1) * SYNC_PERIOD_S;
  const sec = end - nowS <= LATE_MARGIN_S + spanS + 10 ? end : nowS;
  return new Date(sec * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * The statements the store issues for one batch (CassandraStore.upsert): a live write is the INSERT
 * alone; a write into an ended sync period reads the stored row, inserts, then writes the two re-open
 * marks (upsertLate). mode 'late' dates the rows 2024-01-01 (the bench's default stamp) so that each is late.
 */
async function writeAsStored(client, q, batch, mode) {
  const params = cassandraUpsertParams(batch, 0, true);
  if (mode === 'insert' || !isLateWrite(batch, SYNC_PERIOD_S, Date.now() / 1000))
    return client.execute(q.upsert, params);
  const key = [batch.device_id, batch.ec_date, batch.ec_time.slice(0, 2), batch.ec_time, batch.start_us, batch.end_us];
  await client.execute(q.stored, key);
  await client.execute(q.upsert, params);
  await Promise.all(reopenedCheckKeys(batch, SYNC_PERIOD_S).map((k) => client.execute(q.reopenCheck, [0, ...k])));
}

/**
 * The raw driver rate: `concurrency` batches in flight (a closed loop: a finished one starts the
 * next) for `seconds`, rows of `nRecords` records parsed by the server's own parser from the bench's
 * body, every batch its own key (a device per worker and batch), written as the store writes them:
 * live rows (mode 'live', dated as the bench's ec-server steps are) or late ones (mode 'late').
 * CPU of this process (the driver) and of the JVMs.
 */
export async function rawDriverRate(client, t, { concurrency, seconds, nRecords, mode = 'live', tag = 'raw' }) {
  const q = cassandraStatements(t.keyspace);
  const stamp = mode === 'late' ? '20240101000000' : liveStamp(seconds);
  const template = parseBatchBody(`${tag}|${stamp}|${records(nRecords).join(';')}`);
  const latencies = [];
  let errors = 0;
  const jvm = jvmPids(t);
  const jvm0 = treeCpuSeconds(jvm);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  async function worker(w) {
    for (let i = 0; performance.now() < end; i++) {
      const batch = { ...template, device_id: `${tag}-${w}-${i}`, batch_seq: i, insert_time: Date.now() };
      const s = performance.now();
      try {
        await writeAsStored(client, q, batch);
        latencies.push(performance.now() - s);
      } catch {
        errors++;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsed = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const jvmCpu = treeCpuSeconds(jvm) - jvm0;
  latencies.sort((x, y) => x - y);
  return {
    mode,
    concurrency,
    seconds: elapsed,
    batches: latencies.length,
    errors,
    rowsPerS: latencies.length / elapsed,
    samplesPerS: (latencies.length * nRecords) / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    driverCpuPct: (100 * (self.user + self.system)) / 1e6 / elapsed,
    cassandraCpuPct: (100 * jvmCpu) / elapsed,
  };
}
