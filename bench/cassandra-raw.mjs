#!/usr/bin/env node
// The raw Cassandra insert rate: cassandra-driver alone, no SIP, no group commit, no ec-server.
// The rows, the prepared INSERT (cassandraStatements) and the consistency are the store's; each
// level keeps N inserts in flight (a closed loop: a finished insert starts the next) for --seconds,
// and prints inserts/s and latency percentiles. Every insert has its own key (device per worker,
// one second per insert), as in the small-UDP bench. It needs `npm run build` and a node:
//
//   node bench/cassandra-raw.mjs --concurrency 16,64,256,1024 --seconds 10 [--records 5] [--late]
//
// --late: each insert as the store makes a write into a sync period that has ended (a "late" write,
// sync-period-keys.ts): read the stored row, insert, then write the two re-open marks (ec_checksum);
// compare its rate with a run without --late (live writes pay nothing of that).
//
// The keyspace (ec_rawbench by default) is dropped at the end.
import cassandra from 'cassandra-driver';
import { parseArgs } from 'node:util';
import { records } from './sipp/generate.mjs';
import { percentile, rowAt } from './lib/util.mjs';

const { cassandraSchemaStatements, cassandraStatements, cassandraUpsertParams } =
  await import('../dist/src/store/cassandra-store.js');
const { parseBatchBody } = await import('../dist/src/domain/batch-body.js');

const { values: a } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '16,64,256,1024' },
    seconds: { type: 'string', default: '10' },
    records: { type: 'string', default: '5' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '9042' },
    keyspace: { type: 'string', default: 'ec_rawbench' },
    consistency: { type: 'string', default: 'localQuorum' },
    late: { type: 'boolean', default: false },
  },
});
const levels = a.concurrency.split(',').map(Number);
const seconds = Number(a.seconds);
const ks = a.keyspace;

const client = new cassandra.Client({
  contactPoints: [`${a.host}:${a.port}`],
  localDataCenter: 'datacenter1',
  socketOptions: { readTimeout: 20_000 },
  queryOptions: { consistency: cassandra.types.consistencies[a.consistency], prepare: true, isIdempotent: true },
});
await client.connect();
for (const cql of cassandraSchemaStatements({
  keyspace: ks,
  replication: { class: 'SimpleStrategy', replication_factor: 1 },
  ttlDays: 0,
})) {
  await client.execute(cql, [], { prepare: false, readTimeout: 60_000 });
}
const statements = cassandraStatements(ks);
const insert = statements.upsert;
const { reopenedCheckKeys } = await import('../dist/src/store/sync-period-keys.js');

/** One write: the insert alone, or with --late what CassandraStore.upsertLate does around it. */
async function write(batch) {
  if (!a.late) return client.execute(insert, cassandraUpsertParams(batch, 0));
  const key = [batch.device_id, batch.ec_date, batch.ec_time.slice(0, 2), batch.ec_time, batch.start_us, batch.end_us];
  await client.execute(statements.stored, key);
  await client.execute(insert, cassandraUpsertParams(batch, 0));
  await Promise.all(reopenedCheckKeys(batch, 1800).map((k) => client.execute(statements.reopenCheck, [0, ...k])));
}
const T0 = Date.UTC(2026, 0, 1) / 1000;
/** A row as the server stores it: the small-UDP body parsed by the server's own parser. */
const template = parseBatchBody(`raw|20260101000000|${records(Number(a.records)).join(';')}`);

/** Inserts with `concurrency` in flight for `seconds`; returns the rate and latencies. */
async function level(concurrency, run) {
  const latencies = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  async function worker(w) {
    for (let i = 0; performance.now() < end; i++) {
      const batch = rowAt(template, `raw${run}-${w}`, T0 + i, i);
      const t = performance.now();
      try {
        await write(batch);
        latencies.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  }
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((x, y) => x - y);
  return {
    concurrency,
    inserts: latencies.length,
    errors,
    perSecond: Math.round(latencies.length / elapsed),
    p50: +percentile(latencies, 50).toFixed(1),
    p99: +percentile(latencies, 99).toFixed(1),
  };
}

const results = [];
for (const [run, c] of levels.entries()) {
  const r = await level(c, run);
  results.push(r);
  console.log(
    `concurrency ${r.concurrency}: ${r.perSecond} inserts/s (${r.inserts} in ${seconds} s, ${r.errors} errors), ` +
      `p50 ${r.p50} ms, p99 ${r.p99} ms`,
  );
}
await client.execute(`DROP KEYSPACE IF EXISTS ${ks}`, [], { prepare: false, readTimeout: 60_000 });
await client.shutdown();
console.log(JSON.stringify(results));
