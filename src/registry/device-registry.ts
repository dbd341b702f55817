import type { DeviceRecord } from '../domain/device-record.js';
import { asOf, utcDay } from '../domain/device-record.js';
import type { ReceivedBatch, ReceivedReport } from '../domain/received-batch.js';
import type { ConsumptionStore } from '../store/consumption-store.js';

export type DeviceState = 'online' | 'offline';

/** A device as listed (GET /api/devices, `ec-server devices`): its row as of now, with its state. */
export type ListedDevice = DeviceRecord & { state: DeviceState };

export interface DeviceRegistryOptions {
  /** devices.offline_after, ms: a device not seen for longer is offline. */
  offlineAfterMs: number;
  /** devices.flush_seconds, ms: how often changed rows are written to the store. */
  flushMs: number;
  /** Called once per online -> offline transition (the server logs it). */
  onOffline?: (device: string, lastSeenMs: number) => void;
  /** Called when an offline device is seen again. */
  onOnline?: (device: string, offlineMs: number) => void;
  /** Called when a flush fails; its rows stay changed and go with the next one. */
  onFlushError?: (error: unknown, rows: number) => void;
}

/** Rows per store call when loading and flushing. */
const PAGE = 1000;
/** Most rows one GET /api/devices page returns. */
export const MAX_PAGE = 1000;

/** Whether `r` is offline at `nowMs` with the threshold `offlineAfterMs`. */
export function stateOf(r: Pick<DeviceRecord, 'last_seen_ms'>, nowMs: number, offlineAfterMs: number): DeviceState {
  return nowMs - r.last_seen_ms > offlineAfterMs ? 'offline' : 'online';
}

/**
 * Every device ever seen, in memory (one small object per device), kept up to date from the group
 * commit after each durable write (observe) without reading the store; changed rows are written to
 * the store's ec_device table every devices.flush_seconds and at stop, and loaded at start, so the
 * registry survives restarts. A timer marks devices offline once they have not been seen for
 * devices.offline_after; each transition is reported and counted once.
 */
export class DeviceRegistry {
  private readonly devices = new Map<string, DeviceRecord>();
  /** Devices currently online: the offline check walks only these. */
  private readonly online = new Set<string>();
  /** Devices changed since the last flush. */
  private dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  readonly stats = { offlineTransitions: 0, onlineTransitions: 0, flushes: 0, flushFailures: 0, checks: 0 };

  constructor(
    private readonly store: ConsumptionStore,
    private readonly options: DeviceRegistryOptions,
    /** Epoch ms; injectable for tests. */
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.devices.size;
  }

  /** Whether the device has ever been seen (stored rows included). */
  has(device: string): boolean {
    return this.devices.has(device);
  }

  get onlineCount(): number {
    return this.online.size;
  }

  /** Loads every stored row. Devices seen within offline_after count as online, the rest as already offline. */
  async load(): Promise<void> {
    const now = this.now();
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listDevices({ limit: PAGE, ...(after === undefined ? {} : { after }) });
      for (const r of page) {
        this.devices.set(r.device_id, { ...r });
        if (stateOf(r, now, this.options.offlineAfterMs) === 'online') this.online.add(r.device_id);
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.device_id;
    }
  }

  /** Starts the offline check (every offline_after/10, at most every second) and the periodic flush. */
  start(): void {
    const checkMs = Math.max(10, Math.min(1000, Math.floor(this.options.offlineAfterMs / 10)));
    this.checkTimer = setInterval(() => this.check(), checkMs);
    this.checkTimer.unref();
    this.flushTimer = setInterval(() => void this.flush(), this.options.flushMs);
    this.flushTimer.unref();
  }

  /** Stops the timers and writes what changed. */
  async stop(): Promise<void> {
    clearInterval(this.checkTimer);
    clearInterval(this.flushTimer);
    await this.flush();
  }

  /** GroupCommitOptions.onStored: counts the batches the store did not refuse. Never throws. */
  readonly observe = (batches: readonly ReceivedBatch[], report: ReceivedReport): void => {
    const refused = report.rejected.length === 0 ? undefined : new Set(report.rejected.map(([i]) => i));
    const now = this.now();
    let today: string | undefined;
    for (let i = 0; i < batches.length; i++) {
      if (refused?.has(i)) continue;
      const b = batches[i]!;
      // A stored body starts with its device id and `|` (the body grammar checked it).
      const bar = b.body.indexOf('|');
      if (bar <= 0) continue;
      const id = b.body.slice(0, bar);
      const seq = b.seq === undefined ? null : Number(b.seq);
      const samples = report.samples?.[i] ?? 0;
      const seen = Math.min(b.insert_time, now);
      today ??= utcDay(now);
      let r = this.devices.get(id);
      if (!r) {
        r = {
          device_id: id,
          first_seen_ms: seen,
          last_seen_ms: seen,
          last_seq: null,
          day: today,
          batches_today: 0,
          samples_today: 0,
        };
        this.devices.set(id, r);
      } else if (!this.online.has(id)) {
        this.stats.onlineTransitions++;
        this.options.onOnline?.(id, now - r.last_seen_ms);
      }
      if (r.day !== today) {
        r.day = today;
        r.batches_today = 0;
        r.samples_today = 0;
      }
      r.last_seen_ms = Math.max(r.last_seen_ms, seen);
      r.last_seq = seq !== null && Number.isSafeInteger(seq) ? seq : null;
      r.batches_today++;
      r.samples_today += samples;
      this.online.add(id);
      this.dirty.add(id);
    }
  };

  /** Marks devices not seen for offline_after as offline, reporting each once. */
  check(): void {
    this.stats.checks++;
    const now = this.now();
    for (const id of this.online) {
      const r = this.devices.get(id)!;
      if (stateOf(r, now, this.options.offlineAfterMs) === 'offline') {
        this.online.delete(id);
        this.stats.offlineTransitions++;
        this.options.onOffline?.(id, r.last_seen_ms);
      }
    }
  }

  /** Writes the rows changed since the last flush; one flush at a time. On failure they stay changed. */
  flush(): Promise<void> {
    return (this.flushing ??= this.writeChanged().finally(() => (this.flushing = undefined)));
  }

  private async writeChanged(): Promise<void> {
    if (this.dirty.size === 0) return;
    const ids = this.dirty;
    this.dirty = new Set();
    // Copies: observe() keeps changing the live objects while the store writes.
    const rows = [...ids].map((id) => ({ ...this.devices.get(id)! }));
    try {
      for (let i = 0; i < rows.length; i += PAGE) await this.store.upsertDevices(rows.slice(i, i + PAGE));
      this.stats.flushes++;
    } catch (e) {
      for (const id of ids) this.dirty.add(id);
      this.stats.flushFailures++;
      this.options.onFlushError?.(e, rows.length);
    }
  }

  /**
   * A page of devices in device id order, as of now: filtered by state, after device `after`, at most
   * `limit` (1..MAX_PAGE). `next` is the id to pass as `after` for the next page, or null after the last.
   */
  list(q: { state?: DeviceState; limit: number; after?: string }): { devices: ListedDevice[]; next: string | null } {
    const now = this.now();
    const limit = Math.max(1, Math.min(MAX_PAGE, q.limit));
    const ids = [...this.devices.keys()]
      .filter((id) => q.after === undefined || id > q.after)
      .filter((id) => q.state === undefined || (this.online.has(id) ? 'online' : 'offline') === q.state)
      .sort();
    const page = ids.slice(0, limit);
    const devices = page.map((id) => ({
      ...asOf(this.devices.get(id)!, now),
      state: this.online.has(id) ? ('online' as const) : ('offline' as const),
    }));
    return { devices, next: ids.length > limit ? page[page.length - 1]! : null };
  }
}
