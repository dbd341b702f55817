// @ts-check
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

/**
 * Writes to whole disks from /proc/diskstats (partitions, loop, ram and zram devices left out):
 * completed writes, sectors written (512 bytes each) and milliseconds spent writing.
 */
export function diskWrites() {
  let writes = 0;
  let sectors = 0;
  let ms = 0;
  try {
    for (const line of readFileSync('/proc/diskstats', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      const name = f[2];
      if (
        !name ||
        /^(loop|ram|zram|dm-)/.test(name) ||
        /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+)\d+$|^nvme\d+n\d+p\d+$/.test(name)
      )
        continue;
      writes += Number(f[7]);
      sectors += Number(f[9]);
      ms += Number(f[10]);
    }
  } catch {
    /* not Linux */
  }
  return { writes, sectors, ms };
}

/** Write rate (MB/s) and mean time per write (ms) between two diskWrites() readings `seconds` apart. */
export function diskRate(d0, d1, seconds) {
  const writes = d1.writes - d0.writes;
  return {
    mbps: ((d1.sectors - d0.sectors) * 512) / 1e6 / (seconds || 1),
    msPerWrite: writes > 0 ? (d1.ms - d0.ms) / writes : 0,
  };
}

/**
 * Whole-machine meter over an interval: busy% and steal% of all CPUs (100% = every core), and the
 * disks' write rate and mean time per write (a soak that outruns the disk shows here first).
 */
export function machineMeter() {
  let s0;
  let d0;
  let t0;
  return {
    start() {
      s0 = procStat();
      d0 = diskWrites();
      t0 = performance.now();
    },
    stop() {
      const s1 = procStat();
      const dt = s1.total - s0.total || 1;
      const disk = diskRate(d0, diskWrites(), (performance.now() - t0) / 1000);
      return {
        busyPct: (100 * (s1.busy - s0.busy)) / dt,
        stealPct: (100 * (s1.steal - s0.steal)) / dt,
        diskWriteMBps: disk.mbps,
        diskMsPerWrite: disk.msPerWrite,
      };
    },
  };
}
