// @ts-check
// The Cassandra targets of `npm run bench` (BENCH_TARGETS=cassandra,cassandra3): per target (one at a
// time, so that an idle cluster does not load the single node's run) and scenario, ec-server's ramp
// with storage.backend=cassandra (a fresh server per step, the tables emptied before it, the rows
// counted after it), then in the same run the raw driver baseline (bench/lib/cassandra.mjs):
//   - the same rows written as the store writes them, at the same consistency, with as many in flight
//     as ec-server's writer had at most during the ramp's best step (its stop log: `writes`): the ratio;
//   - the same with as many in flight as the writer held on average (its time-weighted mean, rounded up):
//     by Little's law the closed loop that keeps the node as busy as the writer did. Meters arrive spread
//     in time, so the writer's peak is a burst and its mean is what the node saw; a node costs more CPU per
//     row the fewer writes it holds (docs/performance.md), so this ratio says what the receiver loses
//     against Cassandra at the load it gave it, the one above what an equally bursty closed loop would get;
//   - the same at a fixed high concurrency (BENCH_CASSANDRA_CAPACITY_C, 256): what the node(s) take
//     when the client is not the limit;
// The rows are live (dated now: liveStamp), as a meter fleet's are; the bench's 2024 stamp would make
// every write late (a read and two more writes each). BENCH_CASSANDRA_LATE=1 adds a raw run of late
// rows at the writer's concurrency, to show what that path costs.
import { join } from 'node:path';
import {
  CASSANDRA_TARGETS,
  CONSISTENCY,
  benchClient,
  countRows,
  dropKeyspace,
  ensureCassandra,
  jvmPids,
  liveStamp,
  rawDriverRate,
  serverArgs,
  truncate,
} from './cassandra.mjs';
import { pinStore } from './pin.mjs';
import { removeDataDir, startEcServer } from './targets.mjs';
import { fmtInt, fmtMb, fmtNum, log, markdownTable, table } from './util.mjs';

/** First ramp levels against Cassandra (MESSAGE/s or meters): well under the embedded store's. */
const START = { 'small-udp': 1000, 'large-tcp': 50, fleet: 50 };
/**
 * Quick mode's 6 steps at x1.5 climb 7.6x from the start: started at 50, large-TCP and fleet on one
 * node ran out of steps at 410 while passing (2026-12-03, quiet). Started nearer the limits seen then.
 */
const QUICK_START = {
  cassandra: { 'small-udp': 1500, 'large-tcp': 300, fleet: 300 },
  cassandra3: { 'small-udp': 750, 'large-tcp': 100, fleet: 100 },
};
/**
 * With BENCH_PIN_STORE=1 the receiver has a core of its own: one node passed small UDP at 7,650/s and large
 * rows at 1,530/s from the starts above (2026-12-04), with no steps left to bisect. Started nearer.
 */
const QUICK_START_PINNED = { ...QUICK_START, cassandra: { 'small-udp': 3000, 'large-tcp': 600, fleet: 600 } };
const CAPACITY_C = Number(process.env.BENCH_CASSANDRA_CAPACITY_C || 256);

export const isCassandraTarget = (id) => Object.hasOwn(CASSANDRA_TARGETS, id);

/** A fresh ec-server per step on the target, its rows counted against what sipp saw acknowledged. */
function provider(t, client, sc, work, checkStored, failures) {
  let n = 0;
  return {
    kind: `ec-server+${t.id}`,
    warmup: true,
    async open() {
      await truncate(client, t);
      const server = await startEcServer({
        dataDir: join(work, `data-${t.id}-${sc.id}-${++n}`),
        extraArgs: serverArgs(t),
        // the `stopped` line (info) carries the writer's concurrency
        logLevel: 'info',
      });
      return { ...server, kind: `ec-server+${t.id}`, storePids: () => jvmPids(t), stamp: liveStamp };
    },
    async close(server, step) {
      const stopped = await server.stop();
      stopped.storedRows = await countRows(client, t);
      step.peakRssKb = stopped.peakRssKb ?? step.peakRssKb;
      step.writes = stopped.counters?.writes;
      step.check = checkStored(
        `ec-server ${t.id} ${sc.id} step ${step.step}`,
        stopped,
        step.acked + (step.warmupAcked ?? 0),
        failures,
      );
      removeDataDir(server.dataDir);
    },
  };
}

/** One raw baseline run on emptied tables, logged. */
async function raw(client, t, sc, opts, waitQuiet) {
  await truncate(client, t);
  await waitQuiet(() => jvmPids(t));
  const r = await rawDriverRate(client, t, { nRecords: sc.records, ...opts });
  log(
    `  raw driver ${t.id} ${sc.id}, ${opts.mode ?? 'live'} rows as the store writes them, ` +
      `${opts.concurrency} in flight, ${CONSISTENCY}: ${fmtInt(r.rowsPerS)} rows/s (${fmtInt(r.samplesPerS)} ` +
      `samples/s), p50/p99 ${fmtNum(r.p50, 1)}/${fmtNum(r.p99, 1)} ms, ${r.errors} errors; driver CPU ` +
      `${fmtInt(r.driverCpuPct)}%, Cassandra CPU ${fmtInt(r.cassandraCpuPct)}%`,
  );
  return r;
}

/**
 * Runs every Cassandra target in `targetIds` over the scenarios; results in report.cassandra[target][scenario].
 * ramp, checkStored and waitQuiet are bench/run.mjs's own.
 */
export async function runCassandraTargets({
  targetIds,
  scenarios,
  cfg,
  work,
  report,
  failures,
  ramp,
  checkStored,
  waitQuiet,
}) {
  report.cassandra = {};
  for (const id of targetIds.filter(isCassandraTarget)) {
    const t = CASSANDRA_TARGETS[id];
    const out = (report.cassandra[id] = {
      title: t.title,
      hosts: t.hosts,
      consistency: CONSISTENCY,
      /** @type {string | undefined} */
      pinned: undefined,
      scenarios: {},
    });
    let undo = async () => {};
    let client;
    try {
      const stop = await ensureCassandra(t);
      const pin = pinStore(jvmPids(t));
      out.pinned = pin.pinned;
      undo = async () => {
        pin.undo();
        await stop();
      };
      client = await benchClient(t);
      for (const sc of scenarios) {
        log(`== ${sc.title} on ${t.title}, ${CONSISTENCY}`);
        try {
          const quick = out.pinned ? QUICK_START_PINNED : QUICK_START;
          const start = (cfg.quick && quick[id]?.[sc.id]) || START[sc.id];
          const res = await ramp(provider(t, client, sc, work, checkStored, failures), sc, start);
          const w = res.best?.writes ?? res.steps.find((s) => s.writes)?.writes;
          const c = Math.max(1, Math.round(w?.peakInFlight ?? 64));
          const base = { seconds: cfg.rawS, tag: `raw${sc.id}` };
          const same = await raw(client, t, sc, { ...base, concurrency: c }, waitQuiet);
          const m = Math.max(1, Math.ceil(w?.meanInFlight ?? c));
          const mean = m === c ? same : await raw(client, t, sc, { ...base, concurrency: m }, waitQuiet);
          const capacity = await raw(client, t, sc, { ...base, concurrency: CAPACITY_C }, waitQuiet);
          const late =
            process.env.BENCH_CASSANDRA_LATE === '1'
              ? await raw(client, t, sc, { ...base, concurrency: c, mode: 'late' }, waitQuiet)
              : undefined;
          out.scenarios[sc.id] = { ec: res, writes: w, raw: { same, mean, capacity, late } };
        } catch (e) {
          failures.push(`${id} ${sc.id}: ${e.stack ?? e}`);
          log(`  ERROR in ${id} ${sc.id}: ${e.stack ?? e}`);
        }
      }
    } catch (e) {
      failures.push(`${id}: ${e.stack ?? e}`);
      log(`  ERROR on ${id}: ${e.stack ?? e}`);
    } finally {
      if (client) {
        await dropKeyspace(client, t).catch(() => {});
        await client.shutdown();
      }
      await undo();
    }
  }
}

/** Rows per request of the writer (unlogged batches of small rows: CassandraStore.writeUnits), when logged. */
function perRequest(w) {
  return w.requests > 0 ? `, ${fmtNum(w.rows / w.requests, 1)} rows/request` : '';
}

/**
 * What limited the ramp, from its first failing step: which process had the CPU, and the reasons. The
 * writer's limit adapts to the store's latency (it grows while writes come back fast), so a writer that
 * reached its limit (if only in a burst) says the node answered slowly (a stall, a flush), not that more
 * concurrency would have helped; below it, the writes in flight are what the meters' arrivals and the
 * store's latency make them.
 */
function limitText(sc, res, nproc) {
  const ff = res.firstFail;
  if (!ff) return res.generatorLimited ? 'sipp saturated' : 'not reached (out of ramp steps)';
  const busy = ff.machineBusyPct * nproc;
  const sipp = ff.sippCpuPct.reduce((a, b) => a + b, 0);
  const cpu =
    `receiver ${fmtInt(ff.serverCpuPct)}% (main ${fmtInt(ff.mainThreadCpuPct)}%), Cassandra ` +
    `${fmtInt(ff.storeCpuPct)}%, sipp ${fmtInt(sipp)}%, all ${fmtInt(busy)}% of ${nproc * 100}%`;
  let what;
  if ((ff.mainThreadCpuPct ?? 0) >= 85) what = "the receiver's event loop";
  else if (busy >= 90 * nproc) what = `the machine's ${nproc} cores`;
  else if ((ff.storeCpuPct ?? 0) >= 90) what = `Cassandra CPU (${fmtInt(ff.storeCpuPct)}% of a core)`;
  else if (ff.writes && ff.writes.peakInFlight >= ff.writes.maxLimit)
    what = `Cassandra latency (the writer reached its limit, ${ff.writes.maxLimit} in flight)`;
  else what = 'Cassandra latency';
  const at = `${fmtInt(ff.level)}${sc.kind === 'rate' ? '/s' : ' meters'}`;
  return `${what}: ${cpu}; at ${at}: ${ff.reasons.slice(0, 2).join('; ')}`;
}

/** The Cassandra table of the bench's summary (text and markdown), or undefined when none ran. */
export function summarizeCassandra(report, allScenarios) {
  if (!report.cassandra || Object.keys(report.cassandra).length === 0) return undefined;
  const header = [
    'scenario',
    'store',
    'ec-server',
    'raw driver, writer peak in flight',
    'ec/raw',
    'raw driver, writer mean in flight',
    'ec/raw mean',
    `raw driver, ${CAPACITY_C} in flight`,
    `ec/raw ${CAPACITY_C}`,
    'writer in flight mean/peak (limit)',
    'ec p50/p99 ms',
    'receiver CPU (main)',
    'Cassandra CPU',
    'receiver peak RSS',
    'stored/acked',
    'limited by (first failing step)',
  ];
  const rows = [];
  for (const [id, tr] of Object.entries(report.cassandra)) {
    for (const sc of allScenarios) {
      const r = tr.scenarios[sc.id];
      if (!r) continue;
      const b = r.ec.best;
      const ge = r.ec.generatorLimited || r.ec.maxNotReached ? '>= ' : '';
      const ecRows = b ? (sc.kind === 'rate' ? b.throughput : b.level) : undefined;
      const ratio = (x) => (b && x ? `${ge}${fmtNum(b.samplesPerS / x.samplesPerS)}` : '-');
      const rawTxt = (x) => `${fmtInt(x.rowsPerS)}/s (${x.concurrency}; p50 ${fmtNum(x.p50, 0)} ms)`;
      const acked = [...r.ec.steps].map((s) => s.check).filter(Boolean);
      const stored = acked.reduce((a, c) => a + c.storedRows, 0);
      const ackedN = acked.reduce((a, c) => a + c.acked, 0);
      rows.push([
        sc.id,
        tr.pinned ? `${id}, pinned` : id,
        b
          ? `${ge}${fmtInt(ecRows)} ${sc.kind === 'rate' ? 'msg/s' : 'meters'} (${fmtInt(b.samplesPerS)} samples/s)`
          : 'none passed',
        rawTxt(r.raw.same),
        ratio(r.raw.same),
        r.raw.mean ? rawTxt(r.raw.mean) : '-',
        ratio(r.raw.mean),
        rawTxt(r.raw.capacity),
        ratio(r.raw.capacity),
        r.writes
          ? `${fmtNum(r.writes.meanInFlight, 1)}/${r.writes.peakInFlight} (${r.writes.maxLimit})${perRequest(r.writes)}`
          : '-',
        b ? `${fmtInt(b.p50)}/${fmtInt(b.p99)}` : '-',
        b ? `${fmtInt(b.serverCpuPct)}% (${fmtInt(b.mainThreadCpuPct)}%)` : '-',
        b ? `${fmtInt(b.storeCpuPct)}%` : '-',
        b ? fmtMb(b.peakRssKb) : '-',
        `${fmtInt(stored)}/${fmtInt(ackedN)}${acked.every((c) => c.ok) ? '' : ' FAIL'}`,
        limitText(sc, r.ec, report.machine.nproc),
      ]);
    }
  }
  const note =
    "Cassandra: rates are batches (rows) per second, live rows (dated now) written with the store's prepared " +
    'statements at its consistency; ec/raw compares samples/s; CPU: % of one core.' +
    Object.values(report.cassandra)
      .filter((tr) => tr.pinned)
      .map((tr) => ` Pinned (BENCH_PIN_STORE=1): ${tr.pinned}.`)
      .slice(0, 1)
      .join('');
  return { text: `${table(header, rows)}\n${note}`, markdown: `${markdownTable(header, rows)}\n\n${note}` };
}
