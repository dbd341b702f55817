// @ts-check
// The systems under load: the real ec-server (bin/ec-server.js, SQLite store), a stateless
// Kamailio answering 200 to every MESSAGE (the "what does a SIP stack cost" baseline), and for UDP
// the Node floor (bench/floor/udp-responder.mjs: what one Node event loop costs per datagram).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SERVER_NODE_FLAGS } from '../../dist/src/cli/node-flags.js';
import { BENCH_DIR, REPO, freePort, log, processTree, sleep, spawnKept, statusKb, waitSipReady } from './util.mjs';

const SQLITE_FILE = 'ec-server.sqlite';

/** The node flags ec-server is launched with everywhere (src/cli/node-flags.ts); BENCH_NODE_FLAGS
 * replaces them, e.g. BENCH_NODE_FLAGS= (empty) measures V8's defaults. */
function serverNodeFlags() {
  return process.env.BENCH_NODE_FLAGS !== undefined
    ? process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean)
    : SERVER_NODE_FLAGS;
}

/** Spawns `node args` and waits until it answers a SIP OPTIONS probe on port (or throws). */
async function spawnNodeTarget(name, args, port, timeoutMs) {
  // Each server's sync and HTTP listeners on ports of their own (0: the kernel picks), so that a
  // server still closing, or one another run left, cannot make the next one fail with EADDRINUSE.
  const env = { ...process.env, EC_SYNC_PORT: '0', EC_HTTP_PORT: '0' };
  const proc = spawnKept(process.execPath, args, { cwd: REPO, env });
  const ready = await Promise.race([waitSipReady(port, timeoutMs), proc.exited.then(() => false)]);
  if (!ready) {
    proc.child.kill('SIGKILL');
    throw new Error(`${name} did not become ready on port ${port}:\n${proc.output().slice(-4000)}`);
  }
  return proc;
}

/** SIGTERM, SIGKILL after graceMs, and the exit plus the peak RSS seen just before. */
async function terminate(proc, pid, graceMs) {
  const peakRssKb = statusKb(pid, 'VmHWM');
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  const exit = await proc.exited;
  clearTimeout(timer);
  return { exit, peakRssKb };
}

/** What the bench reads of a single-process target: CPU of the process and of its main thread, RSS. */
function processGauges(pid, port) {
  return {
    port,
    pid,
    pids: () => [pid],
    /** The main thread alone (the event loop); for ec-server the rest is its writer thread, V8 GC helpers, libuv. */
    mainThread: () => [`${pid}/${pid}`],
    peakRssKb: () => statusKb(pid, 'VmHWM'),
    rssKb: () => statusKb(pid, 'VmRSS'),
  };
}

/**
 * Starts the real server as the operators run it. extraNodeArgs e.g. ['--cpu-prof', '--cpu-prof-dir', D].
 * Readiness: its '"port":N' log line (info level) or, at --log-level warn where that line is not
 * printed, a 200 to a SIP OPTIONS probe.
 */
/** The config file every bench server starts with (its settings under the bench's --set overrides). */
export const SERVER_CONFIG = join(REPO, 'config/config.properties');

export async function startEcServer({ dataDir, extraNodeArgs = [], extraArgs = [], logLevel = 'warn' }) {
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const args = [
    ...serverNodeFlags(),
    ...extraNodeArgs,
    // BENCH_EC_NODE_ARGS: extra node flags for a look inside, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    ...(process.env.BENCH_EC_NODE_ARGS ?? '').split(' ').filter(Boolean),
    join(REPO, 'bin/ec-server.js'),
    '--config',
    SERVER_CONFIG,
    '--port',
    String(port),
    '--data-dir',
    dataDir,
    '--log-level',
    logLevel,
    ...extraArgs,
  ];
  const proc = await spawnNodeTarget('ec-server', args, port, 30_000);
  const pid = proc.child.pid;
  return {
    kind: 'ec-server',
    ...processGauges(pid, port),
    dataDir,
    output: proc.output,
    /** SIGTERM, wait for a clean exit, then count what is in the store. */
    async stop() {
      const { exit, peakRssKb } = await terminate(proc, pid, 120_000);
      const lines = proc.output().trim().split('\n');
      // BENCH_KEEP_DATA=1 keeps the server's log beside its data: which rule answered a step's 503s.
      if (process.env.BENCH_KEEP_DATA === '1') writeFileSync(join(dataDir, 'server.log'), proc.output());
      let counters;
      // The server's own view of a stalled store: its `slow commit` warnings (commits over 1 s),
      // with their times, to line up with the load generator's per-second timeline.
      const slowCommits = { count: 0, maxMs: 0, at: [] };
      for (const l of lines) {
        let j;
        try {
          j = JSON.parse(l);
        } catch {
          continue; // not JSON
        }
        if (j.stats || j.commits) counters = { stats: j.stats, commits: j.commits, writes: j.writes };
        if (typeof j.msg === 'string' && j.msg.startsWith('slow commit')) {
          slowCommits.count++;
          slowCommits.maxMs = Math.max(slowCommits.maxMs, j.ms ?? 0);
          if (slowCommits.at.length < 500) slowCommits.at.push({ time: j.time, ms: j.ms, batches: j.batches });
        }
      }
      return {
        exit,
        peakRssKb,
        counters,
        slowCommits,
        storedRows: countRows(dataDir),
        logTail: lines.slice(-5).join('\n'),
      };
    },
  };
}

/** Rows of ec_consumption in a stopped server's SQLite file (the durability cross-check). */
export function countRows(dataDir) {
  const file = join(dataDir, SQLITE_FILE);
  if (!existsSync(file)) return 0;
  const db = new Database(file, { readonly: true });
  try {
    return /** @type {{ n: number }} */ (db.prepare('SELECT count(*) AS n FROM ec_consumption').get()).n;
  } finally {
    db.close();
  }
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin'])) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

/**
 * Kamailio binary; installs Debian's package when missing (needs root), except under CI (where the
 * bench is not meant to run) or BENCH_NO_INSTALL=1. Returns undefined when it cannot be had.
 */
export function ensureKamailio() {
  let bin = which('kamailio');
  if (bin) return bin;
  if (process.env.CI || process.env.BENCH_NO_INSTALL === '1') {
    log('kamailio is not installed and installing is disabled (CI / BENCH_NO_INSTALL=1): Kamailio baseline SKIPPED');
    return undefined;
  }
  if (process.getuid?.() !== 0) {
    log('kamailio is not installed and we are not root: Kamailio baseline SKIPPED (apt-get install -y kamailio)');
    return undefined;
  }
  log('kamailio missing: apt-get install -y kamailio');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'kamailio'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'kamailio'], { stdio: 'inherit', env });
  }
  bin = which('kamailio');
  if (!bin) log('kamailio could not be installed: Kamailio baseline SKIPPED');
  return bin;
}

export function kamailioVersion(bin) {
  try {
    return execFileSync(bin, ['-v'], { encoding: 'utf8' })
      .split('\n')[0]
      .replace(/^version:\s*/, '')
      .trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Kamailio in the foreground (-DD: no daemon, children still forked; -E: log to stderr) with its
 * own pid file and runtime dir under /tmp, on a free port given to the config as BENCH_PORT.
 */
export async function startKamailio(bin, { workers = 2 } = {}) {
  const port = await freePort();
  const runDir = join('/tmp', `ec-bench-kamailio-${process.pid}-${port}`);
  mkdirSync(runDir, { recursive: true });
  const cfg = join(BENCH_DIR, 'kamailio/kamailio.cfg');
  const args = [
    '-f',
    cfg,
    '-DD',
    '-E',
    '-A',
    `BENCH_PORT=${port}`,
    '-A',
    `BENCH_WORKERS=${workers}`,
    '-P',
    join(runDir, 'kamailio.pid'),
    '-Y',
    runDir,
    '-m',
    '256',
    '-M',
    '16',
  ];
  const proc = spawnKept(bin, args, { cwd: runDir });
  const ready = await Promise.race([waitSipReady(port, 20_000), proc.exited.then(() => false)]);
  if (!ready) {
    proc.child.kill('SIGKILL');
    throw new Error(`kamailio did not become ready on port ${port}:\n${proc.output().slice(-4000)}`);
  }
  const pid = proc.child.pid;
  const pids = () => processTree(pid);
  const peak = () => pids().reduce((s, p) => s + (statusKb(p, 'VmHWM') ?? 0), 0);
  return {
    kind: 'kamailio',
    port,
    pid,
    pids,
    /** Sum over the main process and its workers (shared memory is counted once per process). */
    peakRssKb: peak,
    rssKb: () => pids().reduce((s, p) => s + (statusKb(p, 'VmRSS') ?? 0), 0),
    output: proc.output,
    async stop() {
      const peakRssKb = peak();
      proc.child.kill('SIGTERM');
      const timer = setTimeout(() => {
        for (const p of pids()) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }, 15_000);
      const exit = await proc.exited;
      clearTimeout(timer);
      await sleep(200);
      rmSync(runDir, { recursive: true, force: true });
      return { exit, peakRssKb };
    },
  };
}

/**
 * The floor of a Node.js UDP SIP server (bench/floor/udp-responder.mjs): copies the dialog headers
 * into a 200 and sends it, nothing else. Run with ec-server's node flags, like ec-server.
 */
export async function startNodeFloor() {
  const port = await freePort();
  const proc = await spawnNodeTarget(
    'node-floor responder',
    [...serverNodeFlags(), join(BENCH_DIR, 'floor/udp-responder.mjs'), String(port)],
    port,
    20_000,
  );
  const pid = proc.child.pid;
  return {
    kind: 'node-floor',
    ...processGauges(pid, port),
    output: proc.output,
    stop: () => terminate(proc, pid, 15_000),
  };
}

/** Removes a data directory tree left by a scenario (unless BENCH_KEEP_DATA=1). */
export function removeDataDir(dir) {
  if (process.env.BENCH_KEEP_DATA === '1') return;
  if (existsSync(dir) && readdirSync(dir).length >= 0) rmSync(dir, { recursive: true, force: true });
}
