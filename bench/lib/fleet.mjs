// @ts-check
// Runs bench/lib/fleet-load.mjs (one process per `procs`, meters split between them) and returns
// its measurements in the shape runSipp returns, so that a bench step treats both alike.
import { join } from 'node:path';
import { BENCH_DIR, spawnKept } from './util.mjs';

export async function runFleetLoad(opts) {
  const procs = opts.procs ?? 1;
  const children = [];
  for (let p = 0; p < procs; p++) {
    const meters = Math.floor(opts.meters / procs) + (p < opts.meters % procs ? 1 : 0);
    const args = {
      host: '127.0.0.1',
      port: opts.port,
      meters,
      seconds: opts.seconds,
      records: opts.records,
      run: `${opts.run}p${p}`,
      ...(opts.stamp ? { stamp: opts.stamp } : {}),
    };
    children.push(spawnKept(process.execPath, [join(BENCH_DIR, 'lib', 'fleet-load.mjs'), JSON.stringify(args)]));
  }
  const exits = await Promise.all(children.map((c) => c.exited));
  // CPU as each generator measured itself (process.cpuUsage over its schedule): the processes have
  // exited by now, so /proc can no longer be read.
  const cpu = [];
  const res = {
    created: 0,
    successful: 0,
    ok200: 0,
    failed: 0,
    retrans: 0,
    messageRetrans: 0,
    messagesSent: 0,
    timeouts200: 0,
    failedTimeoutOnRecv: 0,
    errors: [],
    timeline: [],
    achievedRate: 0,
  };
  const rtt = [];
  children.forEach((c, i) => {
    let out;
    try {
      out = JSON.parse(c.output().trim().split('\n').pop());
    } catch {
      res.errors.push(
        `fleet-load process ${i} exited ${exits[i]?.code ?? exits[i]} without a result: ${c.output().slice(-800)}`,
      );
      return;
    }
    cpu.push(out.cpuPct);
    res.created += out.sent;
    res.messagesSent += out.sent;
    res.ok200 += out.ok200;
    res.successful += out.ok200;
    res.failed += out.failed + out.non200;
    res.timeouts200 += out.timedOut;
    res.achievedRate += out.achievedRate;
    rtt.push([out.p50, out.p99, out.max, out.samples]);
    out.timeline.forEach((r, k) => {
      const t = (res.timeline[k] ??= [k, 0, 0, 0, 0]);
      t[1] += r[1];
      t[3] += r[3];
      t[4] = Math.max(t[4], r[4]);
    });
  });
  // Several processes: the worst process's percentiles (conservative; one process is the usual case).
  res.p50 = Math.max(...rtt.map((x) => x[0] ?? Infinity));
  res.p99 = Math.max(...rtt.map((x) => x[1] ?? Infinity));
  res.max = Math.max(...rtt.map((x) => x[2] ?? Infinity));
  res.samples = rtt.reduce((a, x) => a + (x[3] ?? 0), 0);
  res.rttResolutionMs = 1;
  res.sippCpuPct = cpu;
  res.sippPeakCpuPct = cpu;
  res.output = children.map((c) => c.output().slice(-800)).join('\n---\n');
  return res;
}
