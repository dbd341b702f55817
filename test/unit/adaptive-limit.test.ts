import { expect } from 'chai';
import { AdaptiveLimit } from '../../src/store/adaptive-limit.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs n requests at once through the limit; each takes `ms` (0: a tick). Returns the most seen in
 * flight and the start order.
 */
async function burst(limit: AdaptiveLimit, n: number, ms: number): Promise<{ maxInFlight: number; order: number[] }> {
  let inFlight = 0;
  let maxInFlight = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      limit.run(async () => {
        order.push(i);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await (ms > 0 ? sleep(ms) : new Promise((r) => setImmediate(r)));
        inFlight--;
      }),
    ),
  );
  return { maxInFlight, order };
}

describe('adaptive limit (requests in flight adapted to latency)', () => {
  it('never has more in flight than its limit, and starts requests first come, first served', async () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 8, max: 8, targetMs: 1000 });
    const r = await burst(limit, 100, 2);
    expect(r.maxInFlight).to.equal(8);
    expect(r.order).to.deep.equal([...Array(100).keys()]);
  });

  it('grows while rounds that used every slot come back under the target', async () => {
    const limit = new AdaptiveLimit({ initial: 16, min: 16, max: 256, targetMs: 1000 });
    for (let i = 0; i < 10; i++) await burst(limit, 1000, 0);
    expect(limit.limit).to.be.greaterThan(100);
    expect(limit.limit).to.be.at.most(256);
  });

  it('does not grow when it is not the limit (never a request waiting for a slot)', async () => {
    const limit = new AdaptiveLimit({ initial: 64, min: 16, max: 1024, targetMs: 1000 });
    for (let i = 0; i < 10; i++) await burst(limit, 32, 0);
    expect(limit.limit).to.equal(64);
  });

  it('shrinks to its minimum when requests are slower than the target', async () => {
    const limit = new AdaptiveLimit({ initial: 64, min: 16, max: 1024, targetMs: 5 });
    for (let i = 0; i < 8; i++) await burst(limit, 64, 20);
    expect(limit.limit).to.equal(16);
    const r = await burst(limit, 64, 20);
    expect(r.maxInFlight).to.be.at.most(16);
  });

  it('reports the concurrency it used: peak and time-weighted mean in flight, highest limit, completions', async () => {
    const limit = new AdaptiveLimit({ initial: 8, min: 8, max: 8, targetMs: 1000 });
    expect(limit.stats.meanInFlight).to.equal(0);
    await burst(limit, 80, 5);
    const s = limit.stats;
    expect(s.peakInFlight).to.equal(8);
    expect(s.completed).to.equal(80);
    expect(s.maxLimit).to.equal(8);
    // 80 requests of 5 ms, 8 at a time: all 8 slots busy nearly all the time.
    expect(s.meanInFlight).to.be.within(6, 8);
    await burst(limit, 2, 20);
    expect(limit.stats.meanInFlight).to.be.below(s.meanInFlight);
  });
});
