import type { Batch } from '../domain/batch.js';
import type { ReceivedBatch } from '../domain/received-batch.js';
import { readLatin1, writeLatin1 } from '../latin1.js';

/**
 * Batches packed into one string for the hand-off to the SQLite writer thread, and back into
 * positional rows there. postMessage clones an array of batch objects field by field, property
 * names included (~1.2 us per small batch on the event loop); one string is a single copy
 * (~0.5 us). Text fields are length-prefixed (`12:s1-000000042`), so any content survives;
 * numbers end with `|` (null is an empty number).
 */

/** Column order of a row: the order of the positional upsert's parameters (sqlite-schema.ts). */
export const ROW_COLUMNS = [
  'device_id',
  'ec_date',
  'ec_time',
  'start_us',
  'end_us',
  'ec_consumption_values',
  'values_count',
  'values_checksum',
  'batch_seq',
  'insert_time',
] as const;

export type BatchRow = [string, string, string, string, string, string, number, string, number | null, number];

export function packBatches(batches: readonly Batch[]): string {
  let s = '';
  for (const b of batches) {
    s +=
      `${b.device_id.length}:${b.device_id}${b.ec_date.length}:${b.ec_date}${b.ec_time.length}:${b.ec_time}` +
      `${b.start_us.length}:${b.start_us}${b.end_us.length}:${b.end_us}` +
      `${b.ec_consumption_values.length}:${b.ec_consumption_values}${b.values_count}|` +
      `${b.values_checksum.length}:${b.values_checksum}${b.batch_seq ?? ''}|${b.insert_time}|`;
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

/**
 * Received batches (unparsed bodies plus their integrity headers) packed into one buffer for the
 * writer thread, which parses them there (ingest/batch-stage.ts). The buffer owns its memory, so
 * postMessage can transfer it instead of copying. Every text is latin1, as decoded from the wire.
 * Layout per batch, little-endian: body (u32 length + bytes), count, checksum, seq (each u32
 * length + 1, 0 when absent, + bytes), insert_time (f64).
 */
export function packReceived(batches: readonly ReceivedBatch[]): Buffer {
  let size = 0;
  for (const b of batches)
    size += 24 + b.body.length + (b.count?.length ?? 0) + (b.checksum?.length ?? 0) + (b.seq?.length ?? 0);
  const buf = Buffer.allocUnsafeSlow(size);
  let at = 0;
  const text = (s: string): void => {
    buf.writeUInt32LE(s.length, at);
    at += 4 + writeLatin1(buf, s, at + 4);
  };
  const optional = (s: string | undefined): void => {
    buf.writeUInt32LE(s === undefined ? 0 : s.length + 1, at);
    at += 4;
    if (s !== undefined) at += writeLatin1(buf, s, at);
  };
  for (const b of batches) {
    text(b.body);
    optional(b.count);
    optional(b.checksum);
    optional(b.seq);
    buf.writeDoubleLE(b.insert_time, at);
    at += 8;
  }
  return buf;
}

/** The batches packReceived wrote, in order. Throws on bytes it did not write. */
export function unpackReceived(buf: Buffer): ReceivedBatch[] {
  const out: ReceivedBatch[] = [];
  let at = 0;
  const take = (n: number): string => {
    if (at + n > buf.length)
      throw new Error(`packed received batches: field of ${n} bytes at ${at} overruns ${buf.length}`);
    const s = readLatin1(buf, at, at + n);
    at += n;
    return s;
  };
  const u32 = (): number => {
    if (at + 4 > buf.length) throw new Error(`packed received batches: truncated at ${at}`);
    const v = buf.readUInt32LE(at);
    at += 4;
    return v;
  };
  const optional = (): string | undefined => {
    const n = u32();
    return n === 0 ? undefined : take(n - 1);
  };
  while (at < buf.length) {
    const body = take(u32());
    const count = optional();
    const checksum = optional();
    const seq = optional();
    if (at + 8 > buf.length) throw new Error(`packed received batches: truncated at ${at}`);
    const insert_time = buf.readDoubleLE(at);
    at += 8;
    out.push({ body, count, checksum, seq, insert_time });
  }
  return out;
}

/** A batch as a positional row (the order of ROW_COLUMNS). */
export function rowOf(b: Batch): BatchRow {
  return [
    b.device_id,
    b.ec_date,
    b.ec_time,
    b.start_us,
    b.end_us,
    b.ec_consumption_values,
    b.values_count,
    b.values_checksum,
    b.batch_seq,
    b.insert_time,
  ];
}
