import { Worker } from 'node:worker_threads';
import { StoreUnavailableError } from '../errors.js';
import type { ReceivedReport } from '../domain/received-batch.js';

/**
 * The plumbing between the event loop and a worker thread that does the writing (in the manner of
 * pino's thread-stream): it starts the thread on `work` (a module exporting createWork, run by
 * sink-thread-worker.ts), numbers the requests, answers each with the reply of the unit of work
 * that held it, and restarts the thread on the next request after it died. What a request means
 * is the work module's business (sqlite-sink-work.ts).
 */
export interface ThreadRequest {
  type: string;
  id: number;
}
/** One reply per unit of work (a transaction), naming the requests it held; `reports` in the same order. */
export type ThreadReply =
  | { type: 'done'; ids: number[]; reports?: (ReceivedReport | undefined)[] }
  | { type: 'failed'; ids: number[]; reports?: (ReceivedReport | undefined)[]; message: string }
  | { type: 'closed' };
export const CLOSE = { type: 'close', id: 0 } as const satisfies ThreadRequest;

/** What the thread is started with: the work module and its options. */
export interface ThreadData<O> {
  work: string;
  options: O;
}

const NOTHING_TO_REPORT: ReceivedReport = Object.freeze({ rejected: [], gaps: [] });

/**
 * Main-thread side. post() resolves once the unit of work holding its request has finished (for
 * a writer: committed); requests may be posted before earlier ones have resolved, and the thread
 * takes them in order. If the thread dies, pending requests fail with StoreUnavailableError
 * (answered 503) and the next request starts a new thread.
 */
export class SinkThread<O> {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (report: ReceivedReport) => void; reject: (e: Error) => void }
  >();
  private closing: Promise<void> | undefined;
  /** Units of work the thread has finished (done or failed): fewer than requests when it merged them. */
  transactions = 0;

  constructor(
    private readonly work: URL,
    private readonly options: O,
  ) {}

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./sink-thread-worker.js', import.meta.url), {
      workerData: { work: this.work.href, options: this.options } satisfies ThreadData<O>,
    });
    w.on('message', (m: ThreadReply) => {
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

  /** Posts the request made for the next id, with the buffers to move to the thread (not copied). */
  post<R extends ThreadRequest>(request: (id: number) => R | [R, ArrayBuffer[]]): Promise<ReceivedReport> {
    if (this.closing) return Promise.reject(new StoreUnavailableError('SQLite store is closing'));
    const made = request(this.nextId++);
    const [m, transfer] = Array.isArray(made) ? made : [made, []];
    const w = this.ensure();
    return new Promise<ReceivedReport>((resolve, reject) => {
      this.pending.set(m.id, { resolve, reject });
      w.postMessage(m, transfer);
    });
  }

  /**
   * Lets the thread close its work and ends it. The thread handles messages in order, so every
   * request posted before close() finishes (and is answered) first.
   */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      const w = this.worker;
      if (!w) return;
      const exited = new Promise<void>((r) => w.once('exit', () => r()));
      w.postMessage(CLOSE);
      const timer = new Promise<void>((r) => setTimeout(r, 10_000).unref());
      await Promise.race([exited, timer]);
      await w.terminate();
      this.worker = undefined;
    })());
  }
}

/**
 * The work a thread does, as the module named by `work` creates it (`export function createWork(options)`).
 * next() is given the requests waiting, in order (never empty, never a close): it takes the first
 * `take` of them (at least one) into one unit of work. Its reports go back with the reply even when
 * write() throws: a batch refused for its content stays refused whatever happened to the write.
 */
export interface ThreadWork<R extends ThreadRequest> {
  next(waiting: readonly R[]): { take: number; reports?: (ReceivedReport | undefined)[]; write: () => void };
  close(): void;
}
