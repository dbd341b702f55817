import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Batch } from '../domain/batch.js';
import type { DeviceRecord } from '../domain/device-record.js';
import { StoreUnavailableError } from '../errors.js';
import type { ReceivedBatch, ReceivedReport } from '../domain/received-batch.js';
import { packBatches, packReceived } from './batch-rows.js';
import type { TransactionBounds } from './writer-backlog.js';
import type { ValuesCompression } from './stored-values.js';

/**
 * write: batches packed by packBatches; ingest: received batches packed by packReceived (the
 * thread parses and checks them, and reports the ones it did not store). Both batch-rows.ts.
 */
export type WriteRequest =
  | { type: 'write'; id: number; packed: string }
  | { type: 'ingest'; id: number; packed: ArrayBuffer }
  | { type: 'devices'; id: number; rows: readonly DeviceRecord[] }
  | { type: 'close' };
/** One reply per transaction, naming the requests it held; `reports` (ingest only) in the same order. */
export type WriteReply =
  | { type: 'done'; ids: number[]; reports?: ReceivedReport[] }
  | { type: 'failed'; ids: number[]; reports?: ReceivedReport[]; message: string }
  | { type: 'closed' };

/** What the thread is started with. */
export interface WriterData {
  file: string;
  synchronous: 'FULL' | 'NORMAL';
  bounds: TransactionBounds;
  compression: ValuesCompression;
  /** ingest.max_future_seconds, for the batch stage; undefined: not checked. */
  maxFutureS: number | undefined;
}

/** Largest semi-space of the writer thread's V8 young generation. */
const WORKER_SEMI_SPACE_MB = 8;

const NOTHING_TO_REPORT: ReceivedReport = Object.freeze({ rejected: [], gaps: [] });

/**
 * Main-thread side of the writer thread (sqlite-writer-worker.ts). write() and ingest() resolve
 * once the transaction holding their batches has committed; they may be called before earlier
 * ones have resolved, and the thread applies them in call order (several in one transaction when
 * they wait together). If the thread dies, pending writes fail with StoreUnavailableError
 * (answered 503) and the next write starts a new thread.
 */
export class SqliteWriter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (report: ReceivedReport) => void; reject: (e: Error) => void }
  >();
  private closing: Promise<void> | undefined;
  /** Transactions the thread has finished (committed or failed): fewer than requests when it merged them. */
  transactions = 0;

  constructor(
    private readonly file: string,
    private readonly synchronous: 'FULL' | 'NORMAL',
    private readonly bounds: TransactionBounds,
    private readonly compression: ValuesCompression,
    private readonly maxFutureS?: number,
  ) {}

  private ensure(): Worker {
    if (this.worker) return this.worker;
    // The thread's young generation would otherwise grow to the event loop's --max-semi-space-size
    // (64 MiB semi-spaces, 128 MiB of new space): its objects live for one transaction, and the
    // larger young generation cost only RSS (~+125 MB in a small-UDP soak). V8 flags are per
    // process and that flag overrides a Worker's resourceLimits; V8 reads it when it creates an
    // isolate, so lowering it here sizes the thread's heap and leaves the event loop's, created
    // long before, as it is (measured: new space 16 MiB in the thread, 128 MiB on the event loop).
    v8.setFlagsFromString(`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`);
    const w = new Worker(new URL('./sqlite-writer-worker.js', import.meta.url), {
      workerData: {
        file: this.file,
        synchronous: this.synchronous,
        bounds: this.bounds,
        compression: this.compression,
        maxFutureS: this.maxFutureS,
      } satisfies WriterData,
    });
    w.on('message', (m: WriteReply) => {
      if (m.type === 'closed') return;
      this.transactions++;
      m.ids.forEach((id, i) => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        if (m.type === 'done') p?.resolve(m.reports?.[i] ?? NOTHING_TO_REPORT);
        else p?.reject(new StoreUnavailableError(`SQLite write failed: ${m.message}`, undefined, m.reports?.[i]));
      });
    });
    const die = (e: Error) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(new StoreUnavailableError(`SQLite writer stopped: ${e.message}`, e));
      }
    };
    w.on('error', die);
    w.on('exit', (code) => die(new Error(`exit code ${code}`)));
    this.worker = w;
    return w;
  }

  write(batches: readonly Batch[]): Promise<void> {
    return this.post((id) => ({ type: 'write', id, packed: packBatches(batches) })).then(() => undefined);
  }

  /** Upserts device registry rows in a transaction of their own, in order with the batch writes. */
  devices(rows: readonly DeviceRecord[]): Promise<void> {
    return this.post((id) => ({ type: 'devices', id, rows })).then(() => undefined);
  }

  /** Parses, checks and writes received batches in one transaction in the thread (ingest/batch-stage.ts). */
  ingest(received: readonly ReceivedBatch[]): Promise<ReceivedReport> {
    return this.post((id) => {
      // Packed into a buffer of its own that is moved to the thread, not copied.
      const packed = packReceived(received).buffer as ArrayBuffer;
      return [{ type: 'ingest', id, packed }, [packed]];
    });
  }

  private post(request: (id: number) => WriteRequest | [WriteRequest, ArrayBuffer[]]): Promise<ReceivedReport> {
    if (this.closing) return Promise.reject(new StoreUnavailableError('SQLite store is closing'));
    const made = request(this.nextId++);
    const [m, transfer] = Array.isArray(made) ? made : [made, []];
    const w = this.ensure();
    return new Promise<ReceivedReport>((resolve, reject) => {
      this.pending.set((m as { id: number }).id, { resolve, reject });
      w.postMessage(m, transfer);
    });
  }

  /**
   * Closes the database in the thread and ends it. The thread handles messages in order, so
   * every write posted before close() commits (and is answered) first.
   */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      const w = this.worker;
      if (!w) return;
      const exited = new Promise<void>((r) => w.once('exit', () => r()));
      w.postMessage({ type: 'close' } satisfies WriteRequest);
      const timer = new Promise<void>((r) => setTimeout(r, 10_000).unref());
      await Promise.race([exited, timer]);
      await w.terminate();
      this.worker = undefined;
    })());
  }
}
