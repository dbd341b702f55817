import { detachedCopy } from '../latin1.js';
/**
 * Replay protection for reused nonces (RFC 7616 3.4.5 nonce-count): per (device, nonce), the
 * highest nc seen and a 64-wide window below it, as IPsec's anti-replay window. Meters reuse one
 * nonce for many requests with increasing nc; over UDP two requests can arrive out of order, which
 * the window allows, while any nc seen before is refused.
 *
 * Bounded: at most `maxEntries` (device, nonce) pairs. When a pair is evicted to make room, every
 * nonce issued up to the evicted one's issue time is treated as stale from then on, so that
 * forgetting a window can never let a replay through; the meter just gets a fresh nonce.
 *
 * The window is two 32-bit words rather than a BigInt: this runs once per authenticated request.
 */
const WINDOW = 64;

interface Window {
  max: number;
  /** Bit i of lo (i < 32) or of hi (i - 32): nc = max - i was seen. */
  lo: number;
  hi: number;
  issuedMs: number;
}

export type CountVerdict = 'fresh' | 'replayed' | 'too-old' | 'forgotten';

export class NonceCounts {
  private readonly windows = new Map<string, Window>();
  /** Nonces issued at or before this time that we no longer track are refused as stale. */
  private forgottenUpToMs: number;

  /**
   * `startedMs`: the counts of nonces issued before this process started are lost (a restart):
   * such nonces are stale from the start, so a request captured before the restart cannot be
   * replayed after it. Receivers that share security.nonce_key do not share counts: see
   * docs/security.md.
   */
  constructor(
    private readonly maxEntries: number,
    startedMs = -Infinity,
  ) {
    this.forgottenUpToMs = startedMs;
  }

  /** When (device, nonce) was first used: its nonce was checked then and need not be checked again. */
  issuedAt(device: string, nonce: string): number | undefined {
    return this.issuedAtKey(nonceCountKey(device, nonce));
  }

  /** issuedAt by a key from nonceCountKey: a request builds and hashes its key once, for both calls. */
  issuedAtKey(k: string): number | undefined {
    return this.windows.get(k)?.issuedMs;
  }

  /** Records nc for (device, nonce) if it was never seen; says why not otherwise. */
  use(device: string, nonce: string, issuedMs: number, nc: number): CountVerdict {
    return this.useKey(nonceCountKey(device, nonce), issuedMs, nc);
  }

  /** use by a key from nonceCountKey. */
  useKey(k: string, issuedMs: number, nc: number): CountVerdict {
    const w = this.windows.get(k);
    if (!w) {
      if (issuedMs <= this.forgottenUpToMs) return 'forgotten';
      // Detached when kept: the key is built from slices of the request head, which it would keep alive.
      this.windows.set(detachedCopy(k), { max: nc, lo: 1, hi: 0, issuedMs });
      this.evict();
      return 'fresh';
    }
    if (nc > w.max) {
      shift(w, nc - w.max);
      w.lo |= 1;
      w.max = nc;
      return 'fresh';
    }
    const back = w.max - nc;
    if (back >= WINDOW) return 'too-old';
    const [word, bit] = back < 32 ? (['lo', back] as const) : (['hi', back - 32] as const);
    const mask = 1 << bit;
    if (w[word] & mask) return 'replayed';
    w[word] |= mask;
    return 'fresh';
  }

  get size(): number {
    return this.windows.size;
  }

  private evict(): void {
    while (this.windows.size > this.maxEntries) {
      const [k, w] = this.windows.entries().next().value!;
      this.windows.delete(k);
      if (w.issuedMs > this.forgottenUpToMs) this.forgottenUpToMs = w.issuedMs;
    }
  }
}

/** The key of (device, nonce) for issuedAtKey and useKey. */
export function nonceCountKey(device: string, nonce: string): string {
  // Not copied here: only the first use of a (device, nonce) stores its key, and useKey detaches it then.
  return `${device}\u0000${nonce}`;
}

/** Moves the window up by n (the bits of older counts move to higher positions). */
function shift(w: Window, n: number): void {
  if (n >= WINDOW) {
    w.lo = 0;
    w.hi = 0;
  } else if (n >= 32) {
    w.hi = n === 32 ? w.lo : w.lo << (n - 32);
    w.lo = 0;
  } else {
    w.hi = (w.hi << n) | (w.lo >>> (32 - n));
    w.lo = w.lo << n;
  }
}
