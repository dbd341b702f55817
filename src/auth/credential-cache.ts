import { detachedCopy } from '../latin1.js';
import type { Logger } from 'pino';
import type { DeviceCredential } from '../domain/device-credential.js';
import { StoreUnavailableError } from '../errors.js';
import type { ConsumptionStore } from '../store/consumption-store.js';

export interface CredentialCacheOptions {
  /** How often the whole table is read again (picks up rotations and removals by the CLI). */
  refreshMs: number;
  /** How long "this device has no credential" is believed before the store is asked again. */
  negativeMs: number;
  /** Most "no credential" answers kept (a flood of invented device ids must not grow memory). */
  maxNegative: number;
}

/** Most store lookups in flight: beyond it a request is answered 503 rather than queued. */
const MAX_LOOKUPS = 256;

/**
 * The credentials the authenticator needs, in memory: a lookup per request must not be a store
 * read. Loaded whole at start and every `refreshMs`; a device missing from it is looked up once
 * (a credential added since the last load) and its absence remembered for `negativeMs`.
 */
export class CredentialCache {
  private byDevice = new Map<string, DeviceCredential>();
  private readonly missing = new Map<string, number>();
  private readonly lookups = new Map<string, Promise<DeviceCredential | undefined>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Pick<ConsumptionStore, 'listCredentials' | 'readCredential'>,
    private readonly options: CredentialCacheOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => {
      this.reload().catch((e: unknown) =>
        this.log.warn({ err: (e as Error).message }, 'credential refresh failed; keeping the last ones'),
      );
    }, this.options.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get size(): number {
    return this.byDevice.size;
  }

  async reload(): Promise<void> {
    const all = await this.store.listCredentials();
    this.byDevice = new Map(all.map((c) => [c.device_id, c]));
    this.missing.clear();
  }

  /** The credential if it is in memory (undefined: not known to be there; call get()). */
  peek(device: string): DeviceCredential | undefined {
    return this.byDevice.get(device);
  }

  /** The device's credential, from memory or (at most once per negativeMs) from the store. */
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
