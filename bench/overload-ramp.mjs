#!/usr/bin/env node
// Overload control, measured: small-UDP MESSAGEs (sipp, T1 500 ms) at fixed rates past what the
// store takes, a fresh server per level, and per level what issue 17 asks to see: the acknowledged
// rate (its plateau: the median of the 200s per second, first 2 s left out), the 503s and
// how fast they came (bench/sipp/small-udp-shed.xml ends a call on a 503, as a meter that then
// waits for Retry-After would), the retransmissions as a share of the calls, the server's own overload refusals,
// and the datagrams
// the kernel dropped because a UDP socket's buffer was full (a server starved of CPU shows there,
// not in its commit queue). Needs `npm run build` and sipp; for Cassandra a node:
//
//   node bench/overload-ramp.mjs --levels 2000,4000,8000 --seconds 10 \
//     --set storage.backend=cassandra --set cassandra.keyspace=ec_bench
//
// Issue 17's must-show 5 in one command (npm run bench:overload): --target cassandra (the development
// node) or cassandra3 (the bench's 3-node RF=3 cluster, started and stopped as by `npm run bench`),
// live rows (dated now, as a meter fleet's), the tables emptied before each level, and a verdict per
// level and overall, exit code 1 on FAIL:
//   - retransmissions under 1 % of the calls;
//   - the 503s answered within the bound: their p99 response time at most ingest.max_wait_ms (250 ms);
//   - the acknowledged plateau held: every level past the one with the highest plateau keeps at least
//     --hold (0.8) of that plateau.
//   npm run bench:overload -- --target cassandra --levels 1000,2000,4000,8000,16000 --seconds 10
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSipp } from './lib/sipp.mjs';
import { SERVER_CONFIG, startEcServer, removeDataDir } from './lib/targets.mjs';
import { machineMeter } from './lib/machine.mjs';
import { BENCH_DIR, cpuMeter, percentile, table } from './lib/util.mjs';
import { rampVerdict } from './lib/overload-verdict.mjs';
import { pinStore } from './lib/pin.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const levels = arg('levels', '2000,4000,8000').split(',').map(Number);
const seconds = Number(arg('seconds', 10));
const sets = process.argv.flatMap((a, i) => (a === '--set' ? ['--set', process.argv[i + 1]] : []));
const targetId = arg('target', undefined);
const hold = Number(arg('hold', 0.8));
// Seconds of load below capacity (WARM_RATE/s, or the level when lower) each fresh server takes before its
// level: overload arrives at a running server, whose code is compiled and whose store connections and
// prepared statements are ready. --warm 0: the level hits a server that has just started (its first
// second is then mostly start-up: docs/performance.md).
const warmS = Number(arg('warm', 2));
const WARM_RATE = 1000;
const cass = targetId ? await import('./lib/cassandra.mjs') : undefined;
const target = cass ? cass.CASSANDRA_TARGETS[targetId] : undefined;
if (targetId && !target) throw new Error(`--target must be one of ${Object.keys(cass.CASSANDRA_TARGETS).join(', ')}`);
const stopStore = target ? await cass.ensureCassandra(target) : async () => {};
const pin = pinStore(target ? cass.jvmPids(target) : []);
const undo = async () => {
  pin.undo();
  await stopStore();
};
const client = target ? await cass.benchClient(target) : undefined;
const serverSets = target ? [...cass.serverArgs(target), ...sets] : sets;
// The bounds the verdict holds the 503s to, resolved by the server's own loader from what its servers get (the
// config file, this environment, the --set overrides): `ingest.max_answer_ms=auto` is 400 on Cassandra, 0 on sqlite.
const { loadConfig } = await import('../dist/src/config/load-config.js');
const overrides = Object.fromEntries(
  serverSets.filter((x) => x !== '--set').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const { maxWaitMs, maxAnswerMs } = loadConfig({ configPath: SERVER_CONFIG, env: process.env, overrides }).config.ingest;

/** UDP receive-buffer drops of the whole machine (/proc/net/snmp, Udp: RcvbufErrors). */
function udpRcvbufErrors() {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n');
  const [head, values] = lines.filter((l) => l.startsWith('Udp:')).map((l) => l.split(/\s+/));
  return Number(values[head.indexOf('RcvbufErrors')]);
}

/**
 * What sipp saw per answer of the 503-accepting scenario (bench/sipp/small-udp-shed.xml), from its
 * -trace_counts and -trace_rtt files: how many 503s, and the response times of 200s and of 503s.
 */
function answers(sippDir) {
  const out = { shed: 0, okMs: [], shedMs: [], okPerSecond: [] };
  for (const p of readdirSync(sippDir)) {
    const dir = join(sippDir, p);
    for (const f of readdirSync(dir)) {
      const lines = readFileSync(join(dir, f), 'latin1').trim().split('\n');
      if (f.endsWith('_counts.csv')) {
        const head = lines[0].split(';');
        const last = lines[lines.length - 1].split(';');
        head.forEach((h, i) => {
          if (/_503_Recv$/.test(h)) out.shed += Number(last[i]) || 0;
        });
      } else if (f.endsWith('_rtt.csv')) {
        for (const line of lines) {
          const [at, ms, rtd] = line.split(';');
          if (!/^\d/.test(at ?? '')) continue;
          if (rtd === 'shed') out.shedMs.push(Number(ms));
          else {
            out.okMs.push(Number(ms));
            const second = Math.floor(Number(at) / 1000);
            out.okPerSecond[second] = (out.okPerSecond[second] ?? 0) + 1;
          }
        }
      }
    }
  }
  out.okMs.sort((a, b) => a - b);
  out.shedMs.sort((a, b) => a - b);
  return out;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}

const rows = [];
for (const level of levels) {
  const dataDir = join(BENCH_DIR, '.work', `overload-${level}-${Date.now()}`);
  if (client) await cass.truncate(client, target);
  const server = await startEcServer({ dataDir, extraArgs: serverSets, logLevel: 'info' });
  const warm =
    warmS > 0
      ? await runSipp({
          scenario: 'small-udp-shed.xml',
          port: server.port,
          transport: 'u1',
          run: `ovw${process.pid % 10000}x${level}`,
          workDir: join(dataDir, 'sipp-warm'),
          rate: Math.min(level, WARM_RATE),
          calls: Math.min(level, WARM_RATE) * warmS,
          timeoutS: warmS + 60,
          stamp: target ? cass.liveStamp(warmS) : undefined,
        })
      : undefined;
  const machine = machineMeter();
  const receiverCpu = cpuMeter(() => [server.pid]);
  const storeCpu = target ? cpuMeter(() => cass.jvmPids(target)) : undefined;
  machine.start();
  receiverCpu.start();
  storeCpu?.start();
  const drops0 = udpRcvbufErrors();
  const r = await runSipp({
    scenario: 'small-udp-shed.xml',
    port: server.port,
    transport: 'u1',
    run: `ovl${process.pid % 10000}x${level}`,
    workDir: join(dataDir, 'sipp'),
    rate: level,
    calls: level * seconds,
    timeoutS: seconds + 60,
    // live rows against Cassandra (a 2024 date makes every write a late one: bench/lib/cassandra.mjs)
    stamp: target ? cass.liveStamp(seconds) : undefined,
  });
  const drops = udpRcvbufErrors() - drops0;
  const mach = machine.stop();
  const receiver = receiverCpu.stop();
  const store = storeCpu?.stop();
  const stopped = await server.stop();
  if (process.env.BENCH_KEEP_DATA === '1') writeFileSync(join(dataDir, 'ec-server.log'), server.output());
  const stored = client ? await cass.countRows(client, target) : undefined;
  const a = answers(join(dataDir, 'sipp'));
  if (process.env.BENCH_KEEP_DATA !== '1') removeDataDir(dataDir);
  const calls = level * seconds;
  const row = {
    level,
    ok: r.ok200,
    // 200s per second of the run (by when they came), the first 2 s (start-up) left out.
    plateau: median(Array.from(a.okPerSecond.slice(2, seconds), (n) => n ?? 0)),
    refused503: a.shed,
    overloaded: stopped.counters?.commits?.overloaded,
    failed: r.failed,
    retrans: r.retrans,
    retransPct: (100 * r.retrans) / calls,
    p50: percentile(a.okMs, 50),
    p99: percentile(a.okMs, 99),
    shedP50: percentile(a.shedMs, 50),
    shedP99: percentile(a.shedMs, 99),
    udpDrops: drops,
    machineBusyPct: mach.busyPct,
    receiverCpuPct: receiver.cpuPct,
    cassandraCpuPct: store?.cpuPct,
    peakRssKb: stopped.peakRssKb,
    writes: stopped.counters?.writes,
    // The warm-up's 200s are stored too: stored >= warmOk + ok.
    warmOk: warm?.ok200 ?? 0,
    stored,
  };
  rows.push(row);
  process.stdout.write(`${JSON.stringify(row)}\n`);
}
process.stdout.write(
  '\n' +
    table(
      [
        'offered/s',
        '200',
        '200/s plateau',
        '503',
        'failed',
        'retrans',
        'retrans % of calls',
        'p50/p99 ms (200)',
        'p50/p99 ms (503)',
        'UDP drops',
        'machine busy',
        'receiver / Cassandra CPU',
        'stored',
      ],
      rows.map((x) => [
        x.level,
        x.ok,
        x.plateau,
        x.refused503,
        x.failed,
        x.retrans,
        x.retransPct.toFixed(2),
        `${x.p50}/${x.p99}`,
        `${x.shedP50 ?? '-'}/${x.shedP99 ?? '-'}`,
        x.udpDrops,
        `${Math.round(x.machineBusyPct ?? 0)}%`,
        `${Math.round(x.receiverCpuPct)}% / ${x.cassandraCpuPct === undefined ? '-' : Math.round(x.cassandraCpuPct)}%`,
        x.stored ?? '-',
      ]),
    ) +
    '\n',
);
if (client) {
  await cass.dropKeyspace(client, target).catch(() => {});
  await client.shutdown();
}
await undo();
const verdict = rampVerdict(rows, { maxWaitMs, maxAnswerMs, hold, retransLimitPct: 1 });
process.stdout.write(`\n${verdict.lines.join('\n')}\n${verdict.pass ? 'PASS' : 'FAIL'}\n`);
if (!verdict.pass) process.exitCode = 1;
