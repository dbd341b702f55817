import type { Logger } from 'pino';
import type { ConsumptionStore } from '../store/consumption-store.js';

/** Rows read per poll; more wait for the next poll. */
const PAGE = 1000;
/** Replacements logged one by one per poll; the rest of a poll is logged as a count. */
const LOGGED_PER_POLL = 20;

/**
 * Counts and logs acknowledged batches replaced with other values (issue 14, item 8). The store notes
 * them where it writes (SQLite: a trigger, in the write's transaction; Cassandra: late writes read the
 * stored row first); this reads the notes every `everyMs`, off the write path. Sync repairs of corrupted
 * batches are replacements too, and are counted here as well.
 */
export class ReplacementWatch {
  /** Replacements seen since the server started (ec_batches_replaced_total). */
  count = 0;
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(
    private readonly store: Pick<ConsumptionStore, 'readReplacements'>,
    private readonly log: Logger,
    private readonly everyMs = 2000,
  ) {}

  /** Skips the replacements noted before this start (they were counted by the run that saw them). */
  async start(): Promise<void> {
    for (;;) {
      const page = await this.store.readReplacements(this.cursor, PAGE * 10);
      if (page.length === 0) break;
      this.cursor = page[page.length - 1]!.id;
    }
    this.timer = setInterval(() => void this.poll(), this.everyMs);
    this.timer.unref();
  }

  /** Reads what was noted since the last poll (tests call it to see a write's effect at once). */
  poll(): Promise<void> {
    return (this.polling ??= this.readNew().finally(() => (this.polling = undefined)));
  }

  private async readNew(): Promise<void> {
    let page;
    try {
      page = await this.store.readReplacements(this.cursor, PAGE);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'replaced batches cannot be read now');
      return;
    }
    if (page.length === 0) return;
    this.cursor = page[page.length - 1]!.id;
    this.count += page.length;
    for (const r of page.slice(0, LOGGED_PER_POLL)) {
      const { id: _id, ...fields } = r;
      this.log.warn(fields, 'an acknowledged batch was replaced with other values; its sync period is re-opened');
    }
    if (page.length > LOGGED_PER_POLL) {
      this.log.warn({ more: page.length - LOGGED_PER_POLL }, 'more acknowledged batches replaced with other values');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
    await this.poll();
  }
}
