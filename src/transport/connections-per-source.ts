/**
 * Open connections per remote address, for a per-address cap. Only addresses with at least one
 * open connection are kept, so the map is bounded by the number of open connections.
 */
export class ConnectionsPerSource {
  private readonly open = new Map<string, number>();

  /** @param max most connections per address; 0 = no cap. */
  constructor(private readonly max: number) {}

  /** Counts a new connection from `address`; false (and nothing counted) when it is at the cap. */
  tryAdd(address: string): boolean {
    const n = this.open.get(address) ?? 0;
    if (this.max > 0 && n >= this.max) return false;
    this.open.set(address, n + 1);
    return true;
  }

  remove(address: string): void {
    const n = this.open.get(address) ?? 0;
    if (n <= 1) this.open.delete(address);
    else this.open.set(address, n - 1);
  }

  /** Connections open from `address`. */
  count(address: string): number {
    return this.open.get(address) ?? 0;
  }
}
