// @ts-check
// Runs sipp (one or several processes splitting the rate) and reads back what it measured:
// -trace_stat (call counters, retransmissions, failures), -trace_counts (per-message counters:
// 200s received), -trace_rtt (every response time, for exact percentiles and the achieved rate).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pinSipp } from './pin.mjs';
import { BENCH_DIR, cpuSeconds, percentile, spawnKept } from './util.mjs';

export const SIPP_DIR = join(BENCH_DIR, 'sipp');

export function sippBinary() {
  try {
    return execFileSync('sh', ['-c', 'command -v sipp'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('sipp is not installed: apt-get install -y sip-tester');
  }
}

export function sippVersion() {
  try {
    return (
      execFileSync(sippBinary(), ['-v'], { encoding: 'utf8' })
        .match(/SIPp v[^\s,]+/)?.[0]
        ?.replace(/\.$/, '') ?? 'unknown'
    );
  } catch (e) {
    return (String(e.stdout ?? '').match(/SIPp v[^\s,]+/) ?? ['unknown'])[0].replace(/\.$/, '');
  }
}

/** Last data row of a ';'-separated sipp CSV as {column: value}. */
function lastRow(file) {
  const lines = readFileSync(file, 'latin1')
    .split('\n')
    .filter((l) => l.trim() !== '');
  if (lines.length < 2) return {};
  const head = lines[0].split(';');
  const row = lines[lines.length - 1].split(';');
  return Object.fromEntries(head.map((h, i) => [h.trim(), row[i]]));
}

/** sipp's "hh:mm:ss:uuuuuu" durations in ms. */
function sippDurationMs(v) {
  const m = /^(\d+):(\d+):(\d+):(\d+)$/.exec(String(v ?? '').trim());
  return m ? (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1000 + Number(m[4]) / 1000 : 0;
}

function num(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

function findFile(dir, suffix) {
  const f = readdirSync(dir).find((n) => n.endsWith(suffix));
  return f ? join(dir, f) : undefined;
}

/** The timestamp of the generated scenarios' batches (bench/sipp/generate.mjs). */
const SCENARIO_STAMP = '20240101000000';

/**
 * One load step. opts:
 *   scenario   file name in bench/sipp
 *   port       target port on 127.0.0.1
 *   transport  u1 | t1 | tn
 *   rate       total calls/s (split over procs)
 *   calls      total calls (split over procs)
 *   limit      max simultaneous calls per process (-l), optional
 *   procs      sipp processes (default 1)
 *   run        unique id of this step (keyword [run]; each process appends "p<i>")
 *   set        { var: value } for -set
 *   stamp      the batches' timestamp (YYYYMMDDhhmmss) instead of the scenario's 20240101000000 (a copy
 *              of the scenario with it is written to workDir: live rows for the Cassandra targets)
 *   workDir    directory for sipp's files
 *   timeoutS   global timeout
 */
export async function runSipp(opts) {
  const procs = opts.procs ?? 1;
  const bin = sippBinary();
  const children = [];
  let scenarioFile = join(SIPP_DIR, opts.scenario);
  if (opts.stamp) {
    mkdirSync(join(opts.workDir, 'scenario'), { recursive: true });
    const copy = join(opts.workDir, 'scenario', opts.scenario);
    writeFileSync(
      copy,
      readFileSync(scenarioFile, 'latin1').replaceAll(`|${SCENARIO_STAMP}|`, `|${opts.stamp}|`),
      'latin1',
    );
    scenarioFile = copy;
  }
  for (let i = 0; i < procs; i++) {
    const dir = join(opts.workDir, `p${i}`);
    mkdirSync(dir, { recursive: true });
    const calls = Math.floor(opts.calls / procs) + (i < opts.calls % procs ? 1 : 0);
    const rate = opts.rate / procs;
    const args = [
      `127.0.0.1:${opts.port}`,
      '-sf',
      scenarioFile,
      '-t',
      opts.transport,
      '-i',
      '127.0.0.1',
      '-r',
      rate.toFixed(3).replace(/\.?0+$/, ''),
      '-m',
      String(calls),
      '-key',
      'run',
      `${opts.run}p${i}`,
      '-nostdin',
      '-trace_stat',
      '-stf',
      join(dir, 'stat.csv'),
      '-fd',
      '1',
      '-trace_counts',
      '-trace_rtt',
      '-rtt_freq',
      '200',
      '-buff_size',
      '4194304',
      '-max_socket',
      String(Math.max(2048, (opts.limit ?? 0) + 512)),
      '-timeout',
      `${opts.timeoutS ?? 120}s`,
      '-timeout_error',
      '-f',
      '5',
      ...(process.env.BENCH_SIPP_TIMER_RESOL ? ['-timer_resol', process.env.BENCH_SIPP_TIMER_RESOL] : []),
    ];
    if (opts.limit) args.push('-l', String(opts.limit));
    // UDP: give up after 0.5+1+2+4 s (instead of sipp's 5 retransmissions, ~11.5 s), so that an
    // overloaded step ends sooner; any retransmission already counts against the step.
    if (opts.transport.startsWith('u')) args.push('-max_non_invite_retrans', '3');
    for (const [k, v] of Object.entries(opts.set ?? {})) args.push('-set', k, String(v));
    const proc = spawnKept(bin, args, { cwd: dir });
    pinSipp(proc.child.pid);
    children.push({ proc, dir, calls, pid: proc.child.pid });
  }
  const t0 = process.hrtime.bigint();
  // Sample sipp's own CPU while it runs: a saturated generator limits the result, not the target.
  // The peak over 1-s windows matters (the average is diluted by the wait for the last answers).
  const samples = children.map(() => []);
  const sampler = setInterval(() => {
    const t = Number(process.hrtime.bigint() - t0) / 1e9;
    children.forEach((c, i) => {
      const s = cpuSeconds(c.pid);
      if (s !== undefined) samples[i].push([t, s]);
    });
  }, 250);
  // Early abort: once a step clearly cannot pass (failures, many retransmissions, or a periodic
  // average response time above the latency limit twice in a row), stop sipp instead of waiting
  // for an overloaded run to play out. Counters then come from the last periodic (1 s) rows.
  let aborted;
  let slowPeriods = 0;
  const monitor = opts.abort
    ? setInterval(() => {
        if (aborted) return;
        let failed = 0;
        let retrans = 0;
        let created = 0;
        let rtMax = 0;
        let elapsed = Infinity;
        for (const c of children) {
          let r;
          try {
            r = lastRow(join(c.dir, 'stat.csv'));
          } catch {
            return;
          }
          failed += num(r['FailedCall(C)']);
          retrans += num(r['Retransmissions(C)']);
          created += num(r['OutgoingCall(C)']);
          rtMax = Math.max(rtMax, sippDurationMs(r['ResponseTime1(P)']));
          elapsed = Math.min(elapsed, Number(process.hrtime.bigint() - t0) / 1e9);
        }
        slowPeriods = rtMax > opts.abort.maxAvgRtMs ? slowPeriods + 1 : 0;
        const a = opts.abort;
        if (elapsed < (a.minS ?? 2)) return;
        // Only when the step can no longer pass, whatever the rest of it does.
        if (failed > 0) aborted = `${failed} failed calls after ${Math.round(elapsed)} s`;
        else if (retrans >= Math.max(20, a.maxRetransShare * a.expectedMessages))
          aborted = `${retrans} retransmissions (${created} calls) after ${Math.round(elapsed)} s`;
        else if (slowPeriods >= 3) aborted = `mean response time ${Math.round(rtMax)} ms for 3 s`;
        if (aborted) for (const c of children) c.proc.child.kill('SIGKILL');
      }, 1000)
    : undefined;
  const exits = await Promise.all(children.map((c) => c.proc.exited));
  clearInterval(sampler);
  if (monitor) clearInterval(monitor);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const peak = (xs) => {
    let best = 0;
    for (let i = 0, j = 0; i < xs.length; i++) {
      while (j < xs.length && xs[j][0] - xs[i][0] < 1) j++;
      if (j < xs.length) best = Math.max(best, (100 * (xs[j][1] - xs[i][1])) / (xs[j][0] - xs[i][0]));
    }
    return best;
  };

  const res = {
    procs,
    offeredRate: opts.rate,
    callsPlanned: opts.calls,
    created: 0,
    successful: 0,
    failed: 0,
    retrans: 0,
    failedMaxUdpRetrans: 0,
    failedTimeoutOnRecv: 0,
    failedUnexpected: 0,
    failedTcp: 0,
    deadCallMsgs: 0,
    outOfCallMsgs: 0,
    messagesSent: 0,
    messageRetrans: 0,
    ok200: 0,
    timeouts200: 0,
    unexpected: 0,
    exitCodes: exits.map((e) => e.code),
    aborted,
    sippCpuPct: samples.map((xs) => (xs.length ? (100 * xs[xs.length - 1][1]) / wall : 0)),
    sippPeakCpuPct: samples.map(peak),
    wallS: wall,
    rtt: [],
    errors: [],
  };
  const sendSpans = [];
  // Per-second timeline over all processes: [s, answered, retransmissions, failed, mean response ms].
  res.timeline = [];
  for (const c of children) {
    try {
      const lines = readFileSync(join(c.dir, 'stat.csv'), 'latin1')
        .split('\n')
        .filter((l) => l.trim());
      const head = lines[0].split(';');
      const ix = (n) => head.indexOf(n);
      lines.slice(1).forEach((l, k) => {
        const f = l.split(';');
        const row = (res.timeline[k] ??= [k, 0, 0, 0, 0]);
        const ok = num(f[ix('SuccessfulCall(P)')]);
        row[1] += ok;
        row[2] += num(f[ix('Retransmissions(P)')]);
        row[3] += num(f[ix('FailedCall(P)')]);
        row[4] = Math.max(row[4], Math.round(sippDurationMs(f[ix('ResponseTime1(P)')])));
      });
    } catch {
      /* no stat file: reported below */
    }
  }
  for (const c of children) {
    const statFile = join(c.dir, 'stat.csv');
    let s = {};
    try {
      s = lastRow(statFile);
    } catch {
      res.errors.push(`no stat file from sipp in ${c.dir}: ${c.proc.output().slice(-1500)}`);
    }
    res.created += num(s['OutgoingCall(C)']);
    res.successful += num(s['SuccessfulCall(C)']);
    res.failed += num(s['FailedCall(C)']);
    res.retrans += num(s['Retransmissions(C)']);
    res.failedMaxUdpRetrans += num(s['FailedMaxUDPRetrans(C)']);
    res.failedTimeoutOnRecv += num(s['FailedTimeoutOnRecv(C)']);
    res.failedUnexpected += num(s['FailedUnexpectedMessage(C)']);
    res.failedTcp += num(s['FailedTcpConnect(C)']) + num(s['FailedTcpClosed(C)']);
    res.deadCallMsgs += num(s['DeadCallMsgs(C)']);
    res.outOfCallMsgs += num(s['OutOfCallMsgs(C)']);
    const countsFile = findFile(c.dir, '_counts.csv');
    if (countsFile) {
      const r = lastRow(countsFile);
      for (const [k, v] of Object.entries(r)) {
        if (/_MESSAGE_Sent$/.test(k)) res.messagesSent += num(v);
        else if (/_MESSAGE_Retrans$/.test(k)) res.messageRetrans += num(v);
        else if (/_200_Recv$/.test(k)) res.ok200 += num(v);
        else if (/_200_Timeout$/.test(k)) res.timeouts200 += num(v);
        else if (/_Unexp$/.test(k)) res.unexpected += num(v);
      }
    }
    const rttFile = findFile(c.dir, '_rtt.csv');
    if (rttFile) {
      let first = Infinity;
      let last = -Infinity;
      let n = 0;
      for (const line of readFileSync(rttFile, 'latin1').split('\n')) {
        const f = line.split(';');
        if (f.length < 3 || !/^\d/.test(f[0])) continue;
        const at = Number(f[0]);
        const rt = Number(f[1]);
        res.rtt.push(rt);
        n++;
        const sent = at - rt;
        if (sent < first) first = sent;
        if (sent > last) last = sent;
      }
      if (last > first) sendSpans.push({ first, last, n });
    }
    if (!countsFile || !rttFile) res.errors.push(`missing sipp output in ${c.dir}: ${c.proc.output().slice(-1500)}`);
  }
  res.rtt.sort((a, b) => a - b);
  // sipp's clock advances in steps (4 ms on the reference machine): smallest non-zero response time.
  res.rttResolutionMs = res.rtt.find((x) => x > 0);
  res.p50 = percentile(res.rtt, 50);
  res.p99 = percentile(res.rtt, 99);
  res.max = res.rtt[res.rtt.length - 1];
  res.samples = res.rtt.length;
  // Achieved send rate: the processes run in parallel, so add their per-process rates
  // (answered requests over the span of their send times).
  res.achievedRate = sendSpans.reduce((s, sp) => s + (sp.n - 1) / Math.max(1e-3, (sp.last - sp.first) / 1000), 0);
  res.rtt = undefined;
  res.output = children.map((c) => c.proc.output().slice(-800)).join('\n---\n');
  return res;
}
