import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/**
 * The receiver's own overload: the share of the last window the event loop spent busy.
 *
 * Why: overload control by commit wait (commit-wait.ts) sees the store only. When the receiver's CPU
 * is the limit (here: two cores shared with a Cassandra node and the load generator), the event loop
 * falls behind reading datagrams, which then wait in the kernel's receive buffer (4 MB here: about
 * half a second at 8,000 small MESSAGEs/s), a queue no bound of ours sees; UDP meters retransmit into
 * it and the 503s themselves arrive after T1. Refusing a batch costs the loop far less than taking
 * it (a 503 is the head's parse and one send; a batch on Cassandra is also the driver's encoding and
 * socket write, ~250 us per MESSAGE in a profile), so refusing while the loop is saturated frees it
 * to read and answer what is queued. SIP servers shed on their CPU load for the same reason
 * (RFC 7339's overload control leaves the measure to the server; Kamailio's and OpenSIPS's load
 * modules use the CPU).
 *
 * Event loop utilization (Node's perf_hooks) counts the time the loop was not waiting for events,
 * including time the thread was runnable but not running: it reaches 100 % when the thread is
 * starved as well as when it is busy, and both mean datagrams are waiting.
 *
 * How much is refused: a share, adapted like a congestion window (AIMD): each 100-ms window in
 * which the loop was at least `maxPct` busy, from the second such window in a row on, halves the
 * share admitted, each window below it adds 5 % back; batches are admitted in that proportion,
 * spread evenly (a credit counter, no randomness). Measured on one Cassandra node, small-UDP
 * ramp, 10 s per level (docs/performance.md):
 * refusing everything for 250-ms windows ended the retransmissions but the acknowledged rate swung
 * (1,547 to 3,220/s); AIMD over 250-ms windows reacted too late (8-10 % retransmissions at
 * 6,000-8,000/s); the event loop's timer lag instead of its utilization, later still (44-137 %).
 * Off by default (ingest.max_loop_busy=0): blind to who sends, it refused a flooded server's
 * well-behaved meter its share (test/full/flood.test.ts), and bursts the store would have absorbed.
 * This rule (from the second busy window in a row): no retransmission up to 8,000/s offered; the
 * acknowledged rate 2,000/s at 2,000/s offered, 1,263-1,787/s beyond. The SQLite small-UDP maximum
 * is unchanged (14,100/s).
 */
export class LoopBusy {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private busyPct = 0;
  /** Share of new batches admitted, 0..1 (at least MIN_ADMITTED). */
  private admitted = 1;
  private credit = 0;
  /** Saturated windows in a row. */
  private saturated = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `maxPct`: the busy share a window must stay under (0 = never refuse); `windowMs`: its length. */
  constructor(
    private readonly maxPct: number,
    readonly windowMs = WINDOW_MS,
  ) {}

  start(): void {
    if (this.maxPct <= 0 || this.timer) return;
    this.last = performance.eventLoopUtilization();
    this.timer = setInterval(this.sample, this.windowMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The last window's utilization, percent. */
  get lastPct(): number {
    return this.busyPct;
  }

  /** Share of new batches admitted now, percent. */
  get admittedPct(): number {
    return Math.round(this.admitted * 100);
  }

  /** Why this new batch must be refused (the 503's reason), or undefined: admits `admitted` of them. */
  refusal(): string | undefined {
    if (this.admitted >= 1) return undefined;
    this.credit += this.admitted;
    if (this.credit >= 1) {
      this.credit -= 1;
      return undefined;
    }
    return (
      `event loop busy ${Math.round(this.busyPct)} % of the last ${this.windowMs} ms (limit ${this.maxPct} %): ` +
      `admitting ${this.admittedPct} % of batches`
    );
  }

  /** Measures the window that just ended (the timer fires late under load: the window is then longer). */
  private readonly sample = (): void => {
    const now = performance.eventLoopUtilization();
    this.busyPct = 100 * performance.eventLoopUtilization(now, this.last).utilization;
    this.last = now;

    this.saturated = this.busyPct >= this.maxPct ? this.saturated + 1 : 0;
    // One busy window is a burst (a GC, a compile); two in a row mean work is waiting.
    if (this.saturated >= SATURATED_WINDOWS) this.admitted = Math.max(MIN_ADMITTED, this.admitted * DECREASE);
    else if (this.saturated === 0) this.admitted = Math.min(1, this.admitted + INCREASE);
    if (this.admitted >= 1) this.credit = 0;
  };
}

/** The window over which utilization is measured and the share adapted. */
const WINDOW_MS = 100;
/** Saturated windows in a row before the share is cut. */
const SATURATED_WINDOWS = 2;
/** Multiplicative decrease per saturated window. */
const DECREASE = 1 / 2;
/** Additive increase per window with room. */
const INCREASE = 0.05;
/** Some batches still go through: the share is measured by what is admitted. */
const MIN_ADMITTED = 0.05;
