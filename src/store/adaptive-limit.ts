/**
 * Requests in flight to a store, adapted to its latency: the most concurrency whose writes still
 * come back within a target latency, or within a tolerance of the store's own latency when that is
 * higher.
 *
 * Why adapt: a Cassandra node acknowledging only after an fsync of its commit log takes more writes
 * per fsync the more it is given, but past its capacity more concurrency only queues inside the
 * node: the same throughput, each write slower (measured: docs/performance.md, Figures behind the
 * code). A fixed number is right for one cluster only. So the limit grows while a round of writes
 * (as many as the limit) that used every slot came back fast enough on average, and shrinks by a
 * fifth when a round was slower. The target is well under ingest.max_wait_ms (250 ms by default),
 * which bounds the whole wait for a commit, queueing here included.
 *
 * Why a floor: latency that concurrency does not cause must not shrink the limit. With a node of
 * three down, every LOCAL_QUORUM write waits for both survivors (and the coordinator writes a hint);
 * on a busy or distant cluster every write takes longer. A rule on the target alone then drives the
 * limit to its minimum and keeps it there: throughput = minimum / latency (16 / 120 ms = 133/s, measured
 * with a node down: docs/scaling.md, Node failure), while the cluster took three times that at the same
 * moment from 64 writes in flight, with no slower writes. So a round shrinks the limit only when its mean
 * is above the target AND above `tolerance` times the floor: the lowest round mean of the last two
 * windows of PROBE_EVERY_MS. Queueing in the store shows as latency growing with the limit; the floor
 * is kept honest by a probe (like BBR's ProbeRTT): each window starts with one round at the minimum
 * limit, so the floor is what the store takes at low concurrency, never a latency measured at a high
 * limit (which would ratchet the limit up). A store that only queues settles near twice the minimum.
 */

export interface AdaptiveLimitOptions {
  initial: number;
  min: number;
  max: number;
  /** Mean latency of a round under which the limit never shrinks. */
  targetMs: number;
  /** Above the target, a round shrinks the limit only when its mean is above this many times the floor. */
  tolerance?: number;
  /** Length of a floor window; each starts with a probe round at the minimum limit. */
  probeEveryMs?: number;
  now?: () => number;
}

/** A write may take twice what the store takes at low concurrency before concurrency is cut (Vegas-like). */
export const LATENCY_TOLERANCE = 2;
/** The floor is measured afresh this often (BBR probes its minimum RTT every 10 s). */
export const PROBE_EVERY_MS = 10_000;

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
  /** Lowest round mean of the current window and of the one before (ms). */
  private windowFloor = Infinity;
  private previousFloor = Infinity;
  private windowStart: number;
  /** The limit to return to after the current probe round (0: no probe running). */
  private restoreAfterProbe = 0;
  private probeStarted = 0;

  constructor(private readonly options: AdaptiveLimitOptions) {
    this.current = options.initial;
    this.windowStart = this.now();
    this.maxLimit = options.initial;
  }

  private now(): number {
    return this.options.now?.() ?? performance.now();
  }

  /** The store's latency at low concurrency, as measured (ms; Infinity before a first round). */
  get floorMs(): number {
    return Math.min(this.windowFloor, this.previousFloor);
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

  /** Requests in flight now. */
  get inFlightNow(): number {
    return this.inFlight;
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
      this.completed(performance.now() - started, started);
    }
  }

  private completed(ms: number, started: number): void {
    this.completedCount++;
    // A probe round counts only requests started at the minimum limit, not those still out from before it.
    const counted = this.restoreAfterProbe === 0 || started >= this.probeStarted;
    if (counted) {
      this.roundMs += ms;
      if (this.waiters.length > 0) this.roundFull = true;
      if (++this.roundCount >= this.current) this.adapt();
    }
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
    this.windowFloor = Math.min(this.windowFloor, mean);
    if (this.restoreAfterProbe > 0) {
      // The probe round measured the floor; back to the limit it interrupted.
      this.current = this.restoreAfterProbe;
      this.restoreAfterProbe = 0;
    } else if (mean > Math.max(targetMs, (this.options.tolerance ?? LATENCY_TOLERANCE) * this.floorMs)) {
      this.current = Math.max(min, Math.floor(this.current * 0.8));
    } else if (this.roundFull) {
      this.current = Math.min(max, this.current + Math.max(1, Math.floor(this.current / 8)));
    }
    this.roundCount = 0;
    this.roundMs = 0;
    this.roundFull = false;
    this.maxLimit = Math.max(this.maxLimit, this.current);
    const now = this.now();
    if (now - this.windowStart >= (this.options.probeEveryMs ?? PROBE_EVERY_MS)) {
      this.previousFloor = this.windowFloor;
      this.windowFloor = Infinity;
      this.windowStart = now;
      if (min < this.current) {
        this.restoreAfterProbe = this.current;
        this.probeStarted = performance.now();
        this.current = min;
      }
    }
    // A larger limit lets waiters in at once.
    while (this.inFlight < this.current && this.waiters.length > 0) {
      this.enter();
      this.waiters.shift()!();
    }
  }
}
