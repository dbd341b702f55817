import type { Logger } from 'pino';
import type { Endpoint } from './server-list.js';
import { endpointKey, ServerPool, type ServerPoolOptions } from './server-pool.js';
import { SipSender, type SendResult, type SenderOptions } from './sip-sender.js';

/** Where one attempt goes, and how its outcome is reported back to the pool. */
export interface Route {
  sender: SipSender;
  endpoint: Endpoint;
}

/** Longest Retry-After honoured (a server asking for more is treated as down for that long anyway). */
const MAX_RETRY_AFTER_MS = 60_000;

export const DEFAULT_POOL_OPTIONS: ServerPoolOptions = { retryMs: 30_000, maxRetryMs: 600_000, quickRetryMs: 500 };

/**
 * One SIP sender per server of a meter's ordered list, and the pool choosing between them: each attempt
 * of a batch goes to the pool's choice, and its outcome (200, or a timeout, 503 or lost connection)
 * moves the pool. With one server this is the old behaviour: 503 waits its Retry-After, anything else
 * half a second, then the same server again.
 */
export class FailoverSender {
  private readonly senders = new Map<Endpoint, SipSender>();

  constructor(
    readonly pool: ServerPool,
    private readonly senderFor: (e: Endpoint) => SipSender,
  ) {
    for (const e of pool.endpoints) this.senders.set(e, senderFor(e));
  }

  /**
   * A new server list (the SRV records looked up again): senders for the new servers are started
   * before the pool may choose them; the ones that left are closed, and what was in flight to them
   * fails and goes to a server of the list (the journal keeps it meanwhile).
   */
  async refresh(endpoints: readonly Endpoint[]): Promise<void> {
    const known = new Set(this.pool.endpoints.map(endpointKey));
    for (const e of endpoints) {
      if (known.has(endpointKey(e))) continue;
      known.add(endpointKey(e));
      const sender = this.senderFor(e);
      await sender.start();
      this.senders.set(e, sender);
    }
    for (const gone of this.pool.replace(endpoints)) {
      this.senders.get(gone)?.close();
      this.senders.delete(gone);
    }
  }

  /** Senders for `endpoints`, which fail their TCP requests when a connection is lost (so they move on). */
  static create(
    endpoints: Endpoint[],
    o: Omit<SenderOptions, 'host' | 'port'>,
    log: Logger,
    poolOptions: ServerPoolOptions = DEFAULT_POOL_OPTIONS,
    /** Whether other servers may take over (more than one, or a list that DNS may change). */
    failOnClose = endpoints.length > 1,
  ): FailoverSender {
    const pool = new ServerPool(endpoints, poolOptions);
    return new FailoverSender(pool, (e) => new SipSender({ ...o, host: e.host, port: e.port, failOnClose }, log));
  }

  /** A single sender as a pool of one (what callers that know one server pass). */
  static of(sender: SipSender): FailoverSender {
    const endpoint = sender.endpoint;
    return new FailoverSender(new ServerPool([endpoint], DEFAULT_POOL_OPTIONS), () => sender);
  }

  async start(): Promise<void> {
    for (const s of this.senders.values()) await s.start();
  }

  async route(stopped: () => boolean): Promise<Route> {
    const endpoint = await this.pool.next(stopped);
    return { endpoint, sender: this.senders.get(endpoint)! };
  }

  /** Tells the pool how an attempt went; true when another attempt (here or elsewhere) makes sense. */
  report(route: Route, r: SendResult): boolean {
    if (r.status !== 0 && r.status !== 408 && r.status !== 503) {
      // Any other final answer (a 200, or a 4xx about the request itself) shows the server at work.
      this.pool.succeeded(route.endpoint);
      return false;
    }
    const after = Number(r.headers['retry-after']);
    const retryAfterMs = r.status === 503 && after > 0 ? Math.min(after * 1000, MAX_RETRY_AFTER_MS) : undefined;
    this.pool.failed(route.endpoint, retryAfterMs);
    return true;
  }

  close(): void {
    for (const s of this.senders.values()) s.close();
  }
}
