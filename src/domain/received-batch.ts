/**
 * A batch as a MESSAGE delivered it, before its body is parsed: what ingest queues for the group
 * commit. The body is parsed and checked where the commit is written (the SQLite writer thread,
 * or the event loop for other stores), so that the event loop only frames, checks the SIP head
 * and answers (see ingest/batch-stage.ts).
 */
export interface ReceivedBatch {
  /** The body exactly as received, decoded as latin1 (bytes 1:1): a copy, not a view into a socket read. */
  body: string;
  /** X-EC-Count, X-EC-Checksum, X-EC-Seq as sent (trimmed); undefined when absent. */
  count: string | undefined;
  checksum: string | undefined;
  seq: string | undefined;
  /** When received, ms since the epoch: the stored insert_time. */
  insert_time: number;
}

/**
 * Memory a received batch holds, roughly: its body plus the fixed fields. The one measure of a
 * batch's size for the group commit's bounds and the writer thread's (storage.commit_max_bytes,
 * storage.max_queued_bytes).
 */
export function batchWeight(b: ReceivedBatch): number {
  return b.body.length + 200;
}

// What writing a group did (rejections, sequence gaps) is declared beside the error that carries it when
// the write fails (StoreUnavailableError.report), so that errors.ts imports nothing; re-exported here.
export type { ReceivedReport, Rejection, SequenceGap } from '../errors.js';
