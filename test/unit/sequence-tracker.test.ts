import { expect } from 'chai';
import { SequenceTracker } from '../../src/ingest/sequence-tracker.js';

describe('sequence tracker (X-EC-Seq gaps)', () => {
  it('reports a gap with the number it expected, and not for repeats or reordering', () => {
    const t = new SequenceTracker(100);
    expect(t.observe('d1', 1)).to.equal(undefined);
    expect(t.observe('d1', 2)).to.equal(undefined);
    expect(t.observe('d1', 5)).to.deep.equal({ expected: 3 });
    expect(t.observe('d1', 4)).to.equal(undefined); // late arrival: not a new gap
    expect(t.observe('d1', 5)).to.equal(undefined); // retransmission
    expect(t.observe('d1', 6)).to.equal(undefined);
    expect(t.gaps).to.equal(1);
  });

  it('stays within its bound under a stream of new devices, and keeps the devices still sending', () => {
    const t = new SequenceTracker(1000);
    for (let i = 0; i < 50_000; i++) {
      t.observe(`new-${i}`, 1);
      if (i % 100 === 0) t.observe('steady', i / 100 + 1);
      expect(t.size).to.be.at.most(1000);
    }
    // 'steady' was seen every 100 devices: never forgotten, so never a false gap.
    expect(t.observe('steady', 501)).to.equal(undefined);
    expect(t.observe('steady', 503)).to.deep.equal({ expected: 502 });
  });
});
