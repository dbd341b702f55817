/**
 * Replay protection for reused nonces (RFC 7616 3.4.5 nonce-count): per (device, nonce), the
 * highest nc seen and a 64-wide window below it, as IPsec's anti-replay window. Meters reuse one
 * nonce for many requests with increasing nc; over UDP two requests can arrive out of order, which
 * the window allows, while any nc seen before is refused.
 *
 * Bounded: at most `maxEntries` (device, nonce) pairs. When a pair is evicted to make room, every
 * nonce issued up to the evicted one's issue time is treated as stale from then on, so that
 * forgetting a window can never let a replay through; the meter just gets a fresh nonce.
 */
const WINDOW = 64n;

interface Window {
  max: bigint;
  /** Bit i set: nc = max - i was seen. */
  seen: bigint;
  issuedMs: number;
}

export type CountVerdict = 'fresh' | 'replayed' | 'too-old' | 'forgotten';

export class NonceCounts {
  private readonly windows = new Map<string, Window>();
  /** Nonces issued at or before this time that we no longer track are refused as stale. */
  private forgottenUpToMs = -Infinity;

  constructor(private readonly maxEntries: number) {}

  /** Records nc for (device, nonce) if it was never seen; says why not otherwise. */
  use(device: string, nonce: string, issuedMs: number, nc: number): CountVerdict {
    const key = `${device}\u0000${nonce}`;
    const n = BigInt(nc);
    const w = this.windows.get(key);
    if (!w) {
      if (issuedMs <= this.forgottenUpToMs) return 'forgotten';
      this.windows.set(key, { max: n, seen: 1n, issuedMs });
      this.evict();
      return 'fresh';
    }
    if (n > w.max) {
      const shift = n - w.max;
      w.seen = shift >= WINDOW ? 1n : ((w.seen << shift) | 1n) & ((1n << WINDOW) - 1n);
      w.max = n;
      return 'fresh';
    }
    const back = w.max - n;
    if (back >= WINDOW) return 'too-old';
    const bit = 1n << back;
    if (w.seen & bit) return 'replayed';
    w.seen |= bit;
    return 'fresh';
  }

  get size(): number {
    return this.windows.size;
  }

  private evict(): void {
    while (this.windows.size > this.maxEntries) {
      const [key, w] = this.windows.entries().next().value!;
      this.windows.delete(key);
      if (w.issuedMs > this.forgottenUpToMs) this.forgottenUpToMs = w.issuedMs;
    }
  }
}
