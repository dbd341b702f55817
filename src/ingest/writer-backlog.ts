/**
 * How the SQLite writer thread groups what waits in its inbox into transactions. The event loop
 * hands over each group as soon as it has one, without waiting for the previous commit (see
 * IngestSink.pipelined); the thread then writes everything that arrived during a commit in
 * the next one, within the same bounds a group commit has on the event loop. The thread never
 * waits for the event loop between commits, which under load (a busy event loop answers the
 * thread's replies late) left it idle for part of every cycle.
 */
export interface TransactionBounds {
  /** storage.commit_max_batches */
  maxBatches: number;
  /** storage.commit_max_bytes, counted as the group commit counts it (batchWeight). */
  maxBytes: number;
}

/**
 * How many of the waiting groups (in order) go into the next transaction: at least one, then as many as fit both
 * bounds.
 */
export function groupsForTransaction(
  groups: readonly { batches: number; bytes: number }[],
  bounds: TransactionBounds,
): number {
  if (groups.length === 0) return 0;
  let batches = groups[0]!.batches;
  let bytes = groups[0]!.bytes;
  let n = 1;
  for (; n < groups.length; n++) {
    const g = groups[n]!;
    if (batches + g.batches > bounds.maxBatches || bytes + g.bytes > bounds.maxBytes) break;
    batches += g.batches;
    bytes += g.bytes;
  }
  return n;
}
