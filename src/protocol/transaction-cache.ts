import { detachedCopy } from '../latin1.js';
import type { SipRequest } from './sip-request.js';

/** In progress: retransmissions are absorbed (RFC 3261 17.2.2, Trying state). */
export const PENDING = Symbol('pending');

interface Entry {
  at: number;
  response: Buffer | typeof PENDING;
}

/** Memory an entry costs besides its key and response bytes (map slot, entry object), roughly. */
const ENTRY_OVERHEAD = 120;

/**
 * Non-INVITE server transactions for unreliable transports: remembers each request's final
 * response for Timer J (64*T1 = 32 s) so that a retransmission gets the same answer and is never
 * processed twice. Memory is bounded three times: by age, by entry count and by bytes (keys and
 * responses: a response copies the request's Via, From, To, Call-ID and CSeq, so a count bound
 * alone let requests with 8-KB heads hold 16 KB each).
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
  private readonly generationMaxBytes: number;
  /** Bytes of keys and responses (plus ENTRY_OVERHEAD each) in each generation. */
  private currentBytes = 0;
  private previousBytes = 0;

  constructor(
    maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    maxBytes = Infinity,
  ) {
    this.generationMax = Math.max(1, Math.floor(maxEntries / 2));
    this.generationMaxBytes = maxBytes / 2;
    this.currentSince = now();
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** Bytes held, roughly: at most the maxBytes given, plus the response of each generation's newest entry. */
  get bytes(): number {
    return this.currentBytes + this.previousBytes;
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
    this.insert(key, { at: now, response: PENDING }, now);
    return undefined;
  }

  begin(key: string): void {
    const now = this.now();
    this.age(now);
    this.insert(key, { at: now, response: PENDING }, now);
  }

  complete(key: string, response: Buffer): void {
    const inCurrent = this.current.get(key);
    const e = inCurrent ?? this.previous.get(key);
    // Keep the original time: Timer J runs from the request, not from the answer.
    if (e) {
      e.response = response;
      if (inCurrent) this.currentBytes += response.length;
      else this.previousBytes += response.length;
    } else {
      const now = this.now();
      this.insert(key, { at: now, response }, now);
    }
  }

  private insert(key: string, entry: Entry, now: number): void {
    const bytes = key.length + ENTRY_OVERHEAD + (entry.response === PENDING ? 0 : entry.response.length);
    if (this.current.size >= this.generationMax || this.currentBytes + bytes > this.generationMaxBytes) {
      this.rotate(now);
    }
    this.current.set(key, entry);
    this.currentBytes += bytes;
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
    this.previousBytes = this.currentBytes;
    this.current = new Map();
    this.currentBytes = 0;
    this.currentSince = now;
  }
}

/**
 * RFC 3261 17.2.3 matching: top Via branch (magic cookie z9hG4bK), sent-by and method. For
 * RFC 2543 clients without the cookie, Call-ID, CSeq and From tag stand in. Over UDP the source
 * address and port are part of the key too: a retransmission comes from where the request came
 * from, while a request sent from elsewhere with a predicted branch must not take the place of
 * the real one (it would be answered from the cache and never stored).
 */
export function transactionKey(req: SipRequest, source?: { address: string; port: number }): string {
  const via = req.headers.via![0]!;
  const sentBy = `${via.host}:${via.port ?? ''}`;
  const branch = via.params.branch;
  const cseq = req.headers.cseq;
  const from = source ? `|${source.address}:${source.port}` : '';
  const key = branch?.startsWith('z9hG4bK')
    ? `${branch}|${sentBy}|${req.method}${from}`
    : `${req.headers['call-id']}|${cseq?.seq}|${req.headers.from?.params?.tag}|${sentBy}|${req.method}${from}`;
  // Kept for 32 s: a copy, so that it does not hold on to the head it was sliced from.
  return detachedCopy(key);
}
