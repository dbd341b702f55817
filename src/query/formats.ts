import type { Bucket } from '../domain/sample-stats.js';
import type { ConsumptionQuery, RawChunk } from './consumption-query.js';
import type { ConsumptionParams, Step } from './query-params.js';

/**
 * The formats of consumption data, shared by the HTTP API and ec-export: columnar JSON (built whole: the
 * spans are capped), CSV with a header row and JSON Lines (both streamed, a day or a minute of data at a
 * time, so any span runs in constant memory). Numbers are written as JavaScript prints them, which reads
 * back as the same double.
 */
export type Format = 'json' | 'csv' | 'jsonl';

export const BUCKET_COLUMNS = ['t', 'count', 'sum', 'min', 'max', 'mean'] as const;
export const RAW_COLUMNS = ['t', 'value'] as const;

/** A JSON number, or null where JSON has none (NaN, an infinity from a value such as 1e999). */
function num(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** CSV cells are numbers only: an empty cell where JSON would say null. */
function cell(v: number): string {
  return Number.isFinite(v) ? String(v) : '';
}

/** The columnar JSON of a bucketed query. */
export async function bucketsJson(p: ConsumptionParams, chunks: AsyncIterable<Bucket[]>): Promise<object> {
  const out = { device: p.device, step: p.step, from: p.from, to: p.to, t: [] as number[] } as Record<
    string,
    unknown
  > & { t: number[] };
  const count: number[] = [];
  const sum: (number | null)[] = [];
  const min: (number | null)[] = [];
  const max: (number | null)[] = [];
  const mean: (number | null)[] = [];
  for await (const chunk of chunks) {
    for (const b of chunk) {
      out.t.push(b.t);
      count.push(b.count);
      sum.push(num(b.sum));
      min.push(num(b.min));
      max.push(num(b.max));
      mean.push(num(b.sum / b.count));
    }
  }
  return Object.assign(out, { count, sum, min, max, mean });
}

/** The columnar JSON of a raw query. */
export async function rawJson(p: ConsumptionParams, chunks: AsyncIterable<RawChunk>): Promise<object> {
  const t: number[] = [];
  const value: (number | null)[] = [];
  for await (const c of chunks) {
    for (let i = 0; i < c.t.length; i++) {
      t.push(c.t[i]!);
      value.push(num(c.value[i]!));
    }
  }
  return { device: p.device, step: 'raw', from: p.from, to: p.to, t, value };
}

/** The header row of a CSV export ('' for JSON Lines). */
export function header(format: 'csv' | 'jsonl', step: Step): string {
  if (format === 'jsonl') return '';
  return `${(step === 'raw' ? RAW_COLUMNS : BUCKET_COLUMNS).join(',')}\n`;
}

/** Buckets as CSV rows or JSON Lines. */
export function bucketLines(format: 'csv' | 'jsonl', chunk: readonly Bucket[]): string {
  let s = '';
  for (const b of chunk) {
    const mean = b.sum / b.count;
    s +=
      format === 'csv'
        ? `${b.t},${b.count},${cell(b.sum)},${cell(b.min)},${cell(b.max)},${cell(mean)}\n`
        : `${JSON.stringify(jsonBucket(b, mean))}\n`;
  }
  return s;
}

function jsonBucket(b: Bucket, mean: number) {
  return { t: b.t, count: b.count, sum: num(b.sum), min: num(b.min), max: num(b.max), mean: num(mean) };
}

/** Raw samples as CSV rows or JSON Lines. */
export function rawLines(format: 'csv' | 'jsonl', c: RawChunk): string {
  let s = '';
  for (let i = 0; i < c.t.length; i++) {
    const v = c.value[i]!;
    s += format === 'csv' ? `${c.t[i]},${cell(v)}\n` : `{"t":${c.t[i]},"value":${JSON.stringify(num(v))}}\n`;
  }
  return s;
}

/** The text of a consumption query in CSV or JSON Lines, one string per chunk read (for streaming). */
export async function* consumptionText(
  format: 'csv' | 'jsonl',
  p: ConsumptionParams,
  q: ConsumptionQuery,
): AsyncGenerator<string> {
  yield header(format, p.step);
  if (p.step === 'raw') for await (const c of q.raw(p.device, p.from, p.to)) yield rawLines(format, c);
  else for await (const c of q.buckets(p.device, p.step, p.from, p.to)) yield bucketLines(format, c);
}

/** The format an Accept header asks for (?format= wins): CSV, JSON Lines, else JSON. */
export function negotiate(accept: string | undefined, format: string | undefined): Format | undefined {
  if (format !== undefined) return format === 'csv' || format === 'jsonl' || format === 'json' ? format : undefined;
  const a = (accept ?? '').toLowerCase();
  if (a.includes('text/csv')) return 'csv';
  if (a.includes('application/x-ndjson') || a.includes('application/jsonl')) return 'jsonl';
  return 'json';
}

export const CONTENT_TYPES: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  jsonl: 'application/x-ndjson; charset=utf-8',
};
