import v8 from 'node:v8';

/**
 * V8 flags ec-server is meant to run with. They must be given to `node` itself (V8 sizes its heap
 * when the process starts; `v8.setFlagsFromString` later has no effect on it), so they are
 * repeated wherever the server is launched: the shebang of bin/ec-server.js, `npm start`,
 * ecosystem.config.cjs, the systemd unit in docs/operations.md, the test helpers and the bench.
 * test/unit/node-flags.test.ts keeps those places in step with this list.
 *
 * Why a larger young generation: every request allocates a few kB that die once its batch is
 * committed, a few milliseconds later. With V8's default 16 MiB semi-space a scavenge runs every
 * ~0.1 s under 25k MESSAGE/s and finds all the requests still waiting for the commit alive, so it
 * copies them (and promotes many to the old generation, which costs a mark-compact later). With 64
 * MiB scavenges are four times rarer and copy the same few ms of requests; 128 MiB was no better
 * and costs more RSS (measured: docs/performance.md, Figures behind the code).
 */
export const SEMI_SPACE_MB = 64;
export const SERVER_NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${SEMI_SPACE_MB}`];

/** Largest semi-space of the young generation of the server's worker threads (the SQLite writer thread). */
export const WORKER_SEMI_SPACE_MB = 8;

/**
 * Sizes the young generation of worker threads started from now on; the event loop's, created
 * long before, stays as it is (V8 reads the flag when it creates an isolate). Without it the writer
 * thread's would grow to the event loop's SEMI_SPACE_MB (128 MiB of new space): its objects live for
 * one transaction, and the larger young generation cost only RSS (docs/storage.md). A flag and
 * not a Worker's resourceLimits: V8 flags are per process, and this one overrides them. Called
 * once by `ec-server start`, where the process is configured, before the server starts its threads.
 */
export function sizeWorkerYoungGeneration(): void {
  v8.setFlagsFromString(`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`);
}

/**
 * The semi-space size this process was started with, in MiB, from node's own arguments or
 * NODE_OPTIONS (the later one wins, as in node); undefined means V8's default.
 */
export function semiSpaceMbInEffect(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): number | undefined {
  let mb: number | undefined;
  for (const a of [...nodeOptions.split(/\s+/), ...execArgv]) {
    const m = /^--max[-_]semi[-_]space[-_]size=(\d+)$/.exec(a);
    if (m) mb = Number(m[1]);
  }
  return mb;
}
