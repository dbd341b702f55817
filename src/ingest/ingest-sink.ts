import type { ReceivedBatch, ReceivedReport } from '../domain/received-batch.js';
import { StoreUnavailableError } from '../errors.js';
import type { ConsumptionStore } from '../store/consumption-store.js';
import { BatchStage } from './batch-stage.js';

/**
 * Where the group commit hands its groups of received batches: the sink parses and checks them
 * (batch-stage.ts) and writes the good ones to the store in one transaction. Two of them:
 * InlineIngestSink (parses on the event loop, then store.upsertBatches) and WorkerIngestSink
 * (worker-sink.ts: parses and writes on the thread that owns the SQLite write connection, off the
 * event loop). open-sink.ts picks one.
 */
export interface IngestSink {
  /**
   * True when write() may be called before earlier calls have resolved, the writes applying in
   * call order: the group commit then hands over each group at once instead of waiting.
   */
  readonly pipelined: boolean;
  /**
   * True when the groups handed over are written independently of each other (Cassandra: their
   * writes share one adaptive limit and each resolves when its own writes do), so a slow group does
   * not hold the ones after it. False when they are written one after the other (SQLite's writer).
   * Overload control reads it: a group that takes long delays a new batch only in the second case.
   */
  readonly concurrent: boolean;
  /**
   * Resolves once the good batches are durable, with the ones refused for their content (and
   * the sequence gaps seen). Rejects with StoreUnavailableError, whose report says the same.
   */
  write(received: readonly ReceivedBatch[]): Promise<ReceivedReport>;
  close(): Promise<void>;
}

/** Parses on the event loop, then writes through the store: any backend. */
export class InlineIngestSink implements IngestSink {
  private readonly stage: BatchStage;

  constructor(
    private readonly store: ConsumptionStore,
    /** aggregates: storage.aggregates (default true), as the store was opened with. */
    options: { maxFutureS?: number | undefined; aggregates?: boolean | undefined } = {},
  ) {
    this.stage = new BatchStage(options);
  }

  get pipelined(): boolean {
    return this.store.pipelined;
  }

  /** A store with a concurrent write limit (Cassandra) writes groups independently. */
  get concurrent(): boolean {
    return this.store.writeLimit !== undefined;
  }

  async write(received: readonly ReceivedBatch[]): Promise<ReceivedReport> {
    const { batches, report } = this.stage.run(received);
    try {
      if (batches.length > 0) await this.store.upsertBatches(batches);
    } catch (e) {
      const message = String((e as Error)?.message ?? e);
      throw new StoreUnavailableError(message, e instanceof StoreUnavailableError ? e.cause : e, report);
    }
    return report;
  }

  /** Nothing of its own to close: the store is closed by its owner. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
