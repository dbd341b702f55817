import type { Batch, BatchKey, BatchSummary } from '../domain/batch.js';
import type { IntervalSummary } from '../domain/interval-digest.js';
import type { DeviceCredential } from '../domain/device-credential.js';
import type { DeviceRecord } from '../domain/device-record.js';
import type { BatchAggregate, Bucket } from '../domain/sample-stats.js';
import type { AdaptiveLimitStats } from './adaptive-limit.js';
import type { DeviceLeases } from './device-leases.js';

export type { IntervalSummary };

/** One device, epoch seconds [from, to). Every read names one device: no scans across devices. */
export interface DeviceRange {
  device_id: string;
  from: number;
  to: number;
}

/** Longest range one read may cover; callers page through longer spans. */
export const MAX_RANGE_SECONDS = 86_400;

export type CheckStatus = 'pending' | 'verified' | 'repaired' | 'mismatch-unresolved';

/** A row of `ec_checksum`: what a sync check found for one interval of one device. */
export interface IntervalCheck {
  device_id: string;
  ec_date: string;
  /** hhmmss the interval starts at. */
  ec_time: string;
  interval_seconds: number;
  values_count: number;
  values_checksum: string;
  /** ms since the epoch of the latest check. */
  check_time: number;
  check_times: number;
  status: CheckStatus;
}

/** A stored batch replaced by a write with other values (item 8 of issue 14: counted and logged). */
export interface BatchReplacement extends BatchKey {
  /** Increasing per store: readReplacements pages with the last one seen. */
  id: number;
  old_count: number;
  old_checksum: string;
  new_count: number;
  new_checksum: string;
  replaced_ms: number;
}

/**
 * The storage contract every backend implements (SQLite embedded, Cassandra) and that
 * test/contract/store-contract.ts checks. All writes are idempotent upserts keyed by
 * (device_id, ec_date, ec_time, start_us, end_us); a resolved write is durable.
 */
export interface ConsumptionStore {
  readonly backend: string;
  /** Connects and creates the schema if missing. */
  open(): Promise<void>;
  /** Writes all batches; resolves only once they are durable. Rejects with StoreUnavailableError. */
  upsertBatches(batches: readonly Batch[]): Promise<void>;
  /**
   * True when writes may be issued before earlier ones have resolved, the store applying them in
   * the order they were issued (Cassandra's statements carry client-side timestamps taken in that
   * order; a SQLite store whose writes go to the writer thread queues them there). The ingest sink
   * then hands over each group at once instead of waiting.
   */
  readonly pipelined: boolean;
  /** A store whose writes go out concurrently under an adaptive limit (Cassandra): what that limit did. */
  readonly writeLimit?: { readonly stats: AdaptiveLimitStats; readonly limit: number; readonly inFlightNow: number };
  /** Rows written, the requests that carried them and the unlogged batches among those (Cassandra). */
  readonly writeCounts?: { readonly rows: number; readonly requests: number; readonly batches: number };
  /** Batches of one device in [from, to), ordered by key. */
  readBatches(range: DeviceRange): Promise<Batch[]>;
  /**
   * Per batch of one device in [from, to), in key order: its key and the count, sum, min and max of its
   * records (domain/sample-stats.ts). What consumption queries add up instead of the samples.
   */
  readBatchAggregates(range: DeviceRange): Promise<BatchAggregate[]>;
  /** Same as readBatches without the values: cheap to compare. */
  readSummaries(range: DeviceRange): Promise<BatchSummary[]>;
  /** Per-interval counts and digests over [from, to); intervals with no batch are omitted. */
  intervalSummaries(range: DeviceRange, intervalSeconds: number): Promise<IntervalSummary[]>;
  /** Removes one batch; resolves true when it existed. */
  deleteBatch(key: BatchKey): Promise<boolean>;
  /**
   * Replacements of stored batches by writes with other values, with id > `after` (oldest first, at most
   * `limit`). Such a write also re-opens its sync period: the period's and its minute's check rows, when
   * verified or repaired, read as pending afterwards (so does any write that is not identical to the
   * stored row). A store opened without `syncPeriodS` (a meter's journal, a tool) tracks neither.
   */
  readReplacements(after: number, limit: number): Promise<BatchReplacement[]>;
  /**
   * Upserts a sync result for one interval. A verified or repaired one first finalises the interval's
   * minute rollups (finaliseRollups), so a repair that changed the data after an earlier rollup updates it.
   */
  writeIntervalCheck(check: IntervalCheck): Promise<void>;
  /**
   * Writes the minute rollups (store/minute-rollups.ts) of every minute of [from, to) (minute aligned, empty
   * minutes included) from the stored batches' aggregates, replacing earlier ones; resolves with the minutes.
   */
  finaliseRollups(range: DeviceRange): Promise<number>;
  /** Rollup rows of the minutes starting in [from, to), ascending; empty minutes have count 0. */
  readMinuteRollups(range: DeviceRange): Promise<Bucket[]>;
  /** Sync results of one device whose interval starts in [from, to). */
  readIntervalChecks(range: DeviceRange): Promise<IntervalCheck[]>;
  /** Adds or replaces a device's credential (`ec-server device add|rotate`). */
  putCredential(credential: DeviceCredential): Promise<void>;
  /** One device's credential, or undefined. */
  readCredential(deviceId: string): Promise<DeviceCredential | undefined>;
  /** Every credential (the server's cache loads them all; `ec-server device list`). */
  listCredentials(): Promise<DeviceCredential[]>;
  /** Removes a device's credential; resolves true when it existed. */
  removeCredential(deviceId: string): Promise<boolean>;
  /**
   * A token that changes whenever putCredential or removeCredential changes the credentials (from any
   * process: the CLI, another receiver); '' if they never did. One small read: the server's cache
   * polls it every second and loads the whole table only when it changed (auth/credential-cache.ts).
   */
  credentialsVersion(): Promise<string>;
  /** Adds or replaces device registry rows (`ec_device`, keyed by device_id). */
  upsertDevices(rows: readonly DeviceRecord[]): Promise<void>;
  /**
   * One page of registry rows: at most `limit`, in an order of the backend's (SQLite: device id; Cassandra:
   * token order), after the row of device `after` when given. Paging with the last id of each page until a
   * page comes back short lists every row once. A store without the table yet (an older file) lists none.
   */
  listDevices(page: { limit: number; after?: string }): Promise<DeviceRecord[]>;
  /**
   * Optional, on stores several receivers write (Cassandra): one device's registry row, or undefined. The
   * registry reads it before it writes a device it has newly (or again) seen, to add on what others counted.
   */
  readDevice?(deviceId: string): Promise<DeviceRecord | undefined>;
  /**
   * The sync leases shared by every receiver writing to this store (src/store/device-leases.ts): two
   * receivers never reconcile the same device at the same time.
   */
  readonly leases: DeviceLeases;
  close(): Promise<void>;
}
