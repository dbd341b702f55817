#!/usr/bin/env node
// Overload control, measured: small-UDP MESSAGEs (sipp, T1 500 ms) at fixed rates past what the
// store takes, a fresh server per level, and per level what issue 17 asks to see: the acknowledged
// rate (its plateau: the median of the per-second 200s, first 2 s left out), the 503s, the
// retransmissions as a share of the calls, the server's own overload refusals, and the datagrams
// the kernel dropped because a UDP socket's buffer was full (a server starved of CPU shows there,
// not in its commit queue). Needs `npm run build` and sipp; for Cassandra a node:
//
//   node bench/overload-ramp.mjs --levels 2000,4000,8000 --seconds 10 \
//     --set storage.backend=cassandra --set cassandra.keyspace=ec_bench
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSipp } from './lib/sipp.mjs';
import { startEcServer, removeDataDir } from './lib/targets.mjs';
import { machineMeter } from './lib/machine.mjs';
import { BENCH_DIR, table } from './lib/util.mjs';

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
    scenario: 'small-udp.xml',
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
  removeDataDir(dataDir);
  const perSecond = r.timeline.slice(2, 2 + seconds - 2).map((t) => t[1]);
  const calls = level * seconds;
  const row = {
    level,
    ok: r.ok200,
    plateau: median(perSecond),
    refused503: r.failedUnexpected,
    overloaded: stopped.counters?.commits?.overloaded,
    retrans: r.retrans,
    retransPct: (100 * r.retrans) / calls,
    p50: r.p50,
    p99: r.p99,
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
        'retrans',
        'retrans % of calls',
        'p50/p99 ms (200)',
        'UDP drops',
        'machine busy',
      ],
      rows.map((x) => [
        x.level,
        x.ok,
        x.plateau,
        x.refused503,
        x.retrans,
        x.retransPct.toFixed(2),
        `${x.p50}/${x.p99}`,
        x.udpDrops,
        `${Math.round(x.machineBusyPct ?? 0)}%`,
      ]),
    ) +
    '\n',
);
