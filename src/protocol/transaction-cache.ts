import { detachedCopy } from './detached-string.js';
import type { SipRequest } from './sip-request.js';

/** In progress: retransmissions are absorbed (RFC 3261 17.2.2, Trying state). */
export const PENDING = Symbol('pending');

type Entry = { at: number; response: Buffer | typeof PENDING };

/**
 * Non-INVITE server transactions for unreliable transports: remembers each request's final
 * response for Timer J (64*T1 = 32 s) so that a retransmission gets the same answer and is never
 * processed twice. Memory is bounded twice: by age and by entry count.
 *
 * Two generations instead of one ordered map: evicting the oldest entry of a Map one at a time
 * leaves tombstones at its head that every later eviction walks again (V8 compacts only on
 * rehash), which made each request O(cache size) once the cache was full: under 8k MESSAGE/s the
 * server stalled ~10 s in. Here a generation is dropped whole, in O(1) per request. An entry lives
 * at least Timer J unless the count bound pushes it out earlier (at least the newest
 * maxEntries/2 are always kept); evicting early is safe because batch writes are idempotent upserts.
 */
export class TransactionCache {
  private current = new Map<string, Entry>();
  private previous = new Map<string, Entry>();
  private currentSince: number;
  private readonly generationMax: number;

  constructor(
    maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.generationMax = Math.max(1, Math.floor(maxEntries / 2));
    this.currentSince = now();
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  lookup(key: string): Buffer | typeof PENDING | undefined {
    const now = this.now();
    this.age(now);
    const e = this.current.get(key) ?? this.previous.get(key);
    if (!e || now - e.at > this.ttlMs) return undefined;
    return e.response;
  }

  /**
   * lookup, then begin when nothing live is known: what the transaction layer does for every
   * request, with one clock read and one ageing check instead of two.
   */
  lookupOrBegin(key: string): Buffer | typeof PENDING | undefined {
    const now = this.now();
    this.age(now);
    const e = this.current.get(key) ?? this.previous.get(key);
    if (e && now - e.at <= this.ttlMs) return e.response;
    if (this.current.size >= this.generationMax) this.rotate(now);
    this.current.set(key, { at: now, response: PENDING });
    return undefined;
  }

  begin(key: string): void {
    const now = this.now();
    this.age(now);
    if (this.current.size >= this.generationMax) this.rotate(now);
    this.current.set(key, { at: now, response: PENDING });
  }

  complete(key: string, response: Buffer): void {
    const e = this.current.get(key) ?? this.previous.get(key);
    // Keep the original time: Timer J runs from the request, not from the answer.
    if (e) e.response = response;
    else {
      if (this.current.size >= this.generationMax) this.rotate(this.now());
      this.current.set(key, { at: this.now(), response });
    }
  }

  /** The request failed before a response was made: let a retransmission try again. */
  abandon(key: string): void {
    this.current.delete(key);
    this.previous.delete(key);
  }

  /** Once the current generation is a Timer J old, everything in the previous one has expired. */
  private age(now: number): void {
    if (now - this.currentSince > this.ttlMs) this.rotate(now);
  }

  private rotate(now: number): void {
    this.previous = this.current;
    this.current = new Map();
    this.currentSince = now;
  }
}

/**
 * RFC 3261 17.2.3 matching: top Via branch (magic cookie z9hG4bK), sent-by and method. For
 * RFC 2543 clients without the cookie, Call-ID, CSeq and From tag stand in.
 */
export function transactionKey(req: SipRequest): string {
  const via = req.headers.via![0]!;
  const sentBy = `${via.host}:${via.port ?? ''}`;
  const branch = via.params.branch;
  const cseq = req.headers.cseq;
  const key =
    branch && branch.startsWith('z9hG4bK')
      ? `${branch}|${sentBy}|${req.method}`
      : `${req.headers['call-id']}|${cseq?.seq}|${req.headers.from?.params?.tag}|${sentBy}|${req.method}`;
  // Kept for 32 s: a copy, so that it does not hold on to the head it was sliced from.
  return detachedCopy(key);
}
