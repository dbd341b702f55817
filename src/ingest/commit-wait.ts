/**
 * How long a batch submitted now would wait for its commit: the signal of overload control.
 *
 * Why a wait and not a queue length: a meter on UDP retransmits after T1 (500 ms, RFC 3261) and
 * keeps doing so while it has no answer. A batch that waits longer than that costs the server the
 * same batch again, and again, so a store slower than the offered load turns into a retransmission
 * storm. What must be bounded is therefore the time to the answer, and a queue length means a time
 * only once divided by how fast the store drains it: 20,000 batches are 0.7 s at 30,000/s (SQLite)
 * but 38 s at 530/s (a single Cassandra node with group commitlog sync).
 *
 * The estimator is PIE's (RFC 8033, section 4.2, "departure rate estimation"): expected wait =
 * batches ahead / the store's drain rate, where the drain rate (batches per ms) is measured over
 * windows of at least MIN_WINDOW_MS of busy time and smoothed (EWMA). Like PIE it trusts a window
 * to show the store's capacity only when the backlog stayed large (SATURATED_BACKLOG) throughout:
 * with a few batches at a time a group commit store is bound by its latency (an fsync, Cassandra's
 * 15 ms commit log window), so its departure rate then shows the arrivals, not what it could take,
 * and a burst would be refused that it would have committed in a few ms. A window with a smaller
 * backlog is still a lower bound of the capacity: it may raise the estimate, never lower it.
 *
 * A store that stops (a hung node, a held lock) drains nothing and gives no window to measure. So
 * the estimate is also at least the time since the store last finished a group while it has work:
 * a new batch waits behind the groups it holds, which have already taken that long.
 */

/** Backlog (batches waiting or in the store) that keeps the store busy with full-size work. */
export const SATURATED_BACKLOG = 64;
/** Busy time a rate sample spans: several commits, so that one slow or bursty commit does not decide. */
export const MIN_WINDOW_MS = 50;
/** Weight of a new rate sample in the average. */
const EWMA_WEIGHT = 0.3;

export class CommitWaitEstimator {
  /** Measured drain rate, batches per ms; 0 until a first saturated window was measured. */
  private rate = 0;
  /** Groups handed to the store and not yet finished. */
  private groups = 0;
  private windowOpen = false;
  private windowStart = 0;
  private windowBatches = 0;
  private windowSaturated = false;
  /** When the store last finished a group, or went from idle to busy. */
  private lastProgress = 0;

  /** Batches per second the store drains, as measured (0 = not yet measured). */
  get drainRatePerSecond(): number {
    return Math.round(this.rate * 1000);
  }

  /** A group is handed to the store; `backlog`: batches waiting or in the store, this group's included. */
  groupStarted(now: number, backlog: number): void {
    this.groups++;
    if (!this.windowOpen) {
      // The store was idle: idle time is no measure of its speed, a new window starts now.
      this.openWindow(now, backlog);
      this.lastProgress = now;
    } else if (backlog < SATURATED_BACKLOG) {
      this.windowSaturated = false;
    }
  }

  /** A group of `batches` has been written (or has failed); `backlog`: batches still waiting or in the store. */
  groupFinished(now: number, batches: number, backlog: number): void {
    this.groups--;
    this.lastProgress = now;
    this.windowBatches += batches;
    if (backlog < SATURATED_BACKLOG) this.windowSaturated = false;
    const elapsed = now - this.windowStart;
    if (elapsed >= MIN_WINDOW_MS) {
      this.sample(this.windowBatches / elapsed, this.windowSaturated);
      this.openWindow(now, backlog);
    }
    // Idle: nothing in the store and nothing waiting (a waiting group is handed over within a tick).
    if (this.groups === 0 && backlog === 0) this.windowOpen = false;
  }

  /** Expected ms until a batch submitted now is committed, with `ahead` batches waiting or in the store. */
  expectedWaitMs(now: number, ahead: number): number {
    if (ahead === 0) return 0;
    const stalled = this.groups > 0 ? now - this.lastProgress : 0;
    const queued = this.rate > 0 ? (ahead + 1) / this.rate : 0;
    return Math.max(stalled, queued);
  }

  private openWindow(now: number, backlog: number): void {
    this.windowOpen = true;
    this.windowStart = now;
    this.windowBatches = 0;
    this.windowSaturated = backlog >= SATURATED_BACKLOG;
  }

  private sample(rate: number, saturated: boolean): void {
    if (saturated) this.rate = this.rate === 0 ? rate : this.rate + EWMA_WEIGHT * (rate - this.rate);
    else if (this.rate > 0 && rate > this.rate) this.rate += EWMA_WEIGHT * (rate - this.rate);
  }
}
