import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { ReceivedBatch, ReceivedReport } from '../domain/received-batch.js';
import { BatchStage } from '../ingest/batch-stage.js';
import { unpackReceived } from './batch-rows.js';
import { DEVICE_UPSERT, openDatabase, preparePositionalUpsert } from './sqlite-schema.js';
import type { WriteReply, WriteRequest, WriterData } from './sqlite-writer.js';
import { groupsForTransaction } from './writer-backlog.js';

/**
 * The embedded store's writer thread: commits (and fsyncs) off the event loop, so the SIP front
 * end keeps receiving while a commit waits for the disk. Received batches are parsed and checked
 * here too (ingest's batch stage), just before their transaction: that work is off the event loop
 * as well, and so is the deflating of large record lists (stored-values.ts). Groups that arrive
 * during a commit go into the next transaction together, within the commit bounds
 * (writer-backlog.ts).
 */
const { file, synchronous, bounds, compression, maxFutureS } = workerData as WriterData;
const db = openDatabase(file, synchronous);
const upsert = preparePositionalUpsert(db, compression);
const stage = new BatchStage({ maxFutureS });
const deviceUpsert = db.prepare(DEVICE_UPSERT);
const upsertDevices = db.transaction((rows: readonly object[]) => {
  for (const r of rows) deviceUpsert.run(r);
});
const port = parentPort!;

type Ingest = Extract<WriteRequest, { type: 'ingest' }> & { received?: ReceivedBatch[]; bytes?: number };
const backlog: WriteRequest[] = [];

port.on('message', (m: WriteRequest) => {
  backlog.push(m);
  drain();
});

/** Takes whatever else is already waiting, so that it can join the next transaction. */
function pull(): void {
  for (let r = receiveMessageOnPort(port); r !== undefined; r = receiveMessageOnPort(port))
    backlog.push(r.message as WriteRequest);
}

function drain(): void {
  pull();
  while (backlog.length > 0) {
    const m = backlog[0]!;
    if (m.type === 'close') {
      backlog.length = 0;
      db.close();
      port.postMessage({ type: 'closed' } satisfies WriteReply);
      port.close();
      return;
    }
    if (m.type === 'write') {
      backlog.shift();
      commit([m.id], undefined, () => upsert.packed(m.packed));
    } else if (m.type === 'devices') {
      backlog.shift();
      commit([m.id], undefined, () => upsertDevices(m.rows));
    } else {
      let n = 0;
      while (n < backlog.length && backlog[n]!.type === 'ingest') n++;
      const waiting = (backlog.slice(0, n) as Ingest[]).map(unpacked);
      const take = waiting.slice(
        0,
        groupsForTransaction(
          waiting.map((g) => ({ batches: g.received!.length, bytes: g.bytes! })),
          bounds,
        ),
      );
      backlog.splice(0, take.length);
      const groups = take.map((g) => g.received!);
      const { batches, report } = stage.run(groups.flat());
      commit(
        take.map((g) => g.id),
        splitReport(report, groups),
        () => upsert.batches(batches),
      );
    }
    pull();
  }
}

function unpacked(m: Ingest): Ingest {
  if (!m.received) {
    m.received = unpackReceived(Buffer.from(m.packed));
    m.bytes = m.received.reduce((s, r) => s + r.body.length + 200, 0);
  }
  return m;
}

/** One report per group (rejections indexed within it) from the report of their concatenation. */
function splitReport(report: ReceivedReport, groups: ReceivedBatch[][]): ReceivedReport[] {
  const reports: ReceivedReport[] = groups.map(() => ({ rejected: [], gaps: [] }));
  let g = 0;
  let start = 0;
  for (const [index, code, detail] of report.rejected) {
    while (index >= start + groups[g]!.length) start += groups[g++]!.length;
    reports[g]!.rejected.push([index - start, code, detail]);
  }
  let from = 0;
  groups.forEach((group, i) => {
    reports[i]!.samples = report.samples?.slice(from, from + group.length);
    from += group.length;
  });
  // Gaps are only logged, records only counted: the first group carries them.
  reports[0]!.gaps = report.gaps;
  reports[0]!.records = report.records;
  return reports;
}

/**
 * Runs one transaction and answers every request it held. The reports go with a failure too: a
 * batch refused for its content stays refused (400) whatever happened to the transaction, and a
 * gap the sequence tracker has seen is logged once.
 */
function commit(ids: number[], reports: ReceivedReport[] | undefined, write: () => void): void {
  try {
    write();
    port.postMessage({ type: 'done', ids, reports } satisfies WriteReply);
  } catch (e) {
    port.postMessage({ type: 'failed', ids, reports, message: (e as Error).message } satisfies WriteReply);
  }
}
