#!/usr/bin/env node
// @ts-check
// What digest authentication costs the small-UDP path: the real server (bin/ec-server.js, SQLite,
// synchronous=FULL) under the same closed-loop sipp load with and without credentials, alternated
// in one run (the machine is shared: only ratios measured side by side mean anything).
//
//   npm run bench:auth [-- --rounds R] [-- --calls C] [-- --concurrency L] [-- --cpu-prof DIR] [-- --pin]
//
// Load: 2 sipp processes, each one meter (device) running C/2 calls of 100 MESSAGEs (10 records,
// ~200-byte body), L calls at a time per process. Authenticated: each call answers one 401 and
// reuses the nonce with rising nonce counts (bench/sipp/auth-loop.xml, MD5 for sipp 3.6), as a
// meter does; baseline: the same messages without credentials (bench/sipp/plain-loop.xml).
// Prints per round the acknowledged MESSAGE/s and the server's CPU per MESSAGE (all threads, and
// the event loop's thread alone) and sipp's CPU per MESSAGE (sipp computes MD5 digests too, on the
// same cores), and the ratios auth/plain of the medians. Exit 1 when a store holds fewer rows than
// the MESSAGEs acknowledged. --cpu-prof DIR: each server writes a V8 CPU profile there.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countRows, startEcServer } from './lib/targets.mjs';
import { BENCH_DIR, REPO, clockTicks, cpuSeconds, log, table } from './lib/util.mjs';

/**
 * CPU seconds of this process's reaped children (cutime + cstime, fields 16-17 of proc(5)): the
 * sipp processes once they have exited, since the server (also a child) is reaped only later.
 */
function childrenCpuSeconds() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / clockTicks();
}

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const ROUNDS = arg('rounds', 3);
const CALLS = arg('calls', 2000);
const CONCURRENCY = arg('concurrency', 50);
const MESSAGES_PER_CALL = 100;
const PROCS = 2;
const WORK = join(BENCH_DIR, '.work', 'auth-ratio');
const profileAt = process.argv.indexOf('--cpu-prof');
const PROFILE_DIR = profileAt > 0 ? process.argv[profileAt + 1] : undefined;
// --pin: the server (all its threads) on CPU 0, the sipp processes on CPU 1, so that the server is the limit and
// the ratio says what the server's work costs, not what the whole machine (sipp's MD5 included) costs.
const PIN = process.argv.includes('--pin');

/** One injection row per call: a second of its own, so that no two batches share a key. */
function injection(file, device, firstSecond, calls) {
  const rows = ['SEQUENTIAL'];
  for (let i = 0; i < calls; i++) {
    const stamp = new Date((firstSecond + i) * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
    rows.push(`${device};${stamp}`);
  }
  writeFileSync(file, rows.join('\n') + '\n');
}

/** Runs one sipp process to completion; resolves with its successful calls. */
function sipp(port, scenario, inf, calls, auth) {
  const args = [
    `127.0.0.1:${port}`,
    ...['-sf', join(BENCH_DIR, 'sipp', scenario), '-inf', inf, '-t', 'u1', '-i', '127.0.0.1', '-p', '0'],
    ...['-m', String(calls), '-l', String(CONCURRENCY), '-r', '1000', '-nostdin', '-timeout', '300s'],
    ...(auth ? ['-au', auth.device, '-ap', auth.secret] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = PIN
      ? spawn('taskset', ['-c', '1', 'sipp', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(out);
      const ok = m ? Number(m[1]) : code === 0 ? calls : 0;
      if (code !== 0) log(`sipp ${scenario} exited ${code}: ${ok} of ${calls} calls succeeded`);
      resolve(ok);
    });
  });
}

async function round(kind, r) {
  const dataDir = join(WORK, `${kind}-${r}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const devices = Array.from({ length: PROCS }, (_, i) => `${kind}-${i}`);
  const secrets = devices.map((d) =>
    kind === 'auth'
      ? execFileSync(process.execPath, [join(REPO, 'bin/ec-server.js'), 'device', 'add', d, '--data-dir', dataDir], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        }).trim()
      : '',
  );
  const server = await startEcServer({
    dataDir,
    extraNodeArgs: PROFILE_DIR
      ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${kind}-${r}.cpuprofile`]
      : [],
    extraArgs:
      kind === 'auth' ? ['--set', 'security.require_auth=true', '--set', 'security.digest_algorithms=MD5,SHA-256'] : [],
  });
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', '0', String(server.pid)], { stdio: 'ignore' });
  const perProc = Math.floor(CALLS / PROCS);
  const infs = devices.map((d, i) => {
    const f = join(dataDir, `${d}.csv`);
    injection(f, d, Date.UTC(2026, 0, 1) / 1000 + i * 1_000_000, perProc);
    return f;
  });
  const cpu0 = cpuSeconds(server.pid) ?? 0;
  const main0 = cpuSeconds(server.pid, server.pid) ?? 0;
  const sipp0 = childrenCpuSeconds();
  const started = Date.now();
  const oks = await Promise.all(
    devices.map((d, i) =>
      sipp(
        server.port,
        `${kind}-loop.xml`,
        infs[i],
        perProc,
        kind === 'auth' ? { device: d, secret: secrets[i] } : undefined,
      ),
    ),
  );
  const seconds = (Date.now() - started) / 1000;
  const cpu = (cpuSeconds(server.pid) ?? 0) - cpu0;
  const main = (cpuSeconds(server.pid, server.pid) ?? 0) - main0;
  const sippCpu = childrenCpuSeconds() - sipp0;
  await server.stop();
  const acked = oks.reduce((a, b) => a + b, 0) * MESSAGES_PER_CALL;
  const stored = countRows(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
  return {
    kind,
    round: r + 1,
    rate: acked / seconds,
    cpuUs: (cpu / acked) * 1e6,
    mainUs: (main / acked) * 1e6,
    sippUs: (sippCpu / acked) * 1e6,
    acked,
    stored,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

log(
  `auth-ratio: ${ROUNDS} rounds x (plain, auth), ${CALLS} calls x ${MESSAGES_PER_CALL} MESSAGEs, ` +
    `${PROCS} sipp x ${CONCURRENCY} calls${PIN ? ', server pinned to CPU 0, sipp to CPU 1' : ''}`,
);
const results = [];
let lost = false;
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of ['plain', 'auth']) {
    const res = await round(kind, r);
    results.push(res);
    if (res.stored < res.acked) lost = true;
    log(
      `${kind} round ${res.round}: ${res.rate.toFixed(0)} MESSAGE/s, server ${res.cpuUs.toFixed(1)} us CPU/msg ` +
        `(event loop ${res.mainUs.toFixed(1)}), sipp ${res.sippUs.toFixed(1)} us CPU/msg, ` +
        `stored ${res.stored}/${res.acked} acknowledged`,
    );
  }
}
const of = (kind, key) => median(results.filter((x) => x.kind === kind).map((x) => x[key]));
process.stdout.write(
  table(
    ['', 'MESSAGE/s (median)', 'server us CPU/msg', 'event loop us/msg', 'sipp us CPU/msg'],
    ['plain', 'auth'].map((k) => [
      k,
      of(k, 'rate').toFixed(0),
      of(k, 'cpuUs').toFixed(1),
      of(k, 'mainUs').toFixed(1),
      of(k, 'sippUs').toFixed(1),
    ]),
  ) + '\n',
);
log(
  `ratio auth/plain: rate ${(of('auth', 'rate') / of('plain', 'rate')).toFixed(3)}, ` +
    `server CPU per message ${(of('auth', 'cpuUs') / of('plain', 'cpuUs')).toFixed(3)}, ` +
    `sipp CPU per message ${(of('auth', 'sippUs') / of('plain', 'sippUs')).toFixed(3)}`,
);
if (lost) {
  log('a store held fewer rows than the MESSAGEs acknowledged');
  process.exitCode = 1;
}
