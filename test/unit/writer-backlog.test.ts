import { expect } from 'chai';
import { groupsForTransaction } from '../../src/ingest/writer-backlog.js';

/** How the SQLite writer thread merges the groups waiting in its inbox into one transaction. */
describe('writer backlog: groups per transaction', () => {
  const bounds = { maxBatches: 100, maxBytes: 10_000 };
  const g = (batches: number, bytes = batches * 10) => ({ batches, bytes });

  it('takes nothing from nothing, and always at least one group (even one over the bounds)', () => {
    expect(groupsForTransaction([], bounds)).to.equal(0);
    expect(groupsForTransaction([g(500, 1e6), g(1)], bounds)).to.equal(1);
  });

  it('takes waiting groups in order while the batch bound holds', () => {
    expect(groupsForTransaction([g(40), g(40), g(20), g(1)], bounds)).to.equal(3);
    expect(groupsForTransaction([g(40), g(61), g(1)], bounds)).to.equal(1);
  });

  it('takes waiting groups in order while the byte bound holds', () => {
    expect(groupsForTransaction([g(1, 4000), g(1, 6000), g(1, 1)], bounds)).to.equal(2);
    expect(groupsForTransaction([g(1, 4000), g(1, 6001), g(1, 1)], bounds)).to.equal(1);
  });

  it('does not skip a group that does not fit to take a later one that would', () => {
    expect(groupsForTransaction([g(90), g(20), g(5)], bounds)).to.equal(1);
  });
});
