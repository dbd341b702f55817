/**
 * A repeatable pseudo-random integer source (LCG): random(n) is in [0, n). Fuzz tests use it so that a failure
 * reproduces.
 */
export function seededRandom(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}
