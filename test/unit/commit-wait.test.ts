import { expect } from 'chai';
import { CommitWaitEstimator, SATURATED_BACKLOG } from '../../src/ingest/commit-wait.js';

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

  it('lets a small-backlog window raise the rate (a lower bound of the capacity), never set or lower it', () => {
    const e = new CommitWaitEstimator(250);
    // Back-to-back commits of 5 batches every 10 ms with a few waiting: 500/s, all it was offered.
    for (let t = 0; t < 200; t += 10) {
      e.groupStarted(t, 10);
      e.groupFinished(t + 10, 5, 5);
    }
    expect(e.drainRatePerSecond, 'not set by a small backlog').to.equal(0);
    for (let t = 1000; t < 1300; t += 50) {
      e.groupStarted(t, big);
      e.groupFinished(t + 50, 50, big); // saturated: 1,000/s
    }
    expect(e.drainRatePerSecond).to.equal(1000);
    // Small backlog, slow (the arrivals): not lowered.
    for (let t = 2000; t < 2200; t += 10) {
      e.groupStarted(t, 4);
      e.groupFinished(t + 10, 1, 3);
    }
    expect(e.drainRatePerSecond).to.equal(1000);
    // Small backlog, fast, with idle gaps between commits (only busy time counts): 10 batches per 2 ms.
    for (let t = 3000; t < 4000; t += 10) {
      e.groupStarted(t, 10);
      e.groupFinished(t + 2, 10, 0);
    }
    expect(e.drainRatePerSecond).to.be.greaterThan(4000);
  });

  it('counts a backlog of half what the bound admits as saturated: the rate of a slow store can rise again', () => {
    const e = new CommitWaitEstimator(250);
    // A store draining 100/s, first measured with a large backlog; then the bound admits 25 batches
    // (250 ms at 100/s), so a backlog of 12 or more counts as showing its capacity.
    for (let t = 0; t < 500; t += 100) {
      e.groupStarted(t, big);
      e.groupFinished(t + 100, 10, big);
    }
    expect(e.drainRatePerSecond).to.equal(100);
    // It recovers: 20 batches per 10-ms commit = 2,000/s. The first windows show a backlog of 20
    // (what the bound admitted at 100/s), then as overload control admits more, up to 64.
    for (let t = 500; t < 1000; t += 10) {
      const backlog = t < 600 ? 20 : SATURATED_BACKLOG;
      e.groupStarted(t, backlog);
      e.groupFinished(t + 10, 20, backlog);
    }
    expect(e.drainRatePerSecond).to.be.greaterThan(1500);
  });

  it('counts the time a busy store has gone without finishing anything (a hung store gives no rate sample)', () => {
    const e = new CommitWaitEstimator(250);
    e.groupStarted(0, 3);
    expect(e.expectedWaitMs(100, 3)).to.equal(100);
    expect(e.expectedWaitMs(740, 10)).to.equal(740);
    e.groupFinished(800, 3, 0);
    expect(e.expectedWaitMs(900, 0), 'idle store, nothing ahead').to.equal(0);
    expect(e.drainRatePerSecond, 'the hang is no rate sample').to.equal(0);
  });

  it('counts a slow group only for a batch that waits behind it (a concurrent store writes the next beside it)', () => {
    const e = new CommitWaitEstimator(250);
    e.groupStarted(0, 1); // one write in the store's slow tail
    expect(e.expectedWaitMs(300, 1, true), 'written in turn: behind it').to.equal(300);
    expect(e.expectedWaitMs(300, 1, false), 'written beside it: no rate yet, nothing to wait for').to.equal(0);
    e.groupFinished(350, 1, 0);
    // With a measured rate the backlog still counts for a concurrent store: 2 ahead + itself at 1 batch/ms.
    for (let t = 1000; t < 1300; t += 50) {
      e.groupStarted(t, big);
      e.groupFinished(t + 50, 50, big);
    }
    expect(e.expectedWaitMs(1400, 2, false)).to.equal(3);
  });
});
