// @ts-check
// BENCH_PIN_STORE=1 (bench:quick / bench with a Cassandra target, bench:overload --target): the store's
// JVMs on CPU 0, this process on the other CPUs. Every receiver, sipp and raw-driver client the bench starts
// afterwards inherits this process's CPUs, so the store runs on a core of its own, as it does on its own
// machines in production (docs/scaling.md), and the receiver does not take the node's CPU or the reverse.
// Without it, on this 2-core machine the node, the receiver and sipp share both cores, and the ratio
// ec-server / raw driver measures how the three split two cores more than what the receiver costs.
// Every process gets its CPUs back when the bench ends (the development node is shared).
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { log } from './util.mjs';

export const PIN_STORE = process.env.BENCH_PIN_STORE === '1';
/**
 * BENCH_SIPP_WITH_STORE=1 (with BENCH_PIN_STORE=1): sipp runs on CPU 0 beside the store, so that the receiver
 * has CPU 1 to itself. On this 2-core machine sipp, the receiver and the node cannot each have a core; past
 * ~1.5x the node's capacity sipp sends and reads as many datagrams as the receiver, and on the receiver's
 * core it takes what the receiver needs to read and refuse them. A fleet runs on other machines, and so do
 * the nodes: either way one of them shares, and this choice gives the node less (a lower capacity) and the
 * receiver all of its core.
 */
export const SIPP_WITH_STORE = PIN_STORE && process.env.BENCH_SIPP_WITH_STORE === '1';

/** A sipp process just started: on CPU 0 when BENCH_SIPP_WITH_STORE=1, else where the bench runs. */
export function pinSipp(pid) {
  if (!SIPP_WITH_STORE || !pid) return;
  try {
    setCpus(pid, '0');
  } catch (e) {
    log(`BENCH_SIPP_WITH_STORE: could not pin sipp ${pid} (${e.message}); it runs where the bench does`);
  }
}

/** `taskset -a -p -c <cpus> <pid>`: every thread of the process (threads created later inherit). */
function setCpus(pid, list) {
  execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' });
}

/** The process's CPU list now (`taskset -c -p`: "pid 123's current affinity list: 0,1"). */
function cpusOf(pid) {
  const out = execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' });
  const list = /list:\s*(\S+)/.exec(out)?.[1];
  if (!list) throw new Error(`taskset -c -p ${pid}: ${out.trim()}`);
  return list;
}

/**
 * Pins when BENCH_PIN_STORE=1: returns a description for the report (undefined when not pinned) and
 * an undo that gives every process its CPUs back. The undo also runs when the bench exits (an error,
 * Ctrl-C), so that the shared development node is never left on one core.
 */
export function pinStore(jvmPids) {
  if (!PIN_STORE) return { pinned: undefined, undo: () => {} };
  const n = cpus().length;
  if (n < 2) throw new Error('BENCH_PIN_STORE=1 needs at least 2 CPUs');
  if (jvmPids.length === 0) throw new Error('BENCH_PIN_STORE=1: no Cassandra JVM found to pin');
  const rest = n === 2 ? '1' : `1-${n - 1}`;
  /** @type {[number, string][]} */
  const before = [];
  let undone = false;
  const undo = () => {
    if (undone) return;
    undone = true;
    process.removeListener('exit', undo);
    for (const [pid, list] of before) {
      try {
        setCpus(pid, list);
      } catch {
        /* the process has exited */
      }
    }
  };
  process.on('exit', undo);
  try {
    for (const pid of [...jvmPids, process.pid]) {
      before.push([pid, cpusOf(pid)]);
      setCpus(pid, pid === process.pid ? rest : '0');
    }
  } catch (e) {
    undo();
    throw e;
  }
  const jvms = `${jvmPids.length} JVM${jvmPids.length > 1 ? 's' : ''}`;
  const pinned = SIPP_WITH_STORE
    ? `Cassandra (${jvms}) and sipp on CPU 0; receiver and raw driver on CPU ${rest}`
    : `Cassandra (${jvms}) on CPU 0; receiver, sipp and raw driver on CPU ${rest}`;
  log(`pinned: ${pinned}`);
  return { pinned, undo };
}
