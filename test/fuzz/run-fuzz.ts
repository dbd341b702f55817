import { outcomes, slowest, TARGETS } from './wire-fuzz.js';

/**
 * `npm run fuzz [-- --runs N] [-- --seed S]`: runs every wire-fuzz target for N inputs in all
 * (default 1,000,000, split evenly), fails on the first input that escapes its typed outcomes or
 * takes too long, and reports the time taken and the slowest input per target.
 */
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const total = Number(arg('runs') ?? 1_000_000);
const seed = Number(arg('seed') ?? Date.now() % 2 ** 31);
let rejections = 0;
process.on('unhandledRejection', (e) => {
  rejections++;
  console.error('unhandled rejection', e);
});

const names = Object.keys(TARGETS);
const perTarget = Math.ceil(total / names.length);
const started = Date.now();
console.log(`fuzz: ${perTarget * names.length} inputs over ${names.join(', ')}; seed ${seed}`);
for (const name of names) {
  const t0 = Date.now();
  TARGETS[name]!(perTarget, seed);
  console.log(
    `  ${name}: ${perTarget} inputs in ${((Date.now() - t0) / 1000).toFixed(1)} s, ` +
      `slowest ${slowest[name]?.toFixed(2)} ms`,
  );
}
console.log(`  SIP decoding outcomes: ${JSON.stringify(outcomes)}`);
console.log(`fuzz: done in ${((Date.now() - started) / 1000).toFixed(1)} s, ${rejections} unhandled rejections`);
process.exitCode = rejections === 0 ? 0 : 1;
