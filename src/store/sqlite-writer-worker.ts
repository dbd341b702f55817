import { parentPort, workerData } from 'node:worker_threads';
import { BatchStage } from '../ingest/batch-stage.js';
import { unpackReceived } from './batch-rows.js';
import { openDatabase, preparePositionalUpsert } from './sqlite-schema.js';
import type { WriteReply, WriteRequest } from './sqlite-writer.js';

/**
 * The embedded store's writer thread: commits (and fsyncs) off the event loop, so the SIP front
 * end keeps receiving while a commit waits for the disk. Everything that arrives meanwhile goes
 * into the next transaction (group commit). Received batches are parsed and checked here too
 * (ingest's batch stage), just before their transaction: that work is off the event loop as well.
 */
const { file, synchronous } = workerData as { file: string; synchronous: 'FULL' | 'NORMAL' };
const db = openDatabase(file, synchronous);
const upsert = preparePositionalUpsert(db);
const stage = new BatchStage();

parentPort!.on('message', (m: WriteRequest) => {
  if (m.type === 'close') {
    db.close();
    parentPort!.postMessage({ type: 'closed' } satisfies WriteReply);
    parentPort!.close();
    return;
  }
  try {
    if (m.type === 'write') {
      upsert.packed(m.packed);
      parentPort!.postMessage({ type: 'done', id: m.id } satisfies WriteReply);
    } else {
      const { batches, report } = stage.run(unpackReceived(Buffer.from(m.packed)));
      upsert.batches(batches);
      parentPort!.postMessage({ type: 'done', id: m.id, report } satisfies WriteReply);
    }
  } catch (e) {
    parentPort!.postMessage({ type: 'failed', id: m.id, message: (e as Error).message } satisfies WriteReply);
  }
});
