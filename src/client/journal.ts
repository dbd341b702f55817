import { epochSecondToParts } from '../domain/batch.js';
import { SqliteStore } from '../store/sqlite-store.js';

/**
 * The meter's own journal: every batch is written here BEFORE it is sent, so the meter can
 * answer the sync service and resend anything within its retention. Same schema and digest code
 * as the server's embedded store, so both sides compute digests identically.
 */
export class Journal extends SqliteStore {
  constructor(dir: string) {
    super({ dir, synchronous: 'NORMAL' });
  }

  /** Deletes batches older than the epoch second `before`; returns how many. */
  prune(before: number): number {
    if (!this.db) return 0;
    const p = epochSecondToParts(before);
    return this.db
      .prepare('DELETE FROM ec_consumption WHERE ec_date < ? OR (ec_date = ? AND ec_time < ?)')
      .run(p.ec_date, p.ec_date, p.ec_time).changes;
  }
}
