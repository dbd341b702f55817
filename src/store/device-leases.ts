/**
 * Leases on names (the sync service leases one per device while it reconciles that device's periods):
 * at most one owner holds a name at a time, and a lease ends by itself ttlS seconds after it was last
 * taken or renewed, so that the death of its owner blocks the name for at most that long.
 * Cassandra: a row per name written with lightweight transactions and a TTL (CassandraStore);
 * SQLite, which one process writes: InProcessLeases.
 */
export interface DeviceLeases {
  /** Takes the lease for `owner` (or renews it when owner already holds it); false when another owner holds it. */
  acquire(name: string, owner: string, ttlS: number): Promise<boolean>;
  /** Extends owner's lease by ttlS from now; false when owner no longer holds it (it expired and was taken). */
  renew(name: string, owner: string, ttlS: number): Promise<boolean>;
  /** Gives the lease up when owner holds it; otherwise does nothing. */
  release(name: string, owner: string): Promise<void>;
}

/** The leases of one process, in memory (the SQLite backend: a database file has one writing process). */
export class InProcessLeases implements DeviceLeases {
  private readonly held = new Map<string, { owner: string; untilMs: number }>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  acquire(name: string, owner: string, ttlS: number): Promise<boolean> {
    const h = this.held.get(name);
    if (h && h.owner !== owner && h.untilMs > this.nowMs()) return Promise.resolve(false);
    this.held.set(name, { owner, untilMs: this.nowMs() + ttlS * 1000 });
    return Promise.resolve(true);
  }

  renew(name: string, owner: string, ttlS: number): Promise<boolean> {
    const h = this.held.get(name);
    if (h?.owner !== owner || h.untilMs <= this.nowMs()) return Promise.resolve(false);
    h.untilMs = this.nowMs() + ttlS * 1000;
    return Promise.resolve(true);
  }

  release(name: string, owner: string): Promise<void> {
    if (this.held.get(name)?.owner === owner) this.held.delete(name);
    return Promise.resolve();
  }
}
