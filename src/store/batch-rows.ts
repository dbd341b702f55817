import type { Batch } from '../domain/batch.js';

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
