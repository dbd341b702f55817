import { batchWeight, type ReceivedBatch, type ReceivedReport, type SequenceGap } from '../domain/received-batch.js';
import { SipRequestError, StoreUnavailableError } from '../errors.js';
import { CommitWaitEstimator } from './commit-wait.js';
import type { IngestSink } from './ingest-sink.js';

interface Waiting {
  batch: ReceivedBatch;
  /** batchWeight(batch), computed once on submit. */
  bytes: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  /** Most batches per sink write (one transaction in SQLite). */
  maxBatches: number;
  /**
   * Most bytes of values per sink write (always at least one batch). A commit of hundreds of large
   * batches takes tens of ms (docs/storage.md); whatever arrived meanwhile waited for it and then for its own.
   */
  maxBytes?: number;
  /** Most batches waiting; beyond it submit() refuses at once (503) instead of queueing without bound. */
  maxQueued: number;
  /** Most bytes of values waiting or being written: bounds memory whatever the batch size. */
  maxQueuedBytes: number;
  /**
   * Overload control (ingest.max_wait_ms): when a new batch would wait longer than this for its
   * commit (ingest/commit-wait.ts), submit() refuses it at once (503), below SIP's T1 (500 ms), so
   * that UDP meters back off instead of retransmitting. 0 or absent: only the queue bounds apply.
   */
  maxWaitMs?: number;
  /**
   * Overload control of the receiver itself (ingest.max_loop_busy, loop-busy.ts): why a new batch must
   * be refused now because the event loop is saturated, or undefined. Checked before the store's wait.
   */
  loopRefusal?: (sender: string) => string | undefined;
  /**
   * Called after a commit that took longer than SLOW_COMMIT_MS (the server logs a warning): a
   * stalled disk or store shows in the log before clients start retransmitting.
   */
  onSlowCommit?: (ms: number, batches: number) => void;
  /**
   * Called when submit() refuses a batch for overload, at most once per OVERLOAD_REPORT_MS, with the
   * reason of that refusal and how many were refused since the last call (the server logs a
   * warning): shedding load shows in the log, not only in the meters' 503s.
   */
  onOverload?: (reason: string, refused: number) => void;
  /** Called after each successful commit with its duration in seconds and its batches (the metrics' histograms). */
  onCommit?: (seconds: number, batches: number) => void;
  /**
   * Called after each successful commit with its batches and the sink's report: the batches not in
   * report.rejected are durable (the device registry counts them, without a read of the store).
   */
  onStored?: (batches: readonly ReceivedBatch[], report: ReceivedReport) => void;
  /** Called for each X-EC-Seq gap found while parsing (the server logs it; sync repairs it). */
  onSequenceGap?: (gap: SequenceGap) => void;
}

/** Most groups a pipelined sink holds at once; beyond it batches wait here and form larger groups. */
const PIPELINE_DEPTH = 8;

/** Overload refusals are reported at most this often. */
export const OVERLOAD_REPORT_MS = 1000;

/** A commit slower than this is reported: UDP clients retransmit after 500 ms (T1). */
export const SLOW_COMMIT_MS = 1000;

/**
 * Group commit: batches submitted while a write is in progress are written together in the next
 * one. Each submit() resolves only after the write holding its batch has resolved, i.e. once the
 * batch is durable, so that the caller may answer 200. Bodies are parsed and checked by the sink
 * as part of the write (ingest-sink.ts): a bad one rejects its submit() with the SipRequestError
 * that answers it, and the rest of its group is written.
 */
export class GroupCommitter {
  private queue: Waiting[] = [];
  /** Groups handed to the sink, not yet resolved, and the batches they hold. */
  private readonly writes = new Set<Promise<void>>();
  private inFlightBatches = 0;
  private scheduled = false;
  /** Bytes held by queued batches and the batches being written. */
  private bytes = 0;
  private readonly wait: CommitWaitEstimator;
  /** Overload refusals not yet reported, and when they were last reported. */
  private unreportedOverloads = 0;
  private overloadReportedAt = -Infinity;
  /** Statistics for logs and benchmarks. */
  readonly stats = {
    commits: 0,
    batches: 0,
    /** Records (samples) of the batches stored. */
    records: 0,
    rejected: 0,
    /** X-EC-Seq gaps seen. */
    sequenceGaps: 0,
    /** Batches refused with 503 at submit (expected wait or queue bounds). */
    overloaded: 0,
    failures: 0,
    slowCommits: 0,
    maxCommitMs: 0,
    maxGroupsInFlight: 0,
  };

  constructor(
    private readonly sink: IngestSink,
    private readonly options: GroupCommitOptions,
  ) {
    this.wait = new CommitWaitEstimator(options.maxWaitMs ?? 0);
  }

  /** Batches not yet committed: waiting here or handed to the sink. */
  get queued(): number {
    return this.queue.length + this.inFlightBatches;
  }

  /** Bytes held by batches not yet committed. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Batches per second the store drains, as measured under load (0 = not yet measured). */
  get drainRatePerSecond(): number {
    return this.wait.drainRatePerSecond;
  }

  /** `sender`: whom the batch is counted against by overload control that is fair per sender (loopRefusal). */
  submit(batch: ReceivedBatch, sender = ''): Promise<void> {
    const w = batchWeight(batch);
    const refusal = this.overload(w, sender);
    if (refusal) {
      this.stats.overloaded++;
      this.reportOverload(refusal);
      return Promise.reject(new SipRequestError('EC_SERVER_OVERLOADED', refusal));
    }
    this.bytes += w;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ batch, bytes: w, resolve, reject });
      this.schedule();
    });
  }

  /** Why a batch of `bytes` must be refused now (the 503's reason), or undefined. Nothing accepted is dropped. */
  private overload(bytes: number, sender: string): string | undefined {
    const busy = this.options.loopRefusal?.(sender);
    if (busy) return busy;
    const waiting = this.queue.length + this.inFlightBatches;
    if (waiting >= this.options.maxQueued) return `${waiting} batches await a commit`;
    if (this.bytes > 0 && this.bytes + bytes > this.options.maxQueuedBytes) {
      return `${this.bytes} bytes of batches await a commit`;
    }
    const maxWait = this.options.maxWaitMs ?? 0;
    if (maxWait > 0 && waiting > 0) {
      // A concurrent sink takes a new group beside the ones it holds, until it holds maxInFlight.
      const behindGroups = !this.sink.concurrent || this.writes.size >= this.maxInFlight;
      const expected = this.wait.expectedWaitMs(performance.now(), waiting, behindGroups);
      // Rounded up: 250.3 ms must not read "250 ms exceeds 250 ms".
      if (expected > maxWait) return `expected commit wait ${Math.ceil(expected)} ms exceeds ${maxWait} ms`;
    }
    return undefined;
  }

  private reportOverload(reason: string): void {
    this.unreportedOverloads++;
    const now = performance.now();
    if (!this.options.onOverload || now - this.overloadReportedAt < OVERLOAD_REPORT_MS) return;
    this.options.onOverload(reason, this.unreportedOverloads);
    this.unreportedOverloads = 0;
    this.overloadReportedAt = now;
  }

  /** Resolves when everything submitted so far has been written (or has failed). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.writes.size > 0 || this.scheduled) {
      if (this.writes.size > 0) await Promise.all(this.writes);
      else await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * Groups handed to the sink and not yet resolved: one at a time, or up to PIPELINE_DEPTH for a
   * pipelined sink, which then merges the ones that wait into one transaction.
   */
  private get maxInFlight(): number {
    return this.sink.pipelined ? PIPELINE_DEPTH : 1;
  }

  private schedule(): void {
    if (this.scheduled || this.writes.size >= this.maxInFlight) return;
    this.scheduled = true;
    // Let the current I/O round deliver more requests first: they join this group.
    setImmediate(this.startWrite);
  }

  private readonly startWrite = (): void => {
    this.scheduled = false;
    const write: Promise<void> = this.writeNext().finally(() => {
      this.writes.delete(write);
      if (this.queue.length > 0) this.schedule();
    });
    this.writes.add(write);
    this.stats.maxGroupsInFlight = Math.max(this.stats.maxGroupsInFlight, this.writes.size);
    if (this.queue.length > 0) this.schedule();
  };

  private async writeNext(): Promise<void> {
    let take = 0;
    let groupBytes = 0;
    const maxBytes = this.options.maxBytes ?? Infinity;
    while (take < this.queue.length && take < this.options.maxBatches) {
      const { bytes } = this.queue[take]!;
      if (take > 0 && groupBytes + bytes > maxBytes) break;
      groupBytes += bytes;
      take++;
    }
    const group = this.queue.splice(0, take);
    if (group.length === 0) return;
    this.inFlightBatches += group.length;
    const started = performance.now();
    this.wait.groupStarted(started, this.queue.length + this.inFlightBatches);
    try {
      const report = await this.sink.write(group.map((w) => w.batch));
      const elapsed = performance.now() - started;
      const ms = Math.round(elapsed);
      this.stats.maxCommitMs = Math.max(this.stats.maxCommitMs, ms);
      if (ms > SLOW_COMMIT_MS) {
        this.stats.slowCommits++;
        this.options.onSlowCommit?.(ms, group.length);
      }
      this.stats.commits++;
      this.stats.batches += group.length - report.rejected.length;
      this.stats.records += report.records ?? 0;
      this.options.onCommit?.(elapsed / 1000, group.length);
      this.settle(group, report, undefined);
      if (this.options.onStored)
        this.options.onStored(
          group.map((w) => w.batch),
          report,
        );
    } catch (e) {
      this.stats.failures++;
      const err =
        e instanceof StoreUnavailableError ? e : new StoreUnavailableError(String((e as Error)?.message ?? e), e);
      this.settle(group, err.report, err);
    } finally {
      this.bytes -= groupBytes;
      this.inFlightBatches -= group.length;
      this.wait.groupFinished(performance.now(), group.length, this.queue.length + this.inFlightBatches);
    }
  }

  /**
   * Answers a group: a batch refused for its content with its 400 (also when the write failed),
   * every other one with `failure` or as stored. Sequence gaps seen are reported either way.
   */
  private settle(
    group: Waiting[],
    report: ReceivedReport | undefined,
    failure: StoreUnavailableError | undefined,
  ): void {
    const rejected = report?.rejected ?? [];
    this.stats.rejected += rejected.length;
    const refused =
      rejected.length === 0
        ? undefined
        : new Map(rejected.map(([i, code, detail]) => [i, new SipRequestError(code, detail)]));
    group.forEach((w, i) => {
      const e = refused?.get(i) ?? failure;
      if (e) w.reject(e);
      else w.resolve();
    });
    const gaps = report?.gaps ?? [];
    this.stats.sequenceGaps += gaps.length;
    for (const gap of gaps) this.options.onSequenceGap?.(gap);
  }
}
