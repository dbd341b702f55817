import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase, preparePackedUpsert } from './sqlite-schema.js';
import type { WriteReply, WriteRequest } from './sqlite-writer.js';

/**
 * The embedded store's writer thread: commits (and fsyncs) off the event loop, so the SIP front
 * end keeps receiving while a commit waits for the disk. Everything that arrives meanwhile goes
 * into the next transaction (group commit).
 */
const { file, synchronous } = workerData as { file: string; synchronous: 'FULL' | 'NORMAL' };
const db = openDatabase(file, synchronous);
const upsertPacked = preparePackedUpsert(db);

parentPort!.on('message', (m: WriteRequest) => {
  if (m.type === 'close') {
    db.close();
    parentPort!.postMessage({ type: 'closed' } satisfies WriteReply);
    parentPort!.close();
    return;
  }
  try {
    upsertPacked(m.packed);
    parentPort!.postMessage({ type: 'done', id: m.id } satisfies WriteReply);
  } catch (e) {
    parentPort!.postMessage({ type: 'failed', id: m.id, message: (e as Error).message } satisfies WriteReply);
  }
});
