// The dashboard's pure logic (no DOM): which step a zoom level loads, and the series the chart draws with
// its gaps as breaks. Unit-tested in Node (test/unit/dashboard-series.test.ts), run in the browser as is.

export type Step = 'raw' | '1s' | '1m' | '1h' | '1d';

export const STEP_MS: Record<Exclude<Step, 'raw'>, number> = {
  '1s': 1000,
  '1m': 60_000,
  '1h': 3_600_000,
  '1d': 86_400_000,
};

/** Most points the chart asks for: a few per pixel of a wide screen, a response of a few hundred kB at most. */
export const MAX_POINTS = 5000;
/** Samples are loaded as they are (raw) up to this span: 2 minutes of a 1 kHz meter is 120,000 points. */
export const RAW_MAX_SPAN_MS = 2 * 60_000;

/** Widest span shown: the API's longest (366 days for 1h, 1d and the sync periods). */
export const MAX_SPAN_MS = 366 * 86_400_000;

/** The step for a zoom level: raw for short spans, then the finest rollup that keeps to MAX_POINTS buckets. */
export function stepFor(spanMs: number): Step {
  if (spanMs <= RAW_MAX_SPAN_MS) return 'raw';
  for (const step of ['1s', '1m', '1h'] as const) if (spanMs / STEP_MS[step] <= MAX_POINTS) return step;
  return '1d';
}

/** The columnar answer of GET /api/devices/:id/consumption with a rollup step. */
export interface Buckets {
  device: string;
  step: Exclude<Step, 'raw'>;
  from: number;
  to: number;
  t: number[];
  count: number[];
  sum: number[];
  min: number[];
  max: number[];
  mean: number[];
}

/** The answer of GET /api/devices/:id/consumption?step=raw. */
export interface RawSamples {
  device: string;
  step: 'raw';
  from: number;
  to: number;
  t: number[];
  value: number[];
}

export type Consumption = Buckets | RawSamples;

/** What the chart draws: x in ms, then y series of equal length, null where a gap breaks the line. */
export interface ChartSeries {
  step: Step;
  x: number[];
  /** raw: [value]; rollups: [mean, min, max]. */
  y: (number | null)[][];
  /** Gaps found (each drawn as a break), as [end of the data before, start of the data after] in ms. */
  gaps: [number, number][];
}

/**
 * The interval beyond which two raw samples are not neighbours: 1.5 times the usual (median) interval, and at
 * least a second (a batch carries a second of readings at most, so a lost batch leaves at least that).
 */
export function rawGapThreshold(t: readonly number[]): number {
  if (t.length < 3) return 1000;
  const diffs: number[] = [];
  // A sample of at most 1001 intervals spread over the series: the median without sorting 100,000 numbers.
  const stride = Math.max(1, Math.floor((t.length - 1) / 1000));
  for (let i = stride; i < t.length; i += stride) diffs.push(t[i]! - t[i - stride]!);
  diffs.sort((a, b) => a - b);
  const median = diffs[diffs.length >> 1]! / stride;
  return Math.max(1000, 1.5 * median);
}

/**
 * The series to draw, with a null inserted where data is missing so that the line breaks there: between two
 * buckets further apart than the step (a missing bucket), or two raw samples further apart than
 * rawGapThreshold.
 */
export function toChartSeries(c: Consumption): ChartSeries {
  const ys: readonly (readonly number[])[] = c.step === 'raw' ? [c.value] : [c.mean, c.min, c.max];
  const limit = c.step === 'raw' ? rawGapThreshold(c.t) : STEP_MS[c.step];
  const x: number[] = [];
  const y: (number | null)[][] = ys.map(() => []);
  const gaps: [number, number][] = [];
  for (let i = 0; i < c.t.length; i++) {
    const t = c.t[i]!;
    if (i > 0 && t - c.t[i - 1]! > limit) {
      const prev = c.t[i - 1]!;
      // A bucket starting at prev covers [prev, prev + step): the data resumes at t.
      gaps.push([c.step === 'raw' ? prev : prev + STEP_MS[c.step], t]);
      x.push(c.step === 'raw' ? prev + 1 : prev + STEP_MS[c.step]);
      for (const s of y) s.push(null);
    }
    x.push(t);
    ys.forEach((s, k) => y[k]!.push(s[i]!));
  }
  return { step: c.step, x, y, gaps };
}

/** A period of GET /api/devices/:id/sync. */
export interface SyncPeriod {
  start: number;
  end: number;
  status: string;
}

/** The statuses the sync strip knows; anything else is drawn as 'other' with its name in the label. */
export const SYNC_STATUSES = ['verified', 'repaired', 'pending', 'mismatch-unresolved'] as const;

/** A period's place in the strip as percentages of [from, to], clipped to it; undefined when outside. */
export function stripPlace(p: SyncPeriod, from: number, to: number): { left: number; width: number } | undefined {
  const a = Math.max(p.start, from);
  const b = Math.min(p.end, to);
  if (!(b > a) || !(to > from)) return undefined;
  return { left: ((a - from) / (to - from)) * 100, width: ((b - a) / (to - from)) * 100 };
}

/** Parses a from/to given as epoch ms or ISO-8601 (as the API takes them); NaN when neither. */
export function parseTime(s: string | null): number {
  if (s === null || s === '') return NaN;
  return /^\d+$/.test(s) ? Number(s) : Date.parse(s);
}

/** A time for people: ISO-8601 in UTC without the milliseconds when they are zero. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
