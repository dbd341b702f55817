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
 * How much is refused: a share, adapted like a congestion window: two 100-ms windows in a row in
 * which the loop was at least `maxPct` busy cut the share admitted to 70 % of what it was (the next
 * cut again after two such windows); each window below it (or, where the UDP queue is read, in which
 * that queue stayed under BACKLOG_MIN) adds 5 % back, and a window well below
 * it (by ROOM_PCT) also grows it by a quarter. The share is divided max-min fairly among senders (shareOut), each
 * sender's part spread evenly over its batches (a credit counter, no randomness). Measured on one
 * Cassandra node, small-UDP ramp, 10 s per level (docs/performance.md): refusing everything for
 * 250-ms windows ended the retransmissions but the acknowledged rate swung (1,547 to 3,220/s); AIMD
 * over 250-ms windows reacted too late (8-10 % retransmissions at 6,000-8,000/s); the event loop's
 * timer lag instead of its utilization, later still (44-137 %); growing by 5 % a window only, the
 * share spent most of the run on the way back from a cut (acknowledged 1,263-2,528/s past 2,000/s
 * offered, 3,107-3,844/s with the growth).
 * Where the UDP socket's receive queue can be read (Linux) and datagrams come, it decides: a saturated
 * window in which it grew cuts at once (options.receiveBacklog): the 503s of a step's first second
 * (1,000 to 8,000/s) then waited at most 148 ms (p99), not 336; and saturated windows cut nothing while
 * it stays under BACKLOG_MIN (the loop keeps up), so a thread starved of a core for a moment refuses nothing,
 * and the share grows back by the step meanwhile.
 * Its first version was off by default: blind to who sends, it refused a flooded server's
 * well-behaved meter its share (test/full/flood.test.ts). Hence the fair shares, and windows count
 * only when batches are what the loop is busy with (sample).
 */
export interface LoopBusyOptions {
  /** The window's length, ms (WINDOW_MS). */
  windowMs?: number;
  /**
   * SIP requests taken since start (the transaction layer's count), to tell a loop saturated by
   * batches from one saturated by other requests (see sample).
   */
  requestsSoFar?: () => number;
  /**
   * The share of the UDP socket's receive buffer held by datagrams not read yet (udp-backlog.ts), or
   * undefined where it cannot be read or no UDP traffic came: a saturated window whose queue grew past
   * BACKLOG_MIN cuts at once; while it stays under BACKLOG_MIN, saturated windows cut nothing.
   */
  receiveBacklog?: () => number | undefined;
}

export class LoopBusy {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private busyPct = 0;
  /** Share of new batches admitted, 0..1 (at least MIN_ADMITTED). */
  private admitted = 1;
  /** Credit of senders that are not over their share (a new one), spread by the overall share. */
  private credit = 0;
  /** Batches per sender in the current window (the device its digest proved, else its address). */
  private readonly arrivals = new Map<string, number>();
  /** Batches a sender may have admitted in a window without a cut: the last window's max-min fair level. */
  private fairShare = Infinity;
  /** Senders over the fair level in the last window: the share of their batches admitted now. */
  private heavy = new Map<string, { ratio: number; credit: number }>();
  /** Saturated windows in a row. */
  private saturated = 0;
  /** The 503's reason while the share is cut: made once per window, not per refused batch. */
  private reason = '';
  private timer: NodeJS.Timeout | undefined;

  /** Requests the receiver had taken at the last window's end (see requestsSoFar). */
  private lastRequests = 0;

  /** The UDP receive queue at the last window's end (share of the buffer; see receiveBacklog). */
  private lastBacklog = 0;
  readonly windowMs: number;

  /** `maxPct`: the busy share a window must stay under (0 = never refuse). */
  constructor(
    private readonly maxPct: number,
    private readonly options: LoopBusyOptions = {},
  ) {
    this.windowMs = options.windowMs ?? WINDOW_MS;
  }

  start(): void {
    if (this.maxPct <= 0 || this.timer) return;
    this.last = performance.eventLoopUtilization();
    this.lastRequests = this.options.requestsSoFar?.() ?? 0;
    this.timer = setInterval(this.sample, this.windowMs);
    this.timer.unref();
  }

  /** Stops measuring and forgets the cut: a later start() begins with every batch admitted. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.admitted = 1;
    this.saturated = 0;
    this.busyPct = 0;
    this.admitAll();
    this.arrivals.clear();
  }

  /** No cut: no credit, no fair level, no heavy senders. */
  private admitAll(): void {
    this.credit = 0;
    this.heavy.clear();
    this.fairShare = Infinity;
  }

  /** The last window's utilization, percent. */
  get lastPct(): number {
    return this.busyPct;
  }

  /** Share of new batches admitted now, percent. */
  get admittedPct(): number {
    return Math.round(this.admitted * 100);
  }

  /**
   * Why this new batch from `sender` must be refused (the 503's reason), or undefined. While the loop
   * is saturated, `admitted` of the batches are admitted, shared max-min fairly among senders (see
   * shareOut): a sender that sent no more than its fair share in the last window keeps it, the ones
   * above it are cut to it, each spread evenly over its batches (a credit counter, no randomness).
   */
  refusal(sender = ''): string | undefined {
    if (!this.timer) return undefined;
    const key = this.arrivals.size < MAX_SENDERS || this.arrivals.has(sender) ? sender : OTHER_SENDERS;
    const n = (this.arrivals.get(key) ?? 0) + 1;
    this.arrivals.set(key, n);
    if (this.admitted >= 1) return undefined;
    const heavy = this.heavy.get(key);
    if (heavy) {
      heavy.credit += heavy.ratio;
      if (heavy.credit >= 1) {
        heavy.credit -= 1;
        return undefined;
      }
    } else {
      if (n <= this.fairShare) return undefined;
      // A sender new since the last window, over the fair share already: the overall share.
      // Below one batch a window (a fleet of meters sending once a second each), the fair level is its rate.
      this.credit += this.fairShare < 1 ? Math.max(this.admitted, this.fairShare) : this.admitted;
      if (this.credit >= 1) {
        this.credit -= 1;
        return undefined;
      }
    }
    return this.reason;
  }

  /** Measures the window that just ended (the timer fires late under load: the window is then longer). */
  private readonly sample = (): void => {
    const now = performance.eventLoopUtilization();
    this.busyPct = 100 * performance.eventLoopUtilization(now, this.last).utilization;
    this.last = now;

    // Refusing batches frees the loop only when batches are what it is busy with. Under a flood of other
    // requests (unauthenticated MESSAGEs answered 401, OPTIONS) a cut would only take the meters' share:
    // measured in test/full/flood.test.ts, a meter got 263 batches through in 20 s with the cut, 4,288
    // without. So a window counts as saturated only when batches were at least MIN_BATCH_SHARE of its requests.
    const requests = this.options.requestsSoFar?.();
    let batches = 0;
    for (const c of this.arrivals.values()) batches += c;
    const ours = requests === undefined || (batches > 0 && batches >= MIN_BATCH_SHARE * (requests - this.lastRequests));
    this.lastRequests = requests ?? 0;
    const saturatedNow = this.busyPct >= this.maxPct && ours;
    this.saturated = saturatedNow ? this.saturated + 1 : 0;
    // The kernel's queue shows the loop falling behind at once, where utilization needs a second window:
    // at a step from 1,000 to 8,000/s the 503s of the first second waited up to 336 ms while two windows
    // passed and then the first cut was not yet enough.
    const backlog = this.options.receiveBacklog?.();
    const fallingBehind = backlog !== undefined && backlog >= BACKLOG_MIN && backlog > this.lastBacklog;
    // Where the queue can be read and UDP datagrams come, it is the evidence: a loop busy while nothing
    // waits there is keeping up (on two cores shared with a Cassandra node, utilization reaches 100 % in
    // windows in which the thread waits for a core, not for work), and refusing then only costs batches:
    // at 9,000/s offered the acknowledged plateau went from 4,038-7,109 to 6,608-6,756/s with this gate.
    const keepingUp = backlog !== undefined && backlog < BACKLOG_MIN;
    this.lastBacklog = backlog ?? 0;
    // One busy window is a burst (a GC, a compile); two in a row mean work is waiting.
    if ((this.saturated >= SATURATED_WINDOWS && !keepingUp) || (saturatedNow && fallingBehind)) {
      this.admitted = Math.max(MIN_ADMITTED, this.admitted * DECREASE);
      // The next cut waits as long as this one did: the windows right after a cut are still busy with
      // the datagrams queued before it (one cut per window drove the share from 100 % to 9 % within
      // a second and the acknowledged rate swung 1,080-5,715/s at 8,000/s offered).
      this.saturated = 0;
    } else if (this.saturated === 0 || keepingUp) {
      // Well under the limit, the share grows by a quarter (plus the step): back from 5 % in 8 windows,
      // not 19; near it, by the step only. Busy while the queue is empty, it grows by the step too: held
      // there instead, a share cut at an onset stayed low for the whole level (9,000/s offered: plateaus
      // of about 4,000/s in half the runs, 6,200-6,700/s in the others).
      const roomy = this.busyPct < this.maxPct - ROOM_PCT;
      this.admitted = Math.min(1, (roomy ? this.admitted * GROWTH : this.admitted) + INCREASE);
    }
    if (this.admitted >= 1) this.admitAll();
    else {
      this.shareOut();
      this.reason =
        `event loop busy ${Math.round(this.busyPct)} % of the last ${this.windowMs} ms (limit ${this.maxPct} %): ` +
        `admitting ${this.admittedPct} % of batches`;
    }
    this.arrivals.clear();
  };

  /**
   * Max-min fair shares for the next window from this one's arrivals (water-filling): the budget is
   * `admitted` of all arrivals; senders below the level get everything they sent, the rest the level each.
   * Why: the rule cannot tell a flood from a fleet by the loop alone; by sender it can. A flooder is
   * cut to the level while a meter sending one batch a second keeps its batches (test/full/flood.test.ts),
   * and a fleet of equal meters shares the cut equally. O(senders log senders) per window, senders
   * bounded by MAX_SENDERS.
   */
  private shareOut(): void {
    const counts = [...this.arrivals.values()].sort((x, y) => x - y);
    let left = this.admitted * counts.reduce((s, c) => s + c, 0);
    let level = 0;
    for (let i = 0; i < counts.length; i++) {
      const rest = counts.length - i;
      if (counts[i]! * rest > left) {
        level = left / rest;
        break;
      }
      left -= counts[i]!;
    }
    this.fairShare = level;
    const heavy = new Map<string, { ratio: number; credit: number }>();
    for (const [sender, c] of this.arrivals) {
      if (c > level) heavy.set(sender, { ratio: level / c, credit: this.heavy.get(sender)?.credit ?? 0 });
    }
    this.heavy = heavy;
  }
}

/** The window over which utilization is measured and the share adapted. */
const WINDOW_MS = 100;
/** Saturated windows in a row before the share is cut. */
const SATURATED_WINDOWS = 2;
/** Multiplicative decrease per saturated window. */
const DECREASE = 0.7;
/** Additive increase per window with room. */
const INCREASE = 0.05;
/** A window this many points under the limit has room: the share also grows by GROWTH. */
const ROOM_PCT = 15;
const GROWTH = 1.25;
/** Some batches still go through: the share is measured by what is admitted. */
const MIN_ADMITTED = 0.05;
/**
 * A UDP receive queue holding this share of its buffer is a backlog. The buffer is the kernel's accounting
 * (getRecvBufferSize: twice the 8 MB asked, capped by net.core.rmem_max, ~8 MB here): 2 % is ~100 small
 * datagrams; with a default rmem_max (208 KB) it would be a few, so raise rmem_max (docs/operations.md).
 */
const BACKLOG_MIN = 0.02;
/** Batches must be at least this share of a window's requests for its saturation to cut batches. */
const MIN_BATCH_SHARE = 0.25;
/** Senders told apart per window; beyond, new ones share one account (bounds memory and the sort). */
const MAX_SENDERS = 4096;
const OTHER_SENDERS = '(others)';
