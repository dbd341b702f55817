import { expect } from 'chai';
import {
  MAX_POINTS,
  parseTime,
  rawGapThreshold,
  RAW_MAX_SPAN_MS,
  STEP_MS,
  stepFor,
  stripPlace,
  toChartSeries,
  type Buckets,
} from '../../src/web/series.js';

/** The dashboard's pure logic (src/web/series.ts), as the browser runs it. */
describe('dashboard series: step per zoom, gaps as breaks, sync strip places', () => {
  it('loads samples for short spans, then the finest rollup within MAX_POINTS buckets', () => {
    expect(stepFor(10_000)).to.equal('raw');
    expect(stepFor(RAW_MAX_SPAN_MS)).to.equal('raw');
    expect(stepFor(RAW_MAX_SPAN_MS + 1)).to.equal('1s');
    expect(stepFor(3_600_000)).to.equal('1s');
    expect(stepFor(MAX_POINTS * 1000 + 1)).to.equal('1m');
    expect(stepFor(86_400_000)).to.equal('1m');
    expect(stepFor(7 * 86_400_000)).to.equal('1h');
    expect(stepFor(365 * 86_400_000)).to.equal('1d');
    for (const span of [3e5, 9e6, 4e8, 3e10]) {
      const step = stepFor(span);
      expect(step === 'raw' || step === '1d' || span / STEP_MS[step] <= MAX_POINTS, `${span} -> ${step}`).to.equal(
        true,
      );
    }
  });

  const buckets = (t: number[], step: Buckets['step'] = '1s'): Buckets => ({
    device: 'd',
    step,
    from: t[0] ?? 0,
    to: (t[t.length - 1] ?? 0) + STEP_MS[step],
    t,
    count: t.map(() => 2),
    sum: t.map((x) => x / 500),
    min: t.map((x) => x / 1000 - 1),
    max: t.map((x) => x / 1000 + 1),
    mean: t.map((x) => x / 1000),
  });

  it('rollups: a null where a bucket is missing, values otherwise unchanged', () => {
    const s = toChartSeries(buckets([0, 1000, 2000, 5000, 6000]));
    expect(s.x).to.deep.equal([0, 1000, 2000, 3000, 5000, 6000]);
    expect(s.y[0]).to.deep.equal([0, 1, 2, null, 5, 6]); // mean
    expect(s.y[1]).to.deep.equal([-1, 0, 1, null, 4, 5]); // min
    expect(s.y[2]).to.deep.equal([1, 2, 3, null, 6, 7]); // max
    expect(s.gaps).to.deep.equal([[3000, 5000]]);
    const whole = toChartSeries(buckets([0, 60_000, 120_000], '1m'));
    expect(whole.gaps).to.deep.equal([]);
    expect(whole.y[0]).to.not.include(null);
  });

  it('raw: a break where samples stop for more than a second and 1.5 usual intervals', () => {
    const t = [...Array.from({ length: 1000 }, (_, i) => i), ...Array.from({ length: 1000 }, (_, i) => 3000 + i)];
    expect(rawGapThreshold(t)).to.equal(1000);
    const s = toChartSeries({ device: 'd', step: 'raw', from: 0, to: 4000, t, value: t.map((x) => x * 2) });
    expect(s.gaps).to.deep.equal([[999, 3000]]);
    expect(s.y[0]!.filter((v) => v === null)).to.have.length(1);
    expect(s.y[0]!.filter((v) => v !== null)).to.deep.equal(t.map((x) => x * 2));
    // A slow meter (one sample every 2 s) is not a row of gaps; a missing sample of it is one.
    const slow = [0, 2000, 4000, 6000, 8000, 12_000, 14_000];
    expect(rawGapThreshold(slow)).to.equal(3000);
    const ss = toChartSeries({ device: 'd', step: 'raw', from: 0, to: 15_000, t: slow, value: slow });
    expect(ss.gaps).to.deep.equal([[8000, 12_000]]);
  });

  it('the sync strip places periods as percentages of the range, clipped to it', () => {
    expect(stripPlace({ start: 0, end: 600_000, status: 'verified' }, 0, 1_200_000)).to.deep.equal({
      left: 0,
      width: 50,
    });
    expect(stripPlace({ start: -600_000, end: 300_000, status: 'x' }, 0, 1_200_000)).to.deep.equal({
      left: 0,
      width: 25,
    });
    expect(stripPlace({ start: 1_200_000, end: 1_800_000, status: 'x' }, 0, 1_200_000)).to.equal(undefined);
  });

  it('times: epoch ms or ISO-8601, NaN otherwise', () => {
    expect(parseTime('1775001600000')).to.equal(1775001600000);
    expect(parseTime('2026-04-01T00:00:00Z')).to.equal(Date.UTC(2026, 3, 1));
    expect(Number.isNaN(parseTime('yesterday'))).to.equal(true);
    expect(Number.isNaN(parseTime(null))).to.equal(true);
  });
});
