import { detachedCopy } from '../latin1.js';
import { TwoGenerationMap } from '../util/two-generation-map.js';
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
 * Entries are kept in two generations (util/two-generation-map.ts), dropped whole. An entry lives
 * at least Timer J unless the count or byte bound pushes it out earlier (at least the newest
 * maxEntries/2 are always kept); evicting early is safe because batch writes are idempotent upserts.
 */
export class TransactionCache {
  private readonly entries: TwoGenerationMap<string, Entry>;
  private currentSince: number;

  constructor(
    maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    maxBytes = Infinity,
  ) {
    this.currentSince = now();
    this.entries = new TwoGenerationMap(maxEntries, {
      maxWeight: maxBytes,
      onRotate: () => (this.currentSince = this.now()),
    });
  }

  get size(): number {
    return this.entries.size;
  }

  /** Bytes held, roughly: at most the maxBytes given, plus the response of each generation's newest entry. */
  get bytes(): number {
    return this.entries.weight;
  }

  /**
   * What the transaction layer does for every request: the live entry's response (or PENDING), or,
   * when nothing live is known, begins the transaction and returns undefined. One clock read.
   */
  lookupOrBegin(key: string): Buffer | typeof PENDING | undefined {
    const now = this.now();
    this.age(now);
    const e = this.entries.peek(key);
    if (e && now - e.at <= this.ttlMs) return e.response;
    this.entries.set(key, { at: now, response: PENDING }, key.length + ENTRY_OVERHEAD);
    return undefined;
  }

  complete(key: string, response: Buffer): void {
    const e = this.entries.peek(key);
    // Keep the original time: Timer J runs from the request, not from the answer.
    if (e) {
      e.response = response;
      this.entries.addWeight(key, response.length);
    } else {
      this.entries.set(key, { at: this.now(), response }, key.length + ENTRY_OVERHEAD + response.length);
    }
  }

  /** The request failed before a response was made: let a retransmission try again. */
  abandon(key: string): void {
    this.entries.delete(key);
  }

  /** Once the current generation is a Timer J old, everything in the previous one has expired. */
  private age(now: number): void {
    if (now - this.currentSince > this.ttlMs) this.entries.rotate();
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
