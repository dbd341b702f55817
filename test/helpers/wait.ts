/**
 * Waiting on events instead of sleeping: `until(cond)` resolves as soon as `cond()` holds, checked now
 * and again each time the test calls `check()` (from the event handler that changes what cond reads).
 * It rejects, naming what it waited for, when that does not happen within `timeoutMs`.
 */
export class Conditions {
  private readonly waiting = new Set<() => boolean>();

  until(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = (): boolean => {
        if (!cond()) return false;
        clearTimeout(timer);
        this.waiting.delete(test);
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        this.waiting.delete(test);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      if (!test()) this.waiting.add(test);
    });
  }

  /** Re-evaluates every pending condition. */
  check(): void {
    for (const test of [...this.waiting]) test();
  }
}

/**
 * For state that no event announces (a counter inside the server under test): checks `cond` every
 * `everyMs` until it holds. Unlike a fixed sleep, it waits as long as a slow machine needs and no longer.
 */
export async function pollUntil(cond: () => boolean, what: string, timeoutMs = 20_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
