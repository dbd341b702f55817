// @ts-check
// Preloaded into ec-server by bench/profile.mjs --memory (node --import): every 500 ms appends one
// JSON line to $EC_MEMLOG with the process's RSS and the event loop's heap, by V8 space, so that a
// peak RSS can be split into the event loop's heap, off-heap buffers, and the rest (the writer
// thread's heap, SQLite, malloc). Diagnostic only: the server itself does not load it.
import { appendFileSync } from 'node:fs';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';

const file = process.env.EC_MEMLOG;
// Worker threads inherit node's --import: only the event loop's thread samples.
if (file && isMainThread) {
  const t0 = Date.now();
  const mb = (n) => Math.round(n / 1048576);
  setInterval(() => {
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, mb(s.space_size)]));
    try {
      appendFileSync(
        file,
        `${JSON.stringify({
          t: Date.now() - t0,
          rss: mb(m.rss),
          heapTotal: mb(m.heapTotal),
          heapUsed: mb(m.heapUsed),
          external: mb(m.external),
          arrayBuffers: mb(m.arrayBuffers),
          spaces,
        })}\n`,
      );
    } catch {
      // A diagnostic must not take the server down (disk full, file removed).
    }
  }, 500).unref();
}
