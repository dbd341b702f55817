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

/** What the limit did since it was made (the bench gives its raw driver baseline the same concurrency). */
export interface AdaptiveLimitStats {
  /** The limit now. */
  limit: number;
  /** The highest the limit has been. */
  maxLimit: number;
  /** The most requests that were in flight at once. */
  peakInFlight: number;
  /** Requests in flight on average over the time any was (time-weighted): the concurrency actually used. */
  meanInFlight: number;
  /** Requests completed. */
  completed: number;
}

export class AdaptiveLimit {
  private current: number;
  private inFlight = 0;
  private maxLimit: number;
  private peakInFlight = 0;
  private completedCount = 0;
  /** Integral of inFlight over time (ms) while inFlight > 0, the time it covers, and when it last changed. */
  private inFlightMs = 0;
  private busyMs = 0;
  private lastChange = 0;
  private readonly waiters: (() => void)[] = [];
  /** The current round: completions, their summed latency, and whether requests were waiting for a slot. */
  private roundCount = 0;
  private roundMs = 0;
  private roundFull = false;

  constructor(private readonly options: AdaptiveLimitOptions) {
    this.current = options.initial;
    this.maxLimit = options.initial;
  }

  get stats(): AdaptiveLimitStats {
    this.account(performance.now());
    return {
      limit: this.current,
      maxLimit: this.maxLimit,
      peakInFlight: this.peakInFlight,
      meanInFlight: this.busyMs > 0 ? Math.round((10 * this.inFlightMs) / this.busyMs) / 10 : 0,
      completed: this.completedCount,
    };
  }

  /** Adds the time since the last change of inFlight to the time-weighted mean. */
  private account(now: number): void {
    if (this.inFlight > 0) {
      this.inFlightMs += this.inFlight * (now - this.lastChange);
      this.busyMs += now - this.lastChange;
    }
    this.lastChange = now;
  }

  /** Marks one more request in flight. */
  private enter(): void {
    this.account(performance.now());
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
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
      this.enter();
    }
    const started = performance.now();
    try {
      return await fn();
    } finally {
      this.completed(performance.now() - started);
    }
  }

  private completed(ms: number): void {
    this.completedCount++;
    this.roundMs += ms;
    if (this.waiters.length > 0) this.roundFull = true;
    if (++this.roundCount >= this.current) this.adapt();
    const next = this.waiters.shift();
    // The slot passes to the next waiter as it is (inFlight unchanged), or is freed.
    if (next && this.inFlight <= this.current) next();
    else {
      this.account(performance.now());
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
    this.maxLimit = Math.max(this.maxLimit, this.current);
    // A larger limit lets waiters in at once.
    while (this.inFlight < this.current && this.waiters.length > 0) {
      this.enter();
      this.waiters.shift()!();
    }
  }
}
