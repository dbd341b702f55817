/** One source address's bucket: tokens left and when they were last counted. */
interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Per-source-address rate limit: a token bucket per address, `ratePerS` tokens a second up to
 * `burst`; a request takes one token or is refused (the caller answers 503 with Retry-After).
 *
 * Addresses are remembered in two generations, as the transaction cache and the sequence tracker
 * do (and for the same reason: dropping a Map's oldest keys one at a time costs O(size) per
 * request): beyond maxSources the least recently seen generation is forgotten whole. A forgotten
 * address starts again with a full bucket; an address that keeps sending stays in the newer
 * generation, so it cannot shed its bucket without maxSources/2 other addresses sending meanwhile.
 */
export class SourceRateLimit {
  private current = new Map<string, Bucket>();
  private previous = new Map<string, Bucket>();
  private readonly generationMax: number;
  /** Requests refused so far (for the stopped line and tests). */
  refused = 0;

  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    maxSources = 65_536,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.generationMax = Math.max(1, Math.floor(maxSources / 2));
  }

  /** Addresses remembered (at most maxSources). */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** Takes a token for `source`; false when its bucket is empty (the request is over the limit). */
  take(source: string): boolean {
    const t = this.now();
    const b = this.bucket(source, t);
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) * this.ratePerS) / 1000);
    b.at = t;
    if (b.tokens < 1) {
      this.refused++;
      return false;
    }
    b.tokens -= 1;
    return true;
  }

  private bucket(source: string, t: number): Bucket {
    let b = this.current.get(source);
    if (b !== undefined) return b;
    b = this.previous.get(source);
    if (b !== undefined) this.previous.delete(source);
    if (this.current.size >= this.generationMax) {
      this.previous = this.current;
      this.current = new Map();
    }
    b ??= { tokens: this.burst, at: t };
    this.current.set(source, b);
    return b;
  }
}
