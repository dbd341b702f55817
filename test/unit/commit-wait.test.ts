import { expect } from 'chai';
import { CommitWaitEstimator, MIN_WINDOW_MS, SATURATED_BACKLOG } from '../../src/ingest/commit-wait.js';

/** The estimator on an explicit clock (ms): what group commit reports to it, and what it concludes. */
describe('commit wait estimator', () => {
  const big = SATURATED_BACKLOG * 4;

  it('learns the drain rate only from windows in which the store had a large backlog', () => {
    const e = new CommitWaitEstimator();
    // Light load: one batch per 15-ms commit (Cassandra's group window). That is the arrivals, not the capacity.
    for (let t = 0; t < 300; t += 15) {
      e.groupStarted(t, 1);
      e.groupFinished(t + 15, 1, 0);
    }
    expect(e.drainRatePerSecond, 'light load teaches nothing').to.equal(0);
    expect(e.expectedWaitMs(400, 500), 'no rate, no stall: no estimate').to.equal(0);
    // Saturated: 100 batches per 50-ms commit with hundreds waiting = 2,000/s.
    for (let t = 1000; t < 1300; t += 50) {
      e.groupStarted(t, big);
      e.groupFinished(t + 50, 100, big);
    }
    expect(e.drainRatePerSecond).to.equal(2000);
    // 999 ahead + itself at 2 batches/ms.
    expect(e.expectedWaitMs(1400, 999)).to.equal(500);
    expect(e.expectedWaitMs(1400, 0), 'nothing ahead').to.equal(0);
  });

  it('lets a small-backlog window raise the rate (a lower bound of the capacity) but never lower it', () => {
    const e = new CommitWaitEstimator();
    for (let t = 0; t < 200; t += 50) {
      e.groupStarted(t, big);
      e.groupFinished(t + 50, 50, big); // 1,000/s
    }
    expect(e.drainRatePerSecond).to.equal(1000);
    // Small backlog, slow: ignored.
    e.groupStarted(1000, 5);
    e.groupFinished(1000 + MIN_WINDOW_MS * 2, 5, 0);
    expect(e.drainRatePerSecond).to.equal(1000);
    // Small backlog, fast (e.g. the store recovered): 40 batches per 10-ms commit, back to back = 4,000/s, raises.
    for (let t = 2000; t < 2500; t += 10) {
      e.groupStarted(t, 40);
      e.groupFinished(t + 10, 40, 40);
    }
    expect(e.drainRatePerSecond).to.be.greaterThan(3000);
  });

  it('counts the time a busy store has gone without finishing anything (a hung store gives no rate sample)', () => {
    const e = new CommitWaitEstimator();
    e.groupStarted(0, 3);
    expect(e.expectedWaitMs(100, 3)).to.equal(100);
    expect(e.expectedWaitMs(740, 10)).to.equal(740);
    e.groupFinished(800, 3, 0);
    expect(e.expectedWaitMs(900, 0), 'idle store, nothing ahead').to.equal(0);
  });
});
