/** One key's bucket: tokens left and when they were last counted. */
interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A rate limit per key: a token bucket per key, `ratePerS` tokens a second up to `burst`; a request
 * takes one token or is refused (the caller answers 503 with Retry-After). Keyed by source address
 * in the transaction layer (sip.rate_limit) and by authenticated device id after authentication
 * (sip.device_rate_limit, ingest/sip-handler.ts).
 *
 * Keys are remembered in two generations, as the transaction cache and the sequence tracker
 * do (and for the same reason: dropping a Map's oldest keys one at a time costs O(size) per
 * request): beyond maxKeys the least recently seen generation is forgotten whole. A forgotten
 * key starts again with a full bucket; a key that keeps sending stays in the newer generation,
 * so it cannot shed its bucket without maxKeys/2 other keys sending meanwhile.
 */
export class RateLimit {
  private current = new Map<string, Bucket>();
  private previous = new Map<string, Bucket>();
  private readonly generationMax: number;
  /** Requests refused so far (for the stopped line and tests). */
  refused = 0;

  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    maxKeys = 65_536,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.generationMax = Math.max(1, Math.floor(maxKeys / 2));
  }

  /** Keys remembered (at most maxKeys). */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** Takes a token for `key`; false when its bucket is empty (the request is over the limit). */
  take(key: string): boolean {
    const t = this.now();
    const b = this.bucket(key, t);
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) * this.ratePerS) / 1000);
    b.at = t;
    if (b.tokens < 1) {
      this.refused++;
      return false;
    }
    b.tokens -= 1;
    return true;
  }

  private bucket(key: string, t: number): Bucket {
    let b = this.current.get(key);
    if (b !== undefined) return b;
    b = this.previous.get(key);
    if (b !== undefined) this.previous.delete(key);
    if (this.current.size >= this.generationMax) {
      this.previous = this.current;
      this.current = new Map();
    }
    b ??= { tokens: this.burst, at: t };
    this.current.set(key, b);
    return b;
  }
}
