import type { Batch } from '../domain/batch.js';
import type { ReceivedBatch, ReceivedReport } from '../domain/received-batch.js';
import { SipRequestError } from '../errors.js';
import { parseBatchBody } from '../domain/batch-body.js';
import { FutureBound } from './future-bound.js';
import { checkIntegrity } from './integrity-headers.js';
import { SequenceTracker } from './sequence-tracker.js';

/**
 * From received batches to rows: parses each body, checks the integrity headers against it and
 * notes sequence gaps. It runs where a group is written, just before the transaction: in the
 * SQLite writer thread (WorkerIngestSink, sqlite-sink-work.ts), or on the event loop (InlineIngestSink).
 * Off the event loop, it no longer costs the event loop a large share of its time per small batch
 * (body grammar, MD5, the sequence map, the batch object: docs/storage.md, Where bodies are parsed).
 */
export class BatchStage {
  private readonly sequences = new SequenceTracker(100_000);
  private readonly future: FutureBound | undefined;
  private readonly aggregates: boolean;

  constructor(
    /** aggregates: storage.aggregates (default true), each batch's values_stats computed with its parse. */
    options: { maxFutureS?: number | undefined; aggregates?: boolean | undefined } = {},
    /** Epoch milliseconds; injectable for tests. */
    private readonly now: () => number = Date.now,
  ) {
    this.future = options.maxFutureS === undefined ? undefined : new FutureBound(options.maxFutureS);
    this.aggregates = options.aggregates ?? true;
  }

  /**
   * The batches to store (in order) and what happened to the rest. Never throws: an unexpected
   * error (a bug) refuses only the batch it met, as a 500 naming it, so that it cannot fail the
   * other batches of its transaction, and then those of every transaction its retransmissions join.
   */
  run(received: readonly ReceivedBatch[]): { batches: Batch[]; report: ReceivedReport } {
    const batches: Batch[] = [];
    const samples = new Array<number>(received.length).fill(0);
    const report: ReceivedReport = { rejected: [], gaps: [], records: 0, samples };
    let records = 0;
    // One clock read per group: where the body's timestamp is checked, just before its transaction.
    const nowS = this.now() / 1000;
    for (let i = 0; i < received.length; i++) {
      const r = received[i]!;
      try {
        const parsed = parseBatchBody(r.body, { stats: this.aggregates });
        this.future?.check(parsed.ec_date + parsed.ec_time, nowS);
        const seq = checkIntegrity(r, parsed);
        if (seq !== null) {
          const gap = this.sequences.observe(parsed.device_id, seq);
          if (gap) report.gaps.push([parsed.device_id, seq, gap.expected]);
        }
        // Every field written out (not a spread of `parsed`): one object shape for every batch.
        batches.push({
          device_id: parsed.device_id,
          ec_date: parsed.ec_date,
          ec_time: parsed.ec_time,
          start_us: parsed.start_us,
          end_us: parsed.end_us,
          ec_consumption_values: parsed.ec_consumption_values,
          values_count: parsed.values_count,
          values_checksum: parsed.values_checksum,
          batch_seq: seq,
          insert_time: r.insert_time,
          values_stats: parsed.values_stats, // undefined with storage.aggregates off: the store writes none
        });
        records += parsed.values_count;
        samples[i] = parsed.values_count;
      } catch (e) {
        if (e instanceof SipRequestError) report.rejected.push([i, e.code, e.detail]);
        else report.rejected.push([i, 'EC_BATCH_INTERNAL', String((e as Error)?.message ?? e).slice(0, 200)]);
      }
    }
    report.records = records;
    return { batches, report };
  }
}
