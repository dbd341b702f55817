import { epochSecondToParts, recordsChecksum, type Batch } from '../../src/domain/batch.js';
import type { ReceivedBatch } from '../../src/domain/received-batch.js';

/** A deterministic batch for device/second with `count` records starting at `startUs`. */
export function makeBatch(device: string, epochSecond: number, count = 3, startUs = 0, seed = 1): Batch {
  const step = Math.max(1, Math.floor((1_000_000 - startUs) / count));
  const records: string[] = [];
  for (let i = 0; i < count; i++) records.push(`${startUs + i * step},${((seed * 7919 + i * 31) % 100000) / 100}`);
  const values = records.join(';');
  const parts = epochSecondToParts(epochSecond);
  return {
    device_id: device,
    ...parts,
    start_us: String(startUs).padStart(6, '0'),
    end_us: String(startUs + (count - 1) * step).padStart(6, '0'),
    ec_consumption_values: values,
    values_count: count,
    values_checksum: recordsChecksum(values),
    batch_seq: null,
    insert_time: 1_700_000_000_000,
  };
}

/** The SIP body that carries such a batch. */
export function bodyOf(b: Batch): string {
  return `${b.device_id}|${b.ec_date}${b.ec_time}|${b.ec_consumption_values}`;
}

/** The received form of a batch (what ingest queues for the group commit), with optional integrity headers. */
export function receivedOf(b: Batch, headers: { count?: string; checksum?: string; seq?: string } = {}): ReceivedBatch {
  return {
    body: bodyOf(b),
    count: headers.count,
    checksum: headers.checksum,
    seq: headers.seq,
    insert_time: b.insert_time,
  };
}
