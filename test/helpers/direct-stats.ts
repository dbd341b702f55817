import { expect } from 'chai';
import { batchEpochSecond, type Batch } from '../../src/domain/batch.js';

/** Every sample of some batches: time (epoch ms) and value, parsed here without the code under test. */
export function samplesOf(batches: readonly Batch[]): { t: number; v: number }[] {
  const out: { t: number; v: number }[] = [];
  for (const b of batches) {
    const base = batchEpochSecond(b) * 1000;
    for (const rec of b.ec_consumption_values.split(';')) {
      const [us, v] = rec.split(',');
      out.push({ t: base + Number(us) / 1000, v: Number(v) });
    }
  }
  return out.sort((a, b) => a.t - b.t);
}

export interface DirectBucket {
  t: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
}

/** Buckets of stepMs over [from, to) computed straight from the samples: the reference for queries. */
export function directBuckets(batches: readonly Batch[], stepMs: number, from: number, to: number): DirectBucket[] {
  const byT = new Map<number, DirectBucket>();
  for (const s of samplesOf(batches)) {
    if (s.t < from || s.t >= to) continue;
    const t = Math.floor(s.t / stepMs) * stepMs;
    const b = byT.get(t) ?? { t, count: 0, sum: 0, min: Infinity, max: -Infinity, mean: 0 };
    b.count++;
    b.sum += s.v;
    b.min = Math.min(b.min, s.v);
    b.max = Math.max(b.max, s.v);
    byT.set(t, b);
  }
  const out = [...byT.values()].sort((a, b) => a.t - b.t);
  for (const b of out) b.mean = b.sum / b.count;
  return out;
}

/** Columnar form (the API's). */
export function columns(buckets: readonly DirectBucket[]): Record<string, number[]> {
  return {
    t: buckets.map((b) => b.t),
    count: buckets.map((b) => b.count),
    sum: buckets.map((b) => b.sum),
    min: buckets.map((b) => b.min),
    max: buckets.map((b) => b.max),
    mean: buckets.map((b) => b.mean),
  };
}

/**
 * Sums added in another order differ in their last bits (near 0, relatively by much): sums and means are
 * compared within 1e-6 (test values carry at most 3 decimals), every other column exactly.
 */
export function expectSameColumns(got: Record<string, unknown>, want: Record<string, number[]>, what = ''): void {
  for (const k of ['t', 'count', 'min', 'max']) expect(got[k], `${what} ${k}`).to.deep.equal(want[k]);
  for (const k of ['sum', 'mean']) {
    const g = got[k] as number[];
    expect(g.length, `${what} ${k}`).to.equal(want[k]!.length);
    g.forEach((v, i) => expect(v, `${what} ${k}[${i}]`).to.be.closeTo(want[k]![i]!, 1e-6));
  }
}
