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

/**
 * Runs fn over items with at most `limit` in flight (through WorkSlots), results in item order.
 * After the first failure no new item starts; it rejects with that failure once the ones in flight
 * have settled.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const slots = new WorkSlots(limit);
  const results = new Array<R>(items.length);
  let failure: { error: unknown } | undefined;
  await Promise.all(
    items.map((item, i) =>
      slots.run(async () => {
        if (failure) return;
        try {
          results[i] = await fn(item);
        } catch (e) {
          failure ??= { error: e };
        }
      }),
    ),
  );
  if (failure) throw failure.error;
  return results;
}
