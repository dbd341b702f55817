import { readFileSync } from 'node:fs';
import { compactToEpochSecond, epochSecondToParts, recordsChecksum, type Batch } from '../domain/batch.js';

export interface GeneratorOptions {
  /** Samples per second per device. */
  rate: number;
  /** Milliseconds of readings per batch (1000 = one batch per second). */
  batchMs: number;
}

/**
 * Synthetic readings: a load curve with noise, 3 decimals, deterministic for (device, second),
 * so that a rerun produces the same batches.
 */
export function generateBatches(device: string, second: number, o: GeneratorOptions): Batch[] {
  const perBatch = Math.max(1, Math.round((o.rate * o.batchMs) / 1000));
  const stepUs = Math.max(1, Math.floor(1_000_000 / o.rate));
  const batchesPerSecond = Math.max(1, Math.round(1000 / o.batchMs));
  let seed = hash(`${device}|${second}`);
  const random = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const base = 500 + 300 * Math.sin((second % 86_400) / 13_750);
  const out: Batch[] = [];
  for (let b = 0; b < batchesPerSecond; b++) {
    const records: string[] = [];
    for (let i = 0; i < perBatch; i++) {
      const us = (b * perBatch + i) * stepUs;
      if (us > 999_999) break;
      records.push(`${us},${(base + random() * 20).toFixed(3)}`);
    }
    if (records.length) out.push(toBatch(device, second, records));
  }
  return out;
}

export function toBatch(device: string, second: number, records: string[]): Batch {
  const values = records.join(';');
  const first = records[0]!.split(',')[0]!;
  const last = records[records.length - 1]!.split(',')[0]!;
  return {
    device_id: device,
    ...epochSecondToParts(second),
    start_us: first.padStart(6, '0'),
    end_us: last.padStart(6, '0'),
    ec_consumption_values: values,
    values_count: records.length,
    values_checksum: recordsChecksum(values),
    batch_seq: null,
    insert_time: Date.now(),
  };
}

/**
 * Replays readings from a CSV file with lines `device,YYYYMMDDhhmmss,us,value` (a header line
 * and blank lines are skipped): one batch per device and second, records in file order.
 */
export function readCsvBatches(file: string): Batch[] {
  const groups = new Map<string, { device: string; second: number; records: string[] }>();
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  lines.forEach((line, i) => {
    const t = line.trim();
    if (!t || (i === 0 && /[a-z]/i.test(t.split(',')[1] ?? ''))) return;
    const [device, stamp, us, value] = t.split(',').map((x) => x.trim());
    const second = compactToEpochSecond(stamp ?? '');
    if (!device || Number.isNaN(second) || !/^\d{1,6}$/.test(us ?? '') || !value)
      throw new Error(`${file}:${i + 1}: expected device,YYYYMMDDhhmmss,us,value`);
    const key = `${device}|${second}`;
    const g = groups.get(key) ?? { device, second, records: [] };
    g.records.push(`${us},${value}`);
    groups.set(key, g);
  });
  return [...groups.values()].sort((a, b) => a.second - b.second).map((g) => toBatch(g.device, g.second, g.records));
}

/** Alters a batch's values as a corrupting network or meter bug would (checksum recomputed). */
export function corrupt(b: Batch): Batch {
  const records = b.ec_consumption_values.split(';');
  const i = Math.floor(records.length / 2);
  const [us, value] = records[i]!.split(',');
  records[i] = `${us},${(Number(value) + 1.5).toFixed(3)}`;
  const values = records.join(';');
  return { ...b, ec_consumption_values: values, values_checksum: recordsChecksum(values) };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
