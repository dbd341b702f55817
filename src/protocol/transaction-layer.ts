import type { Logger } from 'pino';
import { SipRequestError } from '../errors.js';
import { AnswerDeadlines } from './answer-deadline.js';
import { RejectedRequest, type Decoded, type SipRequest } from './sip-request.js';
import type { RateLimit } from './rate-limit.js';
import { serializeResponse, type ResponseSpec, type Source } from './sip-response.js';
import { PENDING, TransactionCache, transactionKey } from './transaction-cache.js';
import { validateRequest } from './validate-request.js';

/** The way back to the peer a request came from; owned by a transport. */
export interface Link {
  transport: 'udp' | 'tcp' | 'tls';
  remote: Source;
  send(data: Buffer): void;
}

/** What a handler answers: a response now, a response later (once stored), or nothing (ACK). */
export type Outcome = ResponseSpec | null | Promise<ResponseSpec | null>;

export interface RequestHandler {
  /** `source`: the peer's address, for limits that are fair per sender. */
  handle(req: SipRequest, source: string): Outcome;
  errorResponse(e: unknown): ResponseSpec;
}

/** The methods ec-server answers in its own way; every other one is counted as `other` (bounded labels). */
export type CountedMethod = 'MESSAGE' | 'OPTIONS' | 'other';

/** Responses sent for one transport: by request method, then by status. */
export type ResponseCounts = Record<CountedMethod, Record<number, number>>;

export interface TransactionStats {
  requests: number;
  /** Responses sent (not those re-sent from the transaction cache), by transport, method and status. */
  responses: Record<Link['transport'], ResponseCounts>;
  retransmissions: number;
  discarded: number;
}

/**
 * Between transports and the handler: validates, answers errors, and keeps UDP server
 * transactions so that a retransmission is answered from memory and never stored twice.
 * TCP is reliable (Timer J = 0): a client resends over TCP only after losing the connection,
 * and the idempotent upsert makes that harmless.
 */
export class TransactionLayer {
  private readonly cache: TransactionCache;
  private tagCounter = 0;
  /** Requests accepted and not yet answered (they wait for a commit). */
  private pending = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly tagPrefix = Math.random().toString(36).slice(2, 8);
  readonly stats: TransactionStats = {
    requests: 0,
    responses: {
      udp: { MESSAGE: {}, OPTIONS: {}, other: {} },
      tcp: { MESSAGE: {}, OPTIONS: {}, other: {} },
      tls: { MESSAGE: {}, OPTIONS: {}, other: {} },
    },
    retransmissions: 0,
    discarded: 0,
  };

  constructor(
    private readonly handler: RequestHandler,
    options: { cacheSize: number; cacheBytes?: number; ttlMs?: number; answerDeadlineMs?: number },
    private readonly log: Logger,
    /** Per-source-address limit of new requests (retransmissions answered from the cache are free). */
    readonly rateLimit?: RateLimit,
  ) {
    this.cache = new TransactionCache(options.cacheSize, options.ttlMs ?? 32_000, Date.now, options.cacheBytes);
    if (options.answerDeadlineMs) this.deadlines = new AnswerDeadlines(options.answerDeadlineMs);
    this.lateDetail = lateReason(this.deadlines?.dueMs ?? 0);
  }

  /** ingest.max_answer_ms: UDP MESSAGEs not answered by then get a 503 (answer-deadline.ts). */
  private readonly deadlines: AnswerDeadlines | undefined;
  /** MESSAGEs answered 503 by that deadline (ec_sip_late_answers_total). */
  lateAnswers = 0;
  /** The late 503's reason detail, made once. */
  private readonly lateDetail: string;

  get cachedTransactions(): number {
    return this.cache.size;
  }

  /** Bytes the transaction cache holds, roughly. */
  get cachedBytes(): number {
    return this.cache.bytes;
  }

  /** Resolves once every request accepted so far has been answered. */
  async idle(): Promise<void> {
    while (this.pending > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /**
   * Handles one decoded message. Returns undefined when it was answered (or dropped) at once,
   * else a promise that settles, never rejecting, once its response has been handed to the link.
   * Not an async function: this runs per request, and most of the per-request promises and
   * microtask turns it used to cost were nothing but plumbing.
   */
  receive(decoded: Decoded, link: Link): Promise<void> | undefined {
    if (decoded.kind === 'discard') {
      this.stats.discarded++;
      this.log.debug({ remote: link.remote, transport: link.transport, reason: decoded.reason }, 'discarded');
      return undefined;
    }
    if (decoded.kind === 'reject') {
      const { request, error } = decoded.rejection;
      this.stats.requests++;
      this.log.debug({ remote: link.remote, status: error.status, reason: error.reason }, 'rejected');
      this.respond(request, this.handler.errorResponse(error), link);
      return undefined;
    }
    const req = decoded.request;
    this.stats.requests++;
    const key = link.transport === 'udp' && req.method !== 'ACK' ? transactionKey(req, link.remote) : undefined;
    if (key !== undefined) {
      const known = this.cache.lookupOrBegin(key);
      if (known !== undefined) {
        this.stats.retransmissions++;
        if (known !== PENDING) link.send(known);
        return undefined;
      }
    }
    let outcome: Outcome;
    try {
      validateRequest(req);
      // Per source address; the per-device limit needs the authenticated device id and is checked after
      // authentication (ingest/sip-handler.ts).
      if (this.rateLimit && req.method !== 'ACK' && !this.rateLimit.take(link.remote.address)) {
        throw new SipRequestError(
          'EC_SIP_RATE_LIMITED',
          `over ${this.rateLimit.ratePerS} requests/s from this address`,
        );
      }
      outcome = this.handler.handle(req, link.remote.address);
    } catch (e) {
      outcome = this.handler.errorResponse(e instanceof RejectedRequest ? e.error : e);
    }
    if (!(outcome instanceof Promise)) {
      this.finish(req, outcome, key, link);
      return undefined;
    }
    this.pending++;
    if (this.deadlines && link.transport === 'udp' && req.method === 'MESSAGE') {
      const entry = this.deadlines.add(() => {
        this.lateAnswers++;
        const late = new SipRequestError('EC_SERVER_OVERLOADED', this.lateDetail);
        this.settle(req, this.handler.errorResponse(late), key, link);
      });
      // Whichever comes first answers; the write itself goes on either way.
      return outcome.then(
        (spec) => {
          if (entry.cancel()) this.settle(req, spec, key, link);
        },
        (e: unknown) => {
          if (entry.cancel()) this.settle(req, this.handler.errorResponse(e), key, link);
        },
      );
    }
    return outcome.then(
      (spec) => this.settle(req, spec, key, link),
      (e: unknown) => this.settle(req, this.handler.errorResponse(e), key, link),
    );
  }

  private settle(req: SipRequest, spec: ResponseSpec | null, key: string | undefined, link: Link): void {
    try {
      this.finish(req, spec, key, link);
    } catch (err) {
      // A bug must cost one response, never the process (this runs in a promise callback).
      this.log.error({ err }, 'answering a request failed');
    } finally {
      if (--this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private finish(req: SipRequest, spec: ResponseSpec | null, key: string | undefined, link: Link): void {
    if (spec === null) {
      if (key !== undefined) this.cache.abandon(key);
      return;
    }
    const data = this.respond(req, spec, link);
    if (key === undefined) return;
    // A 401 changed nothing: a retransmission may as well get a fresh challenge. Not keeping it spares the
    // cache (and the heap: entries live 32 s, long enough to be promoted) a flood of unauthenticated requests.
    if (spec.status === 401) this.cache.abandon(key);
    else this.cache.complete(key, data);
  }

  private respond(req: SipRequest, spec: ResponseSpec, link: Link): Buffer {
    const data = serializeResponse(req, spec, this.nextTag(), link.remote);
    // Counted where responses always were (the metrics read it at scrape time): no label strings per request.
    const byMethod = this.stats.responses[link.transport];
    const m = req.method;
    const counts = m === 'MESSAGE' ? byMethod.MESSAGE : m === 'OPTIONS' ? byMethod.OPTIONS : byMethod.other;
    counts[spec.status] = (counts[spec.status] ?? 0) + 1;
    link.send(data);
    return data;
  }

  private nextTag(): string {
    return `${this.tagPrefix}${(++this.tagCounter).toString(36)}`;
  }
}

function lateReason(ms: number): string {
  return `not stored within ${ms} ms (ingest.max_answer_ms); it may still be, send it again after Retry-After`;
}
