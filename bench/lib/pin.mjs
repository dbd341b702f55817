// @ts-check
// BENCH_PIN_STORE=1 (bench:quick / bench with a Cassandra target, bench:overload --target): the store's
// JVMs on CPU 0, this process on the other CPUs. Every receiver, sipp and raw-driver client the bench starts
// afterwards inherits this process's CPUs, so the store runs on a core of its own, as it does on its own
// machines in production (docs/scaling.md), and the receiver does not take the node's CPU or the reverse.
// Without it, on this 2-core machine the node, the receiver and sipp share both cores, and the ratio
// ec-server / raw driver measures how the three split two cores more than what the receiver costs.
// The JVMs' CPUs are given back when the bench ends (the development node is shared).
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { log } from './util.mjs';

export const PIN_STORE = process.env.BENCH_PIN_STORE === '1';

/** `taskset -a -p -c <cpus> <pid>`: every thread of the process (threads created later inherit). */
function setCpus(pid, list) {
  execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' });
}

/** The CPUs of this machine as a taskset list, e.g. "0-1". */
const all = () => `0-${cpus().length - 1}`;

/**
 * Pins when BENCH_PIN_STORE=1: returns a description for the report (undefined when not pinned) and
 * an undo that gives the JVMs every CPU again.
 */
export function pinStore(jvmPids) {
  if (!PIN_STORE) return { pinned: undefined, undo: () => {} };
  const n = cpus().length;
  if (n < 2) throw new Error('BENCH_PIN_STORE=1 needs at least 2 CPUs');
  const rest = n === 2 ? '1' : `1-${n - 1}`;
  for (const pid of jvmPids) setCpus(pid, '0');
  setCpus(process.pid, rest);
  const jvms = `${jvmPids.length} JVM${jvmPids.length > 1 ? 's' : ''}`;
  const pinned = `Cassandra (${jvms}) on CPU 0; receiver, sipp and raw driver on CPU ${rest}`;
  log(`pinned: ${pinned}`);
  return {
    pinned,
    undo() {
      for (const pid of jvmPids) {
        try {
          setCpus(pid, all());
        } catch {
          /* the JVM has exited */
        }
      }
      setCpus(process.pid, all());
    },
  };
}
