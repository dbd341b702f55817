#!/usr/bin/env node
// @ts-check
// Where does ec-server spend its CPU under a given load? Runs the real server under
// `node --cpu-prof`, drives it with one of the bench's sipp scenarios at a fixed level, stops it
// with SIGTERM (the profile is written on exit) and prints the top functions by self time.
//
//   node bench/profile.mjs [--scenario small-udp|large-tcp|fleet] [--level N] [--seconds S] [--top N]
//                          [--set key=value ...]   (server config overrides, e.g. sip.transaction_cache_size=1000000)
//   --no-prof: same run without --cpu-prof (to see the profiler's own cost)
//   --node-arg X: pass X to node after the server's own flags (e.g. --node-arg --max-semi-space-size=32)
//   --memory: also sample the server's memory every 500 ms (bench/lib/memory-sampler.mjs) and print
//             the split of its peak RSS (event loop heap by space, buffers, the rest)
//
// level: MESSAGE/s for small-udp / large-tcp, meters for fleet. The .cpuprofile is kept under
// bench/.work/prof/ (open it in Chrome DevTools > Performance, or speedscope).
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runSipp } from './lib/sipp.mjs';
import { startEcServer, removeDataDir } from './lib/targets.mjs';
import { machineMeter } from './lib/machine.mjs';
import { BENCH_DIR, REPO, cpuMeter, fmtNum, table } from './lib/util.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const scenarioId = arg('scenario', 'small-udp');
const SC = {
  'small-udp': { file: 'small-udp.xml', transport: 'u1', level: 4000, kind: 'rate' },
  'large-tcp': { file: 'large-tcp.xml', transport: 't1', level: 600, kind: 'rate' },
  fleet: { file: 'fleet-tcp.xml', transport: 'tn', level: 300, kind: 'fleet' },
}[scenarioId];
if (!SC) throw new Error(`unknown scenario ${scenarioId}`);
const level = Number(arg('level', SC.level));
const seconds = Number(arg('seconds', 20));
const top = Number(arg('top', 15));

/** Self time per function from a V8 .cpuprofile (samples x sampling interval). */
export function summarizeProfile(file, n = 15) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
  const counts = new Map();
  for (const id of prof.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const total = prof.samples.length;
  const self = new Map();
  for (const [id, c] of counts) {
    const f = byId.get(id).callFrame;
    const where = f.url ? `${relative(REPO, f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${where ? ' ' + where : ''}`;
    self.set(key, (self.get(key) ?? 0) + c);
  }
  const idle = self.get('(idle)') ?? 0;
  self.delete('(idle)');
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]);
  const cats = new Map();
  for (const [k, c] of rows) cats.set(category(k), (cats.get(category(k)) ?? 0) + c);
  const busy = Math.max(1, total - idle);
  return {
    total,
    busyPct: (100 * busy) / total,
    top: rows.slice(0, n).map(([k, c]) => ({ fn: k, selfPct: (100 * c) / total, busyPct: (100 * c) / busy })),
    categories: [...cats.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, c]) => ({ category: k, selfPct: (100 * c) / total, busyPct: (100 * c) / busy })),
  };
}

/** Per-second sipp counters: when did it go wrong? */
function printTimeline(statFile) {
  let rows;
  try {
    rows = readFileSync(statFile, 'latin1')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => l.split(';'));
  } catch {
    return;
  }
  const ix = Object.fromEntries(rows[0].map((h, i) => [h, i]));
  const line = rows
    .slice(1)
    .map((r) => {
      const rt = r[ix['ResponseTime1(P)']].split(':');
      const rtMs = Math.round(Number(rt[3]) / 1000 + Number(rt[2]) * 1000);
      return `${r[ix['SuccessfulCall(P)']]}/${r[ix['Retransmissions(P)']]}/${rtMs}`;
    })
    .join(' ');
  process.stdout.write(`per second (ok/retrans/mean ms): ${line}\n`);
}

/** The memory sample with the highest RSS, split: event loop heap (by space), buffers, the rest. */
function printMemory(file) {
  let samples;
  try {
    samples = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  } catch {
    process.stdout.write('memory: no samples\n');
    return;
  }
  const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
  const rest = peak.rss - peak.heapTotal - peak.arrayBuffers;
  const spaces = Object.entries(peak.spaces)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k.replace(/_space$/, '')} ${v}`)
    .join(', ');
  process.stdout.write(
    `memory at the peak sample (${fmtNum(peak.t / 1000, 1)} s): RSS ${peak.rss} MB = event loop heap ` +
      `${peak.heapTotal} MB (used ${peak.heapUsed}; ${spaces})` +
      ` + array buffers ${peak.arrayBuffers} MB + the rest ${rest} MB (writer thread's heap, SQLite, malloc, code)\n` +
      `RSS every 5 s: ${samples
        .filter((_, i) => i % 10 === 0)
        .map((x) => x.rss)
        .join(' ')}\n`,
  );
}

/** Rough buckets of self time: what part of the pipeline a function belongs to. */
function category(fn) {
  if (/node:internal\/worker|sink-thread\.js|worker-sink\.js/.test(fn))
    return 'hand-off to the SQLite writer thread (postMessage)';
  if (/better-sqlite3|store\/sqlite-(store|schema|writer-worker)/.test(fn))
    return 'SQLite insert + commit (better-sqlite3, native, incl. fsync)';
  if (/node:dgram|udp-transport/.test(fn)) return 'UDP socket I/O';
  if (/node:net|node:stream|node:internal\/stream|tcp-transport|tcp-framer/.test(fn)) return 'TCP socket I/O + framing';
  if (/node_modules\/sip\//.test(fn)) return 'sip package parser';
  if (/crypto/.test(fn)) return 'MD5 (node:crypto)';
  if (/^\(garbage collector\)/.test(fn)) return 'garbage collector';
  if (/^\(program\)/.test(fn)) return '(program: V8/native outside JS)';
  if (/dist\/src\//.test(fn)) return 'ec-server JS (protocol, ingest)';
  if (/pino|node_modules/.test(fn)) return 'other dependencies';
  return 'node internals / other';
}

async function main() {
  const profDir = join(BENCH_DIR, '.work', 'prof', `${scenarioId}-${Date.now()}`);
  mkdirSync(profDir, { recursive: true });
  const dataDir = join(profDir, 'data');
  const sets = process.argv.flatMap((a, i) => (a === '--set' ? ['--set', process.argv[i + 1]] : []));
  const prof = !process.argv.includes('--no-prof');
  // At info the server logs its counters when it stops (transactions, commits); nothing per request.
  const memlog = process.argv.includes('--memory') ? join(profDir, 'memory.jsonl') : undefined;
  if (memlog) process.env.EC_MEMLOG = memlog; // the server inherits the environment
  const server = await startEcServer({
    dataDir,
    extraNodeArgs: [
      ...(prof ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
      ...(memlog ? ['--import', join(BENCH_DIR, 'lib/memory-sampler.mjs')] : []),
      ...process.argv.flatMap((a, i) => (a === '--node-arg' ? [process.argv[i + 1]] : [])),
    ],
    extraArgs: sets,
    logLevel: 'info',
  });
  const cpu = cpuMeter(server.pids);
  const mainCpu = cpuMeter(server.mainThread);
  const machine = machineMeter();
  cpu.start();
  mainCpu.start();
  machine.start();
  const opts = {
    scenario: SC.file,
    port: server.port,
    transport: SC.transport,
    run: `prof${process.pid % 10000}`,
    workDir: join(profDir, 'sipp'),
    ...(SC.kind === 'rate'
      ? { rate: level, calls: Math.round(level * seconds), timeoutS: seconds + 90 }
      : { rate: level, calls: level, limit: level, set: { iters: seconds }, timeoutS: 2 * seconds + 90 }),
  };
  const r = await runSipp(opts);
  const c = cpu.stop();
  const m = mainCpu.stop();
  const mach = machine.stop();
  const stopped = await server.stop();
  removeDataDir(dataDir);
  // One profile per thread: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main one.
  const files = readdirSync(profDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  const file = files.find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)) ?? files[0];
  process.stdout.write(
    `${scenarioId} at ${level}${SC.kind === 'rate' ? ' MESSAGE/s' : ' meters'} for ${seconds} s: sent ` +
      `${fmtNum(r.achievedRate, 0)}/s, ` +
      `ok ${r.ok200}, failed ${r.failed}, retrans ${r.retrans}, p50/p99 ${r.p50}/${r.p99} ms, server CPU ` +
      `${fmtNum(c.cpuPct, 0)}% (main ${fmtNum(m.cpuPct, 0)}%), ` +
      `stored ${stopped.storedRows}, peak RSS ${fmtNum((stopped.peakRssKb ?? 0) / 1024, 0)} ` +
      `MB${sets.length ? ` (server ${sets.join(' ')})` : ''}\n` +
      `sipp CPU ${r.sippCpuPct.map((p) => `${fmtNum(p, 0)}%`).join(' + ')}; machine busy ` +
      `${fmtNum(mach.busyPct, 0)}% of 2 cores, steal ${fmtNum(mach.stealPct, 1)}%, disk ` +
      `${fmtNum(mach.diskWriteMBps, 1)} MB/s at ${fmtNum(mach.diskMsPerWrite, 2)} ms/write\n`,
  );
  const commits = stopped.counters?.commits;
  if (commits) {
    process.stdout.write(
      `commits: ${commits.commits} (${fmtNum(commits.batches / Math.max(1, commits.commits), 0)} batches ` +
        `each), longest ${commits.maxCommitMs} ms, ${commits.slowCommits} over 1 s\n`,
    );
  }
  printTimeline(join(profDir, 'sipp', 'p0', 'stat.csv'));
  if (memlog) printMemory(memlog);
  if (!prof) return;
  if (!file) throw new Error(`no .cpuprofile written in ${profDir}`);
  const s = summarizeProfile(join(profDir, file), top);
  process.stdout.write(
    `profile ${relative(REPO, join(profDir, file))}: main thread busy in ${fmtNum(s.busyPct, 1)}% of samples ` +
      `(the rest idle)\n\n`,
  );
  process.stdout.write(
    table(
      ['% of samples', '% of busy', 'where'],
      s.categories.map((t) => [fmtNum(t.selfPct, 1), fmtNum(t.busyPct, 1), t.category]),
    ) + '\n\n',
  );
  process.stdout.write(
    table(
      ['self % of samples', '% of busy', 'function'],
      s.top.map((t) => [fmtNum(t.selfPct, 1), fmtNum(t.busyPct, 1), t.fn]),
    ) + '\n',
  );
  for (const other of files.filter((f) => f !== file)) {
    const o = summarizeProfile(join(profDir, other), 5);
    process.stdout.write(
      `\nother thread ${other}: busy in ${fmtNum(o.busyPct, 1)}% of samples; top: ` +
        `${o.top.map((t) => `${t.fn} ${fmtNum(t.selfPct, 1)}%`).join(', ')}\n`,
    );
  }
}

if (process.argv[1] && process.argv[1].endsWith('profile.mjs')) {
  main().catch((e) => {
    process.stderr.write(`profile: ${e.stack ?? e}\n`);
    process.exitCode = 1;
  });
}
