/**
 * Requests in flight to a store, adapted to its latency: the most concurrency whose writes still
 * come back within a target latency.
 *
 * Why adapt: a Cassandra node acknowledging only after an fsync of its commit log takes more writes
 * per fsync the more it is given, but past its capacity more concurrency only queues inside the
 * node: the same throughput, each write slower (measured: docs/performance.md, Figures behind the
 * code). A fixed number is
 * right for one cluster only. So the limit grows while a round of writes (as many as the limit)
 * that used every slot came back under the target on average, and shrinks by a fifth when a round
 * was slower. The target is well under ingest.max_wait_ms (250 ms by default), which bounds the
 * whole wait for a commit, queueing here included.
 */

export interface AdaptiveLimitOptions {
  initial: number;
  min: number;
  max: number;
  /** Mean latency of a round above which the limit shrinks. */
  targetMs: number;
}

export class AdaptiveLimit {
  private current: number;
  private inFlight = 0;
  private readonly waiters: (() => void)[] = [];
  /** The current round: completions, their summed latency, and whether requests were waiting for a slot. */
  private roundCount = 0;
  private roundMs = 0;
  private roundFull = false;

  constructor(private readonly options: AdaptiveLimitOptions) {
    this.current = options.initial;
  }

  /** Requests allowed in flight now. */
  get limit(): number {
    return this.current;
  }

  /** Runs fn once a slot is free (first come, first served) and learns from how long it took. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.current) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    } else {
      this.inFlight++;
    }
    const started = performance.now();
    try {
      return await fn();
    } finally {
      this.completed(performance.now() - started);
    }
  }

  private completed(ms: number): void {
    this.roundMs += ms;
    if (this.waiters.length > 0) this.roundFull = true;
    if (++this.roundCount >= this.current) this.adapt();
    const next = this.waiters.shift();
    // The slot passes to the next waiter as it is (inFlight unchanged), or is freed.
    if (next && this.inFlight <= this.current) next();
    else {
      this.inFlight--;
      if (next) this.waiters.unshift(next);
    }
  }

  private adapt(): void {
    const mean = this.roundMs / this.roundCount;
    const { min, max, targetMs } = this.options;
    if (mean > targetMs) this.current = Math.max(min, Math.floor(this.current * 0.8));
    else if (this.roundFull) this.current = Math.min(max, this.current + Math.max(1, Math.floor(this.current / 8)));
    this.roundCount = 0;
    this.roundMs = 0;
    this.roundFull = false;
    // A larger limit lets waiters in at once.
    while (this.inFlight < this.current && this.waiters.length > 0) {
      this.inFlight++;
      this.waiters.shift()!();
    }
  }
}
