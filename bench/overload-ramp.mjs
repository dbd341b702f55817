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
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSipp } from './lib/sipp.mjs';
import { startEcServer, removeDataDir } from './lib/targets.mjs';
import { machineMeter } from './lib/machine.mjs';
import { BENCH_DIR, percentile, table } from './lib/util.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const levels = arg('levels', '2000,4000,8000').split(',').map(Number);
const seconds = Number(arg('seconds', 10));
const sets = process.argv.flatMap((a, i) => (a === '--set' ? ['--set', process.argv[i + 1]] : []));

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
  const server = await startEcServer({ dataDir, extraArgs: sets, logLevel: 'info' });
  const machine = machineMeter();
  machine.start();
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
  });
  const drops = udpRcvbufErrors() - drops0;
  const mach = machine.stop();
  const stopped = await server.stop();
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
      ]),
    ) +
    '\n',
);
