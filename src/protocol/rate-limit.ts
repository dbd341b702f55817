import { TwoGenerationMap } from '../util/two-generation-map.js';

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
 * Keys are remembered in two generations (util/two-generation-map.ts): beyond maxKeys the least
 * recently seen generation is forgotten whole. A forgotten
 * key starts again with a full bucket; a key that keeps sending stays in the newer generation,
 * so it cannot shed its bucket without maxKeys/2 other keys sending meanwhile.
 */
export class RateLimit {
  private readonly buckets: TwoGenerationMap<string, Bucket>;
  /** Requests refused so far (for the stopped line and tests). */
  refused = 0;

  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    maxKeys = 65_536,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.buckets = new TwoGenerationMap(maxKeys);
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
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    }
    return b;
  }
}
