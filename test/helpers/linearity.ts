import { expect } from 'chai';

/** Fastest of `runs` calls of `run`, in ms (the machine is shared: the minimum is the least disturbed). */
function fastestMs(run: () => unknown, runs: number): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    run();
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e6);
  }
  return best;
}

/**
 * Asserts that `run` takes time linear in its input, without depending on the machine's speed: the
 * input built at `factor` times the size against the one at size 1 (linear: ~factor, quadratic:
 * ~factor^2); the ratio must stay below `factor * 3`. A descheduled moment on a loaded machine can
 * spoil one measurement, so a failing ratio is measured again, up to 3 times. Times under 0.1 ms
 * are noise and pass.
 */
export function expectLinear<T>(
  what: string,
  build: (scale: number) => T,
  run: (input: T) => unknown,
  factor = 8,
): void {
  const small = build(1);
  const large = build(factor);
  let ratio = 0;
  let detail = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const tSmall = fastestMs(() => run(small), 10);
    const tLarge = fastestMs(() => run(large), 10);
    if (tLarge <= 0.1) return;
    ratio = tLarge / Math.max(tSmall, 0.01);
    detail = `${what}: ${tSmall.toFixed(3)} ms at size 1, ${tLarge.toFixed(3)} ms at x${factor}`;
    if (ratio < factor * 3) return;
  }
  expect(ratio, detail).to.be.lessThan(factor * 3);
}
