import { Worker } from 'node:worker_threads';
import type { Batch } from '../domain/batch.js';
import { StoreUnavailableError } from '../errors.js';
import { packBatches } from './batch-rows.js';

/** `packed`: the batches as packBatches writes them (batch-rows.ts). */
export type WriteRequest = { type: 'write'; id: number; packed: string } | { type: 'close' };
export type WriteReply = { type: 'done'; id: number } | { type: 'failed'; id: number; message: string } | { type: 'closed' };

/**
 * Main-thread side of the writer thread (sqlite-writer-worker.ts). write() resolves once the
 * transaction holding the batches has committed. If the thread dies, pending writes fail with
 * StoreUnavailableError (answered 503) and the next write starts a new thread.
 */
export class SqliteWriter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly file: string,
    private readonly synchronous: 'FULL' | 'NORMAL',
  ) {}

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./sqlite-writer-worker.js', import.meta.url), { workerData: { file: this.file, synchronous: this.synchronous } });
    w.on('message', (m: WriteReply) => {
      if (m.type === 'closed') return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === 'done') p?.resolve();
      else p?.reject(new StoreUnavailableError(`SQLite write failed: ${m.message}`));
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
    if (this.closing) return Promise.reject(new StoreUnavailableError('SQLite store is closing'));
    const packed = packBatches(batches);
    const w = this.ensure();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ type: 'write', id, packed } satisfies WriteRequest);
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
