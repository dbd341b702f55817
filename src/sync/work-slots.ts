/**
 * At most `size` jobs at a time; the others wait, first come first served. The sync service runs
 * every reconciliation through one of these, so that hellos arriving together (a reconnect storm,
 * or a peer reconnecting in a loop) queue for sync.concurrency slots instead of all running at once.
 */
export class WorkSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next job: `running` stays the same.
      if (next) next();
      else this.running--;
    }
  }
}
