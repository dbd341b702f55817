import { detachedCopy } from '../latin1.js';
import type { Logger } from 'pino';
import type { DeviceCredential } from '../domain/device-credential.js';
import { StoreUnavailableError } from '../errors.js';
import type { ConsumptionStore } from '../store/consumption-store.js';

export interface CredentialCacheOptions {
  /**
   * How often the whole table is read again whatever the version says (a change made without it);
   * checked at each poll.
   */
  refreshMs: number;
  /**
   * How often the credentials' version token is read (one small read): the table is loaded again
   * when it changed, so a credential added, rotated or removed takes effect within this.
   */
  pollMs: number;
  /**
   * How long "this device has no credential" is believed: after the last successful poll or load,
   * or after a store lookup of that device (which the cache makes only when its polls fail).
   */
  negativeMs: number;
  /** Most "no credential" answers kept (a flood of invented device ids must not grow memory). */
  maxNegative: number;
}

/** Most store lookups in flight: beyond it a request is answered 503 rather than queued. */
const MAX_LOOKUPS = 256;

/**
 * The credentials the authenticator needs, in memory: a lookup per request must not be a store
 * read. Loaded whole at start; then the store's version token of the credentials is read every
 * `pollMs` and the table loaded again when it changed (and every `refreshMs` regardless).
 *
 * A request without credentials (an anonymous meter: loopback, or security.allow_insecure) asks
 * whether its device has any (forAnonymous): it is answered from memory, without a store read, while
 * the last poll is younger than `negativeMs`. Why: every anonymous meter is missing from memory, and a
 * read per request for each new one took as many store reads as writes: on one Cassandra node at
 * 2,000 MESSAGEs/s from new devices the reads filled their 256 slots and answered 503s, and their
 * latency came before overload control could see it (docs/performance.md). A peer that presents
 * credentials for a device missing from memory (added since the last poll) still has it looked up
 * once per `negativeMs` (get): few do, and only they.
 */
export class CredentialCache {
  private byDevice = new Map<string, DeviceCredential>();
  private readonly missing = new Map<string, number>();
  private readonly lookups = new Map<string, Promise<DeviceCredential | undefined>>();
  private timer: NodeJS.Timeout | undefined;
  /** The version token the loaded table is at least as new as. */
  private version = '';
  /** When the store last confirmed the table in memory (a load, or a poll showing no change). */
  private confirmedAt = -Infinity;
  /** When the whole table was last loaded. */
  private loadedAt = -Infinity;
  /** The poll in progress (one at a time): stop() waits for it, so that it is done before the store closes. */
  private polling: Promise<void> | undefined;

  constructor(
    private readonly store: Pick<ConsumptionStore, 'listCredentials' | 'readCredential' | 'credentialsVersion'>,
    private readonly options: CredentialCacheOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.poll(), this.options.pollMs);
    this.timer.unref();
  }

  /**
   * Stops the timers; resolves once a poll or reload in progress is done. Why wait: a statement still
   * out when the store closes may leave the Cassandra driver a connection open (a first execution
   * prepares on the hosts), which kept a test process alive.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
  }

  get size(): number {
    return this.byDevice.size;
  }

  /** Loads the whole table. The token is read first: a change made during the load shows at the next poll. */
  async reload(): Promise<void> {
    const startedAt = this.now();
    const version = await this.store.credentialsVersion();
    const all = await this.store.listCredentials();
    this.byDevice = new Map(all.map((c) => [c.device_id, c]));
    this.missing.clear();
    this.version = version;
    this.confirmedAt = startedAt;
    this.loadedAt = startedAt;
  }

  /**
   * Reads the version token; loads the table again if it changed, or if the last load is refreshMs old
   * (a change made without the token). One at a time; failures only logged.
   */
  poll(): Promise<void> {
    this.polling ??= this.check().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async check(): Promise<void> {
    try {
      const startedAt = this.now();
      const version = await this.store.credentialsVersion();
      if (version !== this.version || startedAt - this.loadedAt >= this.options.refreshMs) await this.reload();
      else this.confirmedAt = startedAt;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'credential poll failed; keeping the last ones');
    }
  }

  /** The credential if it is in memory (undefined: not known to be there; call get()). */
  peek(device: string): DeviceCredential | undefined {
    return this.byDevice.get(device);
  }

  /**
   * For a request without credentials: does the device it names have any? From memory while the last
   * poll is younger than negativeMs (no store read for an anonymous meter); else as get().
   */
  forAnonymous(device: string): DeviceCredential | undefined | Promise<DeviceCredential | undefined> {
    const known = this.byDevice.get(device);
    if (known || this.now() - this.confirmedAt < this.options.negativeMs) return known;
    return this.get(device);
  }

  /**
   * The device's credential, from memory or (at most once per negativeMs) from the store: for a peer
   * that presents credentials, which may have been added since the last poll.
   */
  get(device: string): DeviceCredential | undefined | Promise<DeviceCredential | undefined> {
    const known = this.byDevice.get(device);
    if (known) return known;
    const missingSince = this.missing.get(device);
    if (missingSince !== undefined && this.now() - missingSince < this.options.negativeMs) return undefined;
    const pending = this.lookups.get(device);
    if (pending) return pending;
    if (this.lookups.size >= MAX_LOOKUPS) {
      return Promise.reject(new StoreUnavailableError('too many credential lookups in flight'));
    }
    return this.lookUp(detachedCopy(device));
  }

  /** `device` is detached from the request text: it is kept as a key below. */
  private lookUp(device: string): Promise<DeviceCredential | undefined> {
    const lookup = this.store.readCredential(device).then(
      (c) => {
        this.lookups.delete(device);
        if (c) this.byDevice.set(device, c);
        else this.rememberMissing(device);
        return c;
      },
      (e: unknown) => {
        this.lookups.delete(device);
        throw e;
      },
    );
    this.lookups.set(device, lookup);
    return lookup;
  }

  private rememberMissing(device: string): void {
    this.missing.delete(device);
    this.missing.set(device, this.now());
    while (this.missing.size > this.options.maxNegative) {
      this.missing.delete(this.missing.keys().next().value!);
    }
  }
}
