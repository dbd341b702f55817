// What the numbers were measured on, and how busy the whole machine was during a step.
import { execFileSync } from 'node:child_process';
import { cpus, release } from 'node:os';
import { readFileSync } from 'node:fs';
import { REPO } from './util.mjs';

export function machineInfo() {
  let model = 'unknown';
  try {
    model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? model;
  } catch {
    /* not Linux */
  }
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    /* keep os.cpus() */
  }
  const git = (args) => {
    try {
      return execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  };
  const dirty = git(['status', '--porcelain', '--untracked-files=no']);
  let memTotalMb;
  try {
    memTotalMb = Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) / 1024);
  } catch {
    /* not Linux */
  }
  return {
    nproc,
    cpuModel: model,
    memTotalMb,
    kernel: release(),
    node: process.version,
    commit: git(['rev-parse', '--short', 'HEAD']),
    workingTreeModified: dirty === undefined ? undefined : dirty.length > 0,
  };
}

/** /proc/stat totals: busy and steal jiffies over all CPUs. */
function procStat() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, idle: idle + iowait, steal: steal ?? 0, busy: user + nice + system + irq + softirq };
}

/** Whole-machine meter: busy% and steal% of all CPUs (100% = every core) over an interval. */
export function machineMeter() {
  let s0;
  return {
    start() {
      s0 = procStat();
    },
    stop() {
      const s1 = procStat();
      const dt = s1.total - s0.total || 1;
      return { busyPct: (100 * (s1.busy - s0.busy)) / dt, stealPct: (100 * (s1.steal - s0.steal)) / dt };
    },
  };
}
