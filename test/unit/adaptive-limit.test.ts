import { expect } from 'chai';
import { AdaptiveLimit } from '../../src/store/adaptive-limit.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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

  it('keeps its limit when requests are slow but not slower with more in flight (a node down)', async () => {
    // The old rule (target alone) drove this to 16 and kept it there: throughput = 16 / latency.
    const limit = new AdaptiveLimit({ initial: 64, min: 16, max: 1024, targetMs: 5, probeEveryMs: 50 });
    let r = { maxInFlight: 0 };
    for (let i = 0; i < 6; i++) r = await burst(limit, 256, 20);
    expect(limit.floorMs, 'what 16 in flight take').to.be.within(15, 60);
    expect(r.maxInFlight).to.be.above(64);
  });

  it('shrinks when latency grows with the requests in flight (they queue in the store)', async () => {
    // A store that serves one request at a time, 1 ms each: latency = requests ahead of it.
    let tail = Promise.resolve();
    const queued = () => {
      const mine = tail.then(() => sleep(1));
      tail = mine;
      return mine;
    };
    const limit = new AdaptiveLimit({ initial: 128, min: 16, max: 1024, targetMs: 5, probeEveryMs: 200 });
    let inFlight = 0;
    let maxLate = 0;
    await Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        limit.run(async () => {
          inFlight++;
          if (i >= 1500) maxLate = Math.max(maxLate, inFlight);
          await queued();
          inFlight--;
        }),
      ),
    );
    // About twice what the minimum takes (the probe's floor): far from the 128 it started at.
    expect(maxLate).to.be.below(100);
  });

  it('shrinks to its minimum when every request is far slower than at low concurrency', async () => {
    const limit = new AdaptiveLimit({ initial: 64, min: 16, max: 1024, targetMs: 5, probeEveryMs: 10_000 });
    await burst(limit, 64, 10);
    for (let i = 0; i < 8; i++) await burst(limit, 64, 40);
    expect(limit.limit).to.equal(16);
    const r = await burst(limit, 64, 40);
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
