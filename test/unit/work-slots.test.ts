import { expect } from 'chai';
import { WorkSlots, mapLimit } from '../../src/util/work-slots.js';

describe('work slots (sync reconciliations at once)', () => {
  it('runs at most `size` jobs at a time, all of them in the end, first come first served', async () => {
    const slots = new WorkSlots(3);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const jobs = Array.from({ length: 10 }, (_, i) =>
      slots.run(async () => {
        started.push(i);
        most = Math.max(most, ++running);
        await new Promise<void>((r) => releases.push(r));
        running--;
        return i;
      }),
    );
    // Release jobs one at a time as they start, until all have run.
    while (started.length < 10 || releases.length > 0) {
      await new Promise((r) => setImmediate(r));
      releases.shift()?.();
    }
    expect(await Promise.all(jobs)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(started).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(most).to.equal(3);
  });

  it('a job that throws frees its slot', async () => {
    const slots = new WorkSlots(1);
    await slots.run(() => Promise.reject(new Error('boom'))).catch(() => undefined);
    expect(await slots.run(async () => 'next')).to.equal('next');
  });

  it('mapLimit: results in item order, at most `limit` in flight', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (ms) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      return ms * 10;
    });
    expect(out).to.deep.equal([50, 10, 40, 20, 30]);
    expect(most).to.equal(2);
  });

  it('mapLimit: after the first failure no new item starts; rejects once the ones in flight settle', async () => {
    const started: number[] = [];
    let settled = 0;
    const run = mapLimit([0, 1, 2, 3, 4], 2, async (i) => {
      started.push(i);
      await new Promise((r) => setTimeout(r, i === 0 ? 5 : 20));
      settled++;
      if (i === 0) throw new Error('boom');
      return i;
    });
    let error: unknown;
    await run.catch((e: unknown) => (error = e));
    expect((error as Error).message).to.equal('boom');
    expect(started).to.deep.equal([0, 1]);
    expect(settled, 'item 1 settled before the rejection').to.equal(2);
  });
});
