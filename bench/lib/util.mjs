// @ts-check
// Small helpers shared by the benchmark: processes, /proc sampling, ports, statistics, formatting.
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = join(BENCH_DIR, '..');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let clkTck;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 nearly everywhere). */
export function clockTicks() {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime+stime of one process (all its threads), or of one thread (tid), in seconds; undefined when gone. */
export function cpuSeconds(pid, tid) {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clockTicks(); // fields 14 and 15 of proc(5)
  } catch {
    return undefined;
  }
}

/** pid and all its descendants (Kamailio forks its workers). */
export function processTree(pid) {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
    } catch {
      /* gone */
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

/** Sum of cpuSeconds over pids (missing ones count 0). A pid given as "P/T" means thread T of P. */
export function treeCpuSeconds(pids) {
  return pids.reduce((s, p) => {
    if (typeof p === 'string') {
      const [pid, tid] = p.split('/');
      return s + (cpuSeconds(pid, tid) ?? 0);
    }
    return s + (cpuSeconds(p) ?? 0);
  }, 0);
}

/** A field of /proc/<pid>/status in kB (VmHWM: peak RSS, VmRSS: current RSS). */
export function statusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU meter over an interval for a set of pids: start() then stop() -> percent of one core. */
export function cpuMeter(pidsFn) {
  let t0, c0, pids;
  return {
    start() {
      pids = pidsFn();
      t0 = process.hrtime.bigint();
      c0 = treeCpuSeconds(pids);
    },
    stop() {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = treeCpuSeconds(pids) - c0;
      return { cpuPct: wall > 0 ? (100 * cpu) / wall : 0, cpuSeconds: cpu, wallSeconds: wall };
    },
  };
}

/** Samples CPU of pids every 250 ms; stop() -> highest % of one core over any ~1-s window. */
export function cpuPeakSampler(pidsFn) {
  const xs = [];
  const t0 = process.hrtime.bigint();
  let pids = pidsFn();
  const take = () => xs.push([Number(process.hrtime.bigint() - t0) / 1e9, treeCpuSeconds(pids)]);
  take();
  const timer = setInterval(take, 250);
  return {
    stop() {
      clearInterval(timer);
      take();
      let best = 0;
      for (let i = 0, j = 0; i < xs.length; i++) {
        while (j < xs.length && xs[j][0] - xs[i][0] < 1) j++;
        if (j < xs.length) best = Math.max(best, (100 * (xs[j][1] - xs[i][1])) / (xs[j][0] - xs[i][0]));
      }
      return best;
    },
  };
}

/** A port free for both UDP and TCP on 127.0.0.1. */
export async function freePort() {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const tcpOk = await new Promise((r) => {
      const s = net.createServer();
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
    });
    if (!tcpOk) continue;
    const udpOk = await new Promise((r) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => r(false));
      s.bind(port, '127.0.0.1', () => s.close(() => r(true)));
    });
    if (udpOk) return port;
  }
  throw new Error('no free port found');
}

/** Sends SIP OPTIONS over UDP until a 200 comes back (the server is ready) or timeout. */
export async function waitSipReady(port, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', () => r(undefined)));
  const local = sock.address().port;
  try {
    for (let i = 0; Date.now() < deadline; i++) {
      const got = new Promise((resolve) => {
        const onMessage = (m) => {
          clearTimeout(t);
          resolve(/^SIP\/2\.0 200/.test(m.toString('latin1')));
        };
        // A server that takes seconds to start (connecting to Cassandra) must not pile up listeners.
        const t = setTimeout(() => {
          sock.off('message', onMessage);
          resolve(false);
        }, 300);
        sock.once('message', onMessage);
      });
      const req =
        `OPTIONS sip:probe@127.0.0.1:${port} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bKprobe${Date.now()}x${i}\r\n` +
        `From: <sip:bench@127.0.0.1:${local}>;tag=p${i}\r\nTo: <sip:probe@127.0.0.1:${port}>\r\n` +
        `Call-ID: probe-${process.pid}-${Date.now()}-${i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: ` +
        `70\r\nContent-Length: 0\r\n\r\n`;
      sock.send(req, port, '127.0.0.1');
      if (await got) return true;
      await sleep(100);
    }
    return false;
  } finally {
    sock.close();
  }
}

/** Children still running: killed when the bench itself is interrupted. */
const live = new Set();
let trapped = false;
function trapSignals() {
  if (trapped) return;
  trapped = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      for (const c of live) {
        for (const p of processTree(c.pid)) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      process.stderr.write(`bench: ${sig}, stopped ${live.size} child process(es)\n`);
      process.exit(130);
    });
  }
}

/** Spawns a child with piped output kept (bounded) in memory. */
export function spawnKept(cmd, args, opts = {}) {
  trapSignals();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  live.add(child);
  child.on('exit', () => live.delete(child));
  let out = '';
  const keep = (d) => {
    out += d;
    if (out.length > 1_000_000) out = out.slice(-500_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, output: () => out, exited };
}

/** Sorted-array percentile (nearest rank). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function fmtInt(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '-';
  return Math.round(n).toLocaleString('en-US');
}

export function fmtNum(n, digits = 2) {
  if (n === undefined || n === null || Number.isNaN(n)) return '-';
  return n.toFixed(digits);
}

export function fmtMb(kb) {
  return kb === undefined ? '-' : `${(kb / 1024).toFixed(0)} MB`;
}

/** Renders rows (arrays of strings) as an aligned text table with a header. */
export function table(header, rows) {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (r) =>
    r
      .map((c, i) => String(c ?? '').padEnd(w[i]))
      .join('  ')
      .trimEnd();
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** Same rows as a Markdown table (for docs/performance.md). */
export function markdownTable(header, rows) {
  const esc = (c) => String(c ?? '').replaceAll('|', '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export function log(...args) {
  const t = new Date().toISOString().slice(11, 19);
  process.stdout.write(`[${t}] ${args.join(' ')}\n`);
}

/** A store row from a parsed template: `device`'s batch of the epoch second `second` (its own key), seq `seq`. */
export function rowAt(template, device, second, seq) {
  const d = new Date(second * 1000).toISOString();
  return {
    ...template,
    device_id: device,
    ec_date: d.slice(0, 10).replaceAll('-', ''),
    ec_time: d.slice(11, 19).replaceAll(':', ''),
    batch_seq: seq,
    insert_time: Date.now(),
  };
}
