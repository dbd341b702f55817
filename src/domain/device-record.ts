/**
 * A row of `ec_device`: what the device registry (registry/device-registry.ts) keeps of one device
 * ever seen. Online or offline is not stored: it follows from last_seen_ms and devices.offline_after.
 */
export interface DeviceRecord {
  device_id: string;
  /** When its first stored batch was received, ms since the epoch. */
  first_seen_ms: number;
  /** When its latest stored batch was received, ms since the epoch. */
  last_seen_ms: number;
  /** X-EC-Seq of its latest stored batch; null when that batch had none. */
  last_seq: number | null;
  /** The UTC day (YYYYMMDD) batches_today and samples_today count. */
  day: string;
  batches_today: number;
  samples_today: number;
}

/** YYYYMMDD (UTC) of an epoch-ms instant. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
}

/** The record as of `nowMs`: counts of an earlier day read as 0 (they reset at the UTC day change). */
export function asOf(r: DeviceRecord, nowMs: number): DeviceRecord {
  const today = utcDay(nowMs);
  return r.day === today ? r : { ...r, day: today, batches_today: 0, samples_today: 0 };
}
