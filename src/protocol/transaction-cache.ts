import type { SipRequest } from './sip-request.js';

/** In progress: retransmissions are absorbed (RFC 3261 17.2.2, Trying state). */
export const PENDING = Symbol('pending');

type Entry = { at: number; response: Buffer | typeof PENDING };

/**
 * Non-INVITE server transactions for unreliable transports: remembers each request's final
 * response for Timer J (64*T1 = 32 s) so that a retransmission gets the same answer and is never
 * processed twice. Memory is bounded twice: by age and by entry count (oldest evicted first).
 * Evicting early is safe because batch writes are idempotent upserts.
 */
export class TransactionCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(key: string): Buffer | typeof PENDING | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() - e.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.response;
  }

  begin(key: string): void {
    this.evict();
    this.entries.set(key, { at: this.now(), response: PENDING });
  }

  complete(key: string, response: Buffer): void {
    const e = this.entries.get(key);
    // Keep the original insertion time so that eviction order stays by age.
    if (e) e.response = response;
    else this.entries.set(key, { at: this.now(), response });
  }

  /** The request failed before a response was made: let a retransmission try again. */
  abandon(key: string): void {
    this.entries.delete(key);
  }

  private evict(): void {
    const now = this.now();
    for (const [key, e] of this.entries) {
      if (this.entries.size < this.maxEntries && now - e.at <= this.ttlMs) break;
      this.entries.delete(key);
    }
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
  if (branch && branch.startsWith('z9hG4bK')) return `${branch}|${sentBy}|${req.method}`;
  const cseq = req.headers.cseq;
  return `${req.headers['call-id']}|${cseq?.seq}|${req.headers.from?.params?.tag}|${sentBy}|${req.method}`;
}
