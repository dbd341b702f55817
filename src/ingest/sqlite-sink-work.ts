import type { Batch } from '../domain/batch.js';
import type { DeviceRecord } from '../domain/device-record.js';
import { batchWeight, type ReceivedBatch, type ReceivedReport } from '../domain/received-batch.js';
import { SqliteBatchWriter, type SqliteWriteSettings } from '../store/sqlite-batch-writer.js';
import { BatchStage } from './batch-stage.js';
import { unpackReceived } from './received-packing.js';
import type { ThreadWork } from './sink-thread.js';
import { groupsForTransaction, type TransactionBounds } from './writer-backlog.js';

/**
 * write: parsed batches (the store's own writes: sync repairs; rare, so cloned as they are);
 * ingest: received batches packed by packReceived (received-packing.ts; the thread parses and
 * checks them, and reports the ones it did not store).
 */
export type SinkRequest =
  | { type: 'write'; id: number; batches: readonly Batch[] }
  | { type: 'ingest'; id: number; packed: ArrayBuffer }
  | { type: 'devices'; id: number; rows: readonly DeviceRecord[] };

export interface SqliteSinkOptions extends SqliteWriteSettings {
  bounds: TransactionBounds;
  /** ingest.max_future_seconds, for the batch stage; undefined: not checked. */
  maxFutureS: number | undefined;
}

type Ingest = Extract<SinkRequest, { type: 'ingest' }> & { received?: ReceivedBatch[]; bytes?: number };

/**
 * The work of the SQLite writer thread (run by sink-thread-worker.ts): it owns the write connection,
 * commits (and fsyncs) off the event loop, and parses and checks received batches (batch-stage.ts)
 * just before their transaction, so that this is off the event loop as well, and so is the deflating
 * of large record lists (stored-values.ts). Ingest requests that wait together go into one
 * transaction, within the commit bounds (writer-backlog.ts).
 */
export function createWork(options: SqliteSinkOptions): ThreadWork<SinkRequest> {
  const writer = new SqliteBatchWriter(options);
  const stage = new BatchStage({ maxFutureS: options.maxFutureS, aggregates: options.aggregates });
  return {
    next(waiting) {
      const m = waiting[0]!;
      if (m.type === 'write') return { take: 1, write: () => writer.batches(m.batches) };
      if (m.type === 'devices') return { take: 1, write: () => writer.devices(m.rows) };
      let n = 0;
      while (n < waiting.length && waiting[n]!.type === 'ingest') n++;
      const ingests = (waiting.slice(0, n) as Ingest[]).map(unpacked);
      const take = groupsForTransaction(
        ingests.map((g) => ({ batches: g.received!.length, bytes: g.bytes! })),
        options.bounds,
      );
      const groups = ingests.slice(0, take).map((g) => g.received!);
      const { batches, report } = stage.run(groups.flat());
      return { take, reports: splitReport(report, groups), write: () => writer.batches(batches) };
    },
    close: () => writer.close(),
  };
}

/** Unpacked once, when first offered: a request left for the next transaction keeps its batches. */
function unpacked(m: Ingest): Ingest {
  if (!m.received) {
    m.received = unpackReceived(Buffer.from(m.packed));
    m.bytes = m.received.reduce((s, r) => s + batchWeight(r), 0);
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
