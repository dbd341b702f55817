/**
 * Resolves once `cond()` holds, checking every 10 ms; rejects naming `what` after `ms`. For
 * conditions that have no event of their own (a server-side counter, a socket the server closed);
 * the time limit only bounds a failing test, it is not what the test asserts.
 */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
