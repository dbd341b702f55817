#!/usr/bin/env node
// Write rate of the Cassandra store while one node of the local cluster (scripts/cassandra/cluster.sh) is
// down: CassandraStore itself (its driver options, retry policy and adaptive write limit), N writers in a
// closed loop (each one batch at a time, as a meter with a window of one), every batch its own row. Each
// variant (--variants) is a store of its own with its own N writers, all running at once, so that they
// see the same cluster at the same moment (this machine's load varies by the minute): `store` is the
// store as it is, `fixedN` the same with its write limit fixed at N (no adaptation), `target` the limit's
// rule before it had a latency floor (16..1,024, shrinking whenever a round averaged over 50 ms). It prints one line a
// second per variant (writes, mean and max latency, the limit, the driver's in-flight requests per
// host), kills node --node with SIGKILL after --before seconds, keeps writing for --down seconds, then
// starts the node again and writes for --after seconds once it is back, and ends with each phase's rate
// and `nodetool tpstats` of a surviving node (hints, mutation stage). It needs `npm run build`.
//
//   node bench/cluster-node-down.mjs [--variants store,fixed64] [--concurrency 48] [--before 20] [--down 30]
//        [--after 15] [--node 2]
//
// The keyspace (ec_nodedown by default, RF 3, LOCAL_QUORUM) is dropped at the end.
import { execFile } from 'node:child_process';
import { parseArgs, promisify } from 'node:util';
import cassandra from 'cassandra-driver';
import { rowAt } from './lib/util.mjs';
import { records } from './sipp/generate.mjs';

const run = promisify(execFile);
const { CassandraStore } = await import('../dist/src/store/cassandra-store.js');
const { AdaptiveLimit } = await import('../dist/src/store/adaptive-limit.js');
const { parseBatchBody } = await import('../dist/src/domain/batch-body.js');

const { values: a } = parseArgs({
  options: {
    variants: { type: 'string', default: 'store,fixed64' },
    concurrency: { type: 'string', default: '48' },
    before: { type: 'string', default: '20' },
    down: { type: 'string', default: '30' },
    after: { type: 'string', default: '15' },
    node: { type: 'string', default: '2' },
    keyspace: { type: 'string', default: 'ec_nodedown' },
    'request-timeout-ms': { type: 'string', default: '2000' },
  },
});
const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const CLUSTER_SH = new URL('../scripts/cassandra/cluster.sh', import.meta.url).pathname;
const node = Number(a.node);
const survivor = node === 1 ? 2 : 1;
const cluster = (...args) => run('bash', [CLUSTER_SH, ...args], { timeout: 300_000, maxBuffer: 16 << 20 });
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

/** Schema changes retried: a node that just came back may not have caught up with the others' schema yet. */
async function ddl(cql) {
  const admin = new cassandra.Client({ contactPoints: HOSTS, localDataCenter: 'datacenter1' });
  try {
    for (let i = 0; ; i++) {
      try {
        await admin.execute(cql, [], { readTimeout: 60_000 });
        await admin.metadata.checkSchemaAgreement();
        return;
      } catch (e) {
        if (i >= 10) throw e;
        await sleep(3);
      }
    }
  } finally {
    await admin.shutdown();
  }
}

/** The first store creates the schema; the others only check it (two creating it at once race). */
function storeFor(createSchema) {
  return new CassandraStore({
    hosts: HOSTS,
    port: 9042,
    keyspace: a.keyspace,
    localDc: 'datacenter1',
    replication: { class: 'NetworkTopologyStrategy', dcs: { datacenter1: 3 } },
    username: '',
    password: '',
    consistency: 'LOCAL_QUORUM',
    requestTimeoutMs: Number(a['request-timeout-ms']),
    ttlDays: 0,
    createSchema,
  });
}

const T0 = Date.UTC(2026, 0, 1) / 1000;
const template = parseBatchBody(`nd|20260101000000|${records(5).join(';')}`);
let phase = 'before';
let stopped = false;

const variants = [];
for (const name of a.variants.split(',')) {
  const store = storeFor(variants.length === 0);
  await store.open();
  if (variants.length === 0) await sleep(3); // the new tables known to every node before the others check them
  const fixed = /^fixed(\d+)$/.exec(name);
  if (name === 'target') {
    // The rule before the latency floor: 16..1,024, shrinking whenever a round averages over 50 ms.
    const limit = new AdaptiveLimit({ initial: 64, min: 16, max: 1024, targetMs: 50, tolerance: 0 });
    Object.defineProperty(store, 'writeLimit', { value: limit });
  } else if (fixed) {
    const n = Number(fixed[1]);
    Object.defineProperty(store, 'writeLimit', {
      value: new AdaptiveLimit({ initial: n, min: n, max: n, targetMs: 1 }),
    });
  } else if (name !== 'store') throw new Error(`unknown variant ${name} (store, target, fixedN)`);
  variants.push({ name, store, phases: { before: [], down: [], start: [], back: [] }, second: fresh() });
}
function fresh() {
  return { n: 0, ms: 0, max: 0, errors: 0 };
}
// The schema exists on every node (flushed) before a node is killed: a node killed right after a schema
// change may come back without it.
await cluster('nodetool', String(node), 'flush');

async function writer(v, w) {
  for (let i = 0; !stopped; i++) {
    const batch = rowAt(template, `nd-${v.name}-${w}`, T0 + i, i);
    const t = performance.now();
    try {
      await v.store.upsertBatches([batch]);
      const ms = performance.now() - t;
      v.second.n++;
      v.second.ms += ms;
      v.second.max = Math.max(v.second.max, ms);
    } catch {
      v.second.errors++;
      await sleep(0.1);
    }
  }
}

const started = performance.now();
const ticker = setInterval(() => {
  const t = ((performance.now() - started) / 1000).toFixed(0).padStart(3);
  for (const v of variants) {
    const s = v.second;
    v.second = fresh();
    v.phases[phase].push(s.n);
    const state = v.store.client?.getState?.();
    const hosts = state
      ? state
          .getConnectedHosts()
          .map((h) => `${h.address.split(':')[0]}=${state.getInFlightQueries(h)}`)
          .join(' ')
      : '';
    console.log(
      `${t}s ${phase.padEnd(6)} ${v.name.padEnd(8)} ${String(s.n).padStart(5)} writes/s, mean ` +
        `${(s.ms / Math.max(1, s.n)).toFixed(1)} ms, max ${s.max.toFixed(0)} ms, errors ${s.errors}, ` +
        `limit ${v.store.writeLimit.limit}, in flight ${hosts}`,
    );
  }
}, 1000);

const writers = variants.flatMap((v) => Array.from({ length: Number(a.concurrency) }, (_, w) => writer(v, w)));
await sleep(Number(a.before));
phase = 'down';
await cluster('kill-node', String(node));
console.log(`--- node ${node} killed`);
await sleep(Number(a.down));
const tpstats = (await cluster('nodetool', String(survivor), 'tpstats')).stdout;
phase = 'start';
console.log(`--- starting node ${node}`);
await cluster('start-node', String(node));
phase = 'back';
console.log(`--- node ${node} back`);
await sleep(Number(a.after));
stopped = true;
await Promise.all(writers);
clearInterval(ticker);

const mean = (xs) => (xs.length ? Math.round(xs.reduce((x, y) => x + y, 0) / xs.length) : 0);
console.log(`nodetool tpstats of node ${survivor} after ${a.down} s with node ${node} down:`);
const wanted =
  /^(Pool Name|MutationStage|HintsDispatcher|Native-Transport-Requests|RequestResponseStage|Message type)|HINT|MUTATION_/;
console.log(
  tpstats
    .split('\n')
    .filter((l) => wanted.test(l))
    .join('\n'),
);
const summary = variants.map((v) => ({
  variant: v.name,
  concurrency: Number(a.concurrency),
  before: mean(v.phases.before),
  down: mean(v.phases.down),
  downFirst5s: mean(v.phases.down.slice(0, 5)),
  downAfter5s: mean(v.phases.down.slice(5)),
  back: mean(v.phases.back),
}));
for (const s of summary) {
  console.log(
    `${s.variant}: writes/s before ${s.before}, node down ${s.down} (first 5 s ${s.downFirst5s}, then ` +
      `${s.downAfter5s}), back ${s.back}`,
  );
}
console.log(JSON.stringify(summary));
for (const v of variants) await v.store.close();
// Dropped only once the survivors have handed their hints to the node that came back: Cassandra 5.0.8
// dropping a table while its hints are replayed leaves commit log segments of an unknown table on that
// node, and every later schema change through it fails ("Unknown CF") until it is restarted.
for (let i = 0; i < 60; i++) {
  const pending = await Promise.all(
    [1, 2, 3]
      .filter((n) => n !== node)
      .map(async (n) => (await cluster('nodetool', String(n), 'listpendinghints')).stdout),
  );
  if (pending.every((out) => !/\d+\.\d+\.\d+\.\d+/.test(out))) break;
  await sleep(2);
}
await ddl(`DROP KEYSPACE IF EXISTS ${a.keyspace}`);
