import { TwoGenerationMap } from '../util/two-generation-map.js';

/** One source address's bucket: tokens left and when they were last counted. */
interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Per-source-address rate limit: a token bucket per address, `ratePerS` tokens a second up to
 * `burst`; a request takes one token or is refused (the caller answers 503 with Retry-After).
 *
 * Addresses are remembered in two generations (util/two-generation-map.ts): beyond maxSources the
 * least recently seen generation is forgotten whole. A forgotten
 * address starts again with a full bucket; an address that keeps sending stays in the newer
 * generation, so it cannot shed its bucket without maxSources/2 other addresses sending meanwhile.
 */
export class SourceRateLimit {
  private readonly buckets: TwoGenerationMap<string, Bucket>;
  /** Requests refused so far (for the stopped line and tests). */
  refused = 0;

  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    maxSources = 65_536,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.buckets = new TwoGenerationMap(maxSources);
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
    let b = this.buckets.get(source);
    if (b === undefined) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(source, b);
    }
    return b;
  }
}
