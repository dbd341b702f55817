import type { Endpoint } from './server-list.js';

export interface ServerPoolOptions {
  /** How long a server that failed is avoided while another one works (doubles per failure in a row). */
  retryMs: number;
  /** Cap of that doubling. */
  maxRetryMs: number;
  /** When every server is down: how soon the least recently failed one is tried again (a Retry-After wins). */
  quickRetryMs: number;
  now?: () => number;
}

interface ServerState {
  endpoint: Endpoint;
  /** Failures in a row; 0 = healthy. */
  failures: number;
  /** Not chosen before this while another server is usable (the backoff). */
  downUntil: number;
  /** Not used at all before this (Retry-After, or a short pause when everything is down). */
  holdUntil: number;
  /** One request is probing whether it is back; the others keep away until that one answers. */
  probing: boolean;
}

export type Pick = { endpoint: Endpoint; index: number } | { waitMs: number };

/**
 * The ordered servers of a meter (RFC 3263: try the next on a timeout, a 503 or a transport failure)
 * with a way back: a failed server is avoided for a backoff, then one request probes it, and when that
 * one is answered the meter is back on its preferred server. Nothing here loses data: a failed request
 * is simply sent again to whatever `pick` returns next (the journal and the idempotent upsert do the rest).
 */
export class ServerPool {
  private states: ServerState[];
  /** The server used last, to count switches (it may have left the list since). */
  private last: Endpoint | undefined;
  /** Times the server in use changed (a failover or a return to a preferred server). */
  switches = 0;

  constructor(
    endpoints: readonly Endpoint[],
    private readonly o: ServerPoolOptions,
  ) {
    if (endpoints.length === 0) throw new Error('a server pool needs at least one server');
    this.states = endpoints.map(fresh);
  }

  /**
   * A new list of servers (a DNS SRV lookup made again), in its order of preference. A server still
   * listed (same host and port) keeps its state and its Endpoint object, so a failed one stays avoided;
   * the new ones start healthy. Returns the servers that left the list: whatever was in flight to
   * them fails as it would on any server and is sent again to one of the list.
   */
  replace(endpoints: readonly Endpoint[]): Endpoint[] {
    if (endpoints.length === 0) throw new Error('a server pool needs at least one server');
    const byKey = new Map(this.states.map((s) => [endpointKey(s.endpoint), s]));
    const next = new Map<string, ServerState>();
    for (const e of endpoints) {
      const k = endpointKey(e);
      if (!next.has(k)) next.set(k, byKey.get(k) ?? fresh(e));
    }
    const kept = new Set(next.values());
    const removed = this.states.filter((s) => !kept.has(s)).map((s) => s.endpoint);
    this.states = [...next.values()];
    return removed;
  }

  get endpoints(): Endpoint[] {
    return this.states.map((s) => s.endpoint);
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  /** The most preferred usable server, or how long to wait until one is. */
  pick(): Pick {
    const now = this.now();
    for (const [index, s] of this.states.entries()) {
      if (s.failures === 0 && now >= s.holdUntil) return this.use(index);
      if (s.failures > 0 && !s.probing && now >= s.downUntil && now >= s.holdUntil) {
        s.probing = true;
        return this.use(index);
      }
    }
    // Everything is down or being probed: the one that may be used soonest, in order of preference.
    let best = 0;
    for (const [i, s] of this.states.entries()) if (s.holdUntil < this.states[best]!.holdUntil) best = i;
    const wait = this.states[best]!.holdUntil - now;
    return wait > 0 ? { waitMs: wait } : this.use(best);
  }

  /** `pick`, waiting while nothing is usable (up to `stopped`). */
  async next(stopped: () => boolean = () => false): Promise<Endpoint> {
    for (;;) {
      const p = this.pick();
      if ('endpoint' in p) return p.endpoint;
      if (stopped()) return this.states[0]!.endpoint;
      await new Promise((r) => setTimeout(r, Math.min(p.waitMs, 1000)));
    }
  }

  private use(index: number): Pick {
    const endpoint = this.states[index]!.endpoint;
    if (this.last !== undefined && endpoint !== this.last) this.switches++;
    this.last = endpoint;
    return { endpoint, index };
  }

  /** The preferred server usable (or due for its probe) now: a long-lived connection elsewhere may come back. */
  preferredDue(current: Endpoint): boolean {
    const first = this.states[0]!;
    if (first.endpoint === current) return false;
    const now = this.now();
    return now >= first.holdUntil && (first.failures === 0 || (!first.probing && now >= first.downUntil));
  }

  succeeded(endpoint: Endpoint): void {
    const s = this.stateOf(endpoint);
    if (!s) return; // it left the list (replace) while a request to it was in flight
    s.failures = 0;
    s.probing = false;
    s.downUntil = 0;
  }

  /**
   * A timeout, a 503 or a lost connection. Only the first failure of a healthy server (or of its probe)
   * raises the backoff: the other requests that were in flight to it fail with it and say nothing new.
   */
  failed(endpoint: Endpoint, retryAfterMs?: number): void {
    const s = this.stateOf(endpoint);
    if (!s) return;
    const now = this.now();
    s.holdUntil = Math.max(s.holdUntil, now + (retryAfterMs ?? this.o.quickRetryMs));
    if (s.failures > 0 && !s.probing) return;
    s.failures++;
    s.probing = false;
    const backoff = Math.min(this.o.retryMs * 2 ** (s.failures - 1), this.o.maxRetryMs);
    s.downUntil = now + Math.max(backoff, retryAfterMs ?? 0);
  }

  /** Servers avoided right now (for logs and tests). */
  down(): Endpoint[] {
    const now = this.now();
    return this.states.filter((s) => s.failures > 0 && now < s.downUntil).map((s) => s.endpoint);
  }

  private stateOf(endpoint: Endpoint): ServerState | undefined {
    return this.states.find((x) => x.endpoint === endpoint);
  }
}

const fresh = (endpoint: Endpoint): ServerState => ({
  endpoint,
  failures: 0,
  downUntil: 0,
  holdUntil: 0,
  probing: false,
});
export const endpointKey = (e: Endpoint): string => `${e.host}:${e.port}`;
