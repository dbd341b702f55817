import { createHash } from 'node:crypto';
import { batchEpochSecond, type BatchSummary } from './batch.js';

/** Aggregate of the batches of one interval (a minute, a sync period...) of one device. */
export interface IntervalSummary {
  /** Epoch second the interval starts at. */
  start: number;
  batches: number;
  samples: number;
  /** Digest over the interval's batch keys and checksums (see below). */
  digest: string;
}

/**
 * Interval digest: MD5 over one line per batch, `hhmmss.start_us-end_us:count:checksum`, in key
 * order, joined with `\n`. It is built from stored per-batch checksums, so answering it never
 * re-reads samples; client and server compute it the same way (docs/protocol.md).
 */
export function digestLine(
  b: Pick<BatchSummary, 'ec_time' | 'start_us' | 'end_us' | 'values_count' | 'values_checksum'>,
): string {
  return `${b.ec_time}.${b.start_us}-${b.end_us}:${b.values_count}:${b.values_checksum}`;
}

/** Groups summaries (already in key order) into intervals aligned to multiples of intervalSeconds. */
export function summarizeIntervals(summaries: readonly BatchSummary[], intervalSeconds: number): IntervalSummary[] {
  const out: IntervalSummary[] = [];
  let current: { start: number; batches: number; samples: number; lines: string[] } | undefined;
  const finish = (): void => {
    if (!current) return;
    out.push({
      start: current.start,
      batches: current.batches,
      samples: current.samples,
      digest: createHash('md5').update(current.lines.join('\n')).digest('hex'),
    });
  };
  for (const s of summaries) {
    const sec = batchEpochSecond(s);
    const start = sec - (((sec % intervalSeconds) + intervalSeconds) % intervalSeconds);
    if (current?.start !== start) {
      finish();
      current = { start, batches: 0, samples: 0, lines: [] };
    }
    current.batches++;
    current.samples += s.values_count;
    current.lines.push(digestLine(s));
  }
  finish();
  return out;
}
