import { performance } from 'node:perf_hooks';

/**
 * Deadlines on the answers to UDP MESSAGEs (ingest.max_answer_ms): a batch not committed by then is
 * answered 503 with Retry-After, below SIP's T1 (500 ms), and its write goes on.
 *
 * Why: the admission rules (commit-wait.ts, loop-busy.ts) refuse a batch that would wait too long,
 * but one already admitted can still wait past T1 when the store's latency has a tail: on three
 * Cassandra JVMs sharing two cores the 200s' p99 was 624-644 ms at 500-2,000 MESSAGEs/s, and UDP
 * meters retransmitted 2.7-3.4 % of their calls (docs/performance.md). A final answer before T1 ends
 * the client transaction; the meter sends the batch again after Retry-After, an idempotent upsert of
 * the same key (the late write may have stored it meanwhile). Never a 200 before the commit.
 *
 * One sweep timer for all, not a timer per request: entries are in arrival order, so each sweep pops
 * the expired ones from the head (O(1) per request), every twentieth of the deadline (the tick). An entry
 * is due three ticks before its deadline (dueMs, 0.85 of it, what the 503's reason says), so that a sweep
 * on time answers it by 0.9 of the deadline, and the rest (40 ms at 400) is left for what the deadline does
 * not see: the datagram's wait in the socket before it is read, and the loop's lag behind its timers.
 * Measured (docs/performance.md): due at the deadline itself, the 503s' p99 was 456-492 ms at 400 ms; due a
 * tenth early, swept every tenth, 392-404 ms (one node at 16,000 MESSAGEs/s offered).
 */
export class AnswerDeadlines {
  private queue: (DeadlineEntry | undefined)[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The sweep's interval. */
  readonly tick: number;
  /** How long after add() an entry is due: 0.85 of the deadline (three ticks before it). */
  readonly dueMs: number;

  constructor(
    readonly ms: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tick = Math.max(1, Math.round(ms / 20));
    this.dueMs = Math.max(1, Math.round(ms * 0.85));
  }

  /** `fire` runs at the first sweep from dueMs on, unless the entry was cancelled first. */
  add(fire: () => void): DeadlineEntry {
    const e = new DeadlineEntry(this.now() + this.dueMs, fire);
    this.queue.push(e);
    if (!this.timer) {
      this.timer = setInterval(this.sweep, this.tick);
      this.timer.unref();
    }
    return e;
  }

  /** Entries not yet fired nor cancelled, and those waiting to be swept. */
  get size(): number {
    return this.queue.length - this.head;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private readonly sweep = (): void => {
    const now = this.now();
    const q = this.queue;
    while (this.head < q.length) {
      const e = q[this.head]!;
      if (!e.done && e.at > now) break;
      q[this.head++] = undefined;
      if (!e.done) {
        e.done = true;
        e.fire();
      }
    }
    if (this.head === q.length) {
      this.queue = [];
      this.head = 0;
      this.stop();
    } else if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head);
      this.head = 0;
    }
  };
}

export class DeadlineEntry {
  done = false;
  constructor(
    readonly at: number,
    readonly fire: () => void,
  ) {}

  /** True when the deadline had not fired: the caller answers. False: the deadline answered already. */
  cancel(): boolean {
    if (this.done) return false;
    this.done = true;
    return true;
  }
}
