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
 * windows of at least MIN_WINDOW_MS of busy time (time with a group in the store; idle time says
 * nothing of its speed) and smoothed (EWMA). Like PIE it trusts a window to show the store's
 * capacity only when the backlog stayed large throughout: with a few batches at a time a group
 * commit store is bound by its latency (an fsync, a commit log window), so its departure rate then
 * shows the arrivals, not what it could take, and a burst would be refused that it would have
 * committed in a few ms. Such a window is still a lower bound of the capacity: it may raise the
 * estimate, never set or lower it. Large means SATURATED_BACKLOG batches, or half of what the bound
 * admits at the rate measured if that is less: a slow store is saturated by fewer batches, and
 * overload control itself keeps the backlog near what the bound admits, so a higher threshold
 * would never be reached again and a low rate could never be corrected.
 *
 * A store that stops (a hung node, a held lock) drains nothing and gives no window to measure. So
 * the estimate is also at least the time since the store last finished a group while it has work,
 * when a new batch would wait behind the groups it holds, which have already taken that long. Until a
 * first saturated window has been measured, that is the only term (about the first 50 ms of an
 * overload). A new batch waits behind them when the store writes groups one after the other
 * (SQLite's writer), or when it writes them concurrently (Cassandra) but holds as many as it is
 * handed: otherwise the new batch's group goes out at once beside them, and one write in a slow
 * tail (a replica's GC pause, a compaction) would refuse batches that wait for nothing. That is
 * what a sparse sender met before this rule: a meter sending every second, whose previous write
 * took more than the bound, had nothing else finish meanwhile (test/integration/overload-control).
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
  /** When the store last went from idle to busy. */
  private busySince = 0;
  /** The current window: busy ms before busySince, batches finished, backlog large throughout. */
  private windowBusyMs = 0;
  private windowBatches = 0;
  private windowSaturated = true;
  /** When the store last finished a group, or went from idle to busy. */
  private lastProgress = 0;

  /** `maxWaitMs`: the bound the estimate is compared with (ingest.max_wait_ms; 0 = none). */
  constructor(private readonly maxWaitMs = 0) {}

  /** Batches per second the store drains, as measured (0 = not yet measured). */
  get drainRatePerSecond(): number {
    return Math.round(this.rate * 1000);
  }

  /** A group is handed to the store; `backlog`: batches waiting or in the store, this group's included. */
  groupStarted(now: number, backlog: number): void {
    if (this.groups++ === 0) {
      this.busySince = now;
      this.lastProgress = now;
    }
    if (backlog < this.saturatedBacklog) this.windowSaturated = false;
  }

  /** A group of `batches` has been written (or has failed); `backlog`: batches still waiting or in the store. */
  groupFinished(now: number, batches: number, backlog: number): void {
    this.lastProgress = now;
    this.windowBatches += batches;
    if (backlog < this.saturatedBacklog) this.windowSaturated = false;
    const busyMs = this.windowBusyMs + now - this.busySince;
    if (--this.groups === 0) {
      this.windowBusyMs = busyMs;
      this.busySince = now;
    }
    if (busyMs >= MIN_WINDOW_MS) {
      this.sample(this.windowBatches / busyMs, this.windowSaturated);
      this.windowBusyMs = 0;
      this.windowBatches = 0;
      this.windowSaturated = backlog >= this.saturatedBacklog;
      this.busySince = now;
    }
  }

  /**
   * Expected ms until a batch submitted now is committed, with `ahead` batches waiting or in the store;
   * `behindGroups`: whether it would wait for a group in the store to finish (see above).
   */
  expectedWaitMs(now: number, ahead: number, behindGroups = true): number {
    if (ahead === 0) return 0;
    const stalled = behindGroups && this.groups > 0 ? now - this.lastProgress : 0;
    const queued = this.rate > 0 ? (ahead + 1) / this.rate : 0;
    return Math.max(stalled, queued);
  }

  /** Backlog that shows the store's capacity: SATURATED_BACKLOG, or half of what the bound admits if less. */
  private get saturatedBacklog(): number {
    const admitted = this.rate * this.maxWaitMs;
    return admitted > 0 ? Math.max(2, Math.min(SATURATED_BACKLOG, Math.floor(admitted / 2))) : SATURATED_BACKLOG;
  }

  private sample(rate: number, saturated: boolean): void {
    if (saturated) this.rate = this.rate === 0 ? rate : this.rate + EWMA_WEIGHT * (rate - this.rate);
    else if (this.rate > 0 && rate > this.rate) this.rate += EWMA_WEIGHT * (rate - this.rate);
  }
}
