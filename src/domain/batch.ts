import { hash } from 'node:crypto';
import { recordBytes, scanRecordBytes, valueStats, type ValueStats } from './value-stats.js';

/**
 * One consumption batch as stored: the row of `ec_consumption`.
 * Field names follow the original schema so that people who know it can read the data.
 */
export interface Batch {
  device_id: string;
  /** YYYYMMDD (UTC) */
  ec_date: string;
  /** hhmmss (UTC) */
  ec_time: string;
  /** First record's microsecond offset, zero-padded to 6 digits so that keys sort. */
  start_us: string;
  /** Last record's microsecond offset, zero-padded to 6 digits. */
  end_us: string;
  /** The records exactly as sent: `us,value;us,value...` (no trailing `;`). */
  ec_consumption_values: string;
  values_count: number;
  /** Lowercase hex MD5 of the records joined with `\n`. */
  values_checksum: string;
  /** X-EC-Seq of the MESSAGE that carried it, when the client sent one. */
  batch_seq: number | null;
  /** When stored, ms since the epoch. */
  insert_time: number;
  /**
   * The records' statistics, computed where the body was parsed (storage.aggregates): the store binds them
   * as given. A batch without them (a test's, an older writer's) has them computed by the store.
   */
  values_stats?: ValueStats | undefined;
}

/** The primary key of a batch: one second may hold several (sub-second) batches. */
export type BatchKey = Pick<Batch, 'device_id' | 'ec_date' | 'ec_time' | 'start_us' | 'end_us'>;

/** A batch without its values: what sync and reports need to compare. */
export type BatchSummary = Omit<Batch, 'ec_consumption_values' | 'values_stats'>;

export function batchKeyString(k: BatchKey): string {
  return `${k.device_id}|${k.ec_date}${k.ec_time}|${k.start_us}-${k.end_us}`;
}

/** The checksum definition shared by clients, the server and sync (docs/protocol.md). */
export function recordsChecksum(recordsAsSent: string): string {
  const n = recordsAsSent.length;
  // Non-ASCII cannot pass the body grammar, but the definition is over UTF-8: keep it exact.
  if (!isAscii(recordsAsSent)) return hash('md5', recordsAsSent.replaceAll(';', '\n'), 'hex');
  // Same bytes as hashing replaceAll(';', '\n'), at half the cost on 1000-record batches (the
  // string copy and its UTF-8 encoding were a third of the receive loop's time for large batches).
  const bytes = (scratch = recordBytes(recordsAsSent, scratch, true));
  for (let i = bytes.indexOf(SEMICOLON, 0); i >= 0 && i < n; i = bytes.indexOf(SEMICOLON, i + 1)) bytes[i] = NEWLINE;
  return hash('md5', bytes.subarray(0, n), 'hex');
}

/**
 * recordsChecksum and valueStats of a record list in one pass over its bytes: the statistics are read
 * where the separators are rewritten for the hash (docs/performance.md, Per-batch aggregates at ingest).
 */
export function recordsChecksumWithStats(recordsAsSent: string): { checksum: string; stats: ValueStats } {
  const n = recordsAsSent.length;
  if (!isAscii(recordsAsSent)) return { checksum: recordsChecksum(recordsAsSent), stats: valueStats(recordsAsSent) };
  const bytes = (scratch = recordBytes(recordsAsSent, scratch, true));
  const stats = scanRecordBytes(bytes, n, recordsAsSent); // also rewrites each ';' to '\n', as the checksum wants
  return { checksum: hash('md5', bytes.subarray(0, n), 'hex'), stats };
}

function isAscii(s: string): boolean {
  return Buffer.byteLength(s, 'utf8') === s.length;
}

const SEMICOLON = 0x3b;
const NEWLINE = 0x0a;
/** Reused between calls: the hash is computed synchronously, nothing keeps a reference to it. */
let scratch: Buffer = Buffer.allocUnsafe(64 * 1024);

/** Epoch seconds (UTC) of a batch's second. */
export function batchEpochSecond(b: Pick<Batch, 'ec_date' | 'ec_time'>): number {
  return compactToEpochSecond(b.ec_date + b.ec_time);
}

/** `YYYYMMDDhhmmss` (UTC) to epoch seconds; NaN when it is not a real date and time. */
export function compactToEpochSecond(s: string): number {
  if (!/^\d{14}$/.test(s)) return NaN;
  const y = Number(s.slice(0, 4));
  const mo = Number(s.slice(4, 6));
  const d = Number(s.slice(6, 8));
  const h = Number(s.slice(8, 10));
  const mi = Number(s.slice(10, 12));
  const se = Number(s.slice(12, 14));
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return NaN;
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  // Date.UTC rolls 31 Feb over into March: a real date must survive the round trip.
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return NaN;
  return ms / 1000;
}

/** Epoch seconds to `{ec_date, ec_time}` (UTC). */
export function epochSecondToParts(sec: number): { ec_date: string; ec_time: string } {
  const iso = new Date(sec * 1000).toISOString(); // 2016-09-09T15:05:05.000Z
  return {
    ec_date: iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10),
    ec_time: iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19),
  };
}
