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
 * MiB scavenges are four times rarer and copy the same few ms of requests. Measured with the bench
 * (small UDP, quick mode, same machine, back to back): 21,150 MESSAGE/s sustained without the
 * flag, 25,350 with it; 128 MiB was no better and costs more RSS (docs/performance.md).
 */
export const SEMI_SPACE_MB = 64;
export const SERVER_NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${SEMI_SPACE_MB}`];

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
