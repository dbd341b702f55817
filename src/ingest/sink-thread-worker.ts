import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { ThreadData, ThreadReply, ThreadRequest, ThreadWork } from './sink-thread.js';

/**
 * The thread side of sink-thread.ts: loads the work module, keeps the requests that wait in its
 * inbox, and hands them to the work in order, so that everything that arrived during one unit of
 * work (a commit) can join the next. It never waits for the event loop between units.
 */
const { work, options } = workerData as ThreadData<unknown>;
const { createWork } = (await import(work)) as { createWork: (options: unknown) => ThreadWork<ThreadRequest> };
const worker = createWork(options);
const port = parentPort!;
const backlog: ThreadRequest[] = [];

port.on('message', (m: ThreadRequest) => {
  backlog.push(m);
  drain();
});

/** Takes whatever else is already waiting, so that it can join the next unit of work. */
function pull(): void {
  for (let r = receiveMessageOnPort(port); r !== undefined; r = receiveMessageOnPort(port))
    backlog.push(r.message as ThreadRequest);
}

function drain(): void {
  pull();
  while (backlog.length > 0) {
    if (backlog[0]!.type === 'close') {
      backlog.length = 0;
      worker.close();
      port.postMessage({ type: 'closed' } satisfies ThreadReply);
      port.close();
      return;
    }
    let n = 0;
    while (n < backlog.length && backlog[n]!.type !== 'close') n++;
    const { take, reports, write } = worker.next(backlog.slice(0, n));
    const ids = backlog.splice(0, Math.max(1, take)).map((r) => r.id);
    try {
      write();
      port.postMessage({ type: 'done', ids, reports } satisfies ThreadReply);
    } catch (e) {
      port.postMessage({ type: 'failed', ids, reports, message: (e as Error).message } satisfies ThreadReply);
    }
    pull();
  }
}
