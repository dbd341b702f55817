import type { Batch } from '../domain/batch.js';

/**
 * Batches packed into one string for the hand-off to the SQLite writer thread, and back into
 * positional rows there. postMessage clones an array of batch objects field by field, property
 * names included (~1.2 us per small batch on the event loop); one string is a single copy
 * (~0.5 us). Text fields are length-prefixed (`12:s1-000000042`), so any content survives;
 * numbers end with `|` (null is an empty number).
 */

/** Column order of a row: the order of the positional upsert's parameters (sqlite-schema.ts). */
export const ROW_COLUMNS = [
  'device_id', 'ec_date', 'ec_time', 'start_us', 'end_us', 'ec_consumption_values',
  'values_count', 'values_checksum', 'batch_seq', 'insert_time',
] as const;

export type BatchRow = [string, string, string, string, string, string, number, string, number | null, number];

export function packBatches(batches: readonly Batch[]): string {
  let s = '';
  for (const b of batches) {
    s += `${b.device_id.length}:${b.device_id}${b.ec_date.length}:${b.ec_date}${b.ec_time.length}:${b.ec_time}`
      + `${b.start_us.length}:${b.start_us}${b.end_us.length}:${b.end_us}`
      + `${b.ec_consumption_values.length}:${b.ec_consumption_values}${b.values_count}|`
      + `${b.values_checksum.length}:${b.values_checksum}${b.batch_seq ?? ''}|${b.insert_time}|`;
  }
  return s;
}

/** Calls `row` for each packed batch, in order. Throws on text that packBatches did not write. */
export function unpackBatches(s: string, row: (r: BatchRow) => void): void {
  let i = 0;
  const text = (): string => {
    const colon = s.indexOf(':', i);
    const n = colon > i ? Number(s.slice(i, colon)) : NaN;
    if (!Number.isInteger(n) || colon + 1 + n > s.length) throw new Error(`packed batches: bad text field at ${i}`);
    i = colon + 1 + n;
    return s.slice(colon + 1, i);
  };
  const num = (): number | null => {
    const bar = s.indexOf('|', i);
    if (bar < 0) throw new Error(`packed batches: bad number at ${i}`);
    const v = bar === i ? null : Number(s.slice(i, bar));
    if (v !== null && !Number.isFinite(v)) throw new Error(`packed batches: bad number at ${i}`);
    i = bar + 1;
    return v;
  };
  const required = (): number => {
    const v = num();
    if (v === null) throw new Error(`packed batches: missing number before ${i}`);
    return v;
  };
  while (i < s.length) {
    const r: BatchRow = [text(), text(), text(), text(), text(), text(), required(), text(), num(), required()];
    row(r);
  }
}
