import { expect } from 'chai';
import { SEQ_REORDER_WINDOW, SequenceTracker } from '../../src/ingest/sequence-tracker.js';

describe('sequence tracker (X-EC-Seq gaps)', () => {
  it('reports a gap with the number it expected, and not for repeats or reordering', () => {
    const t = new SequenceTracker(100);
    expect(t.observe('d1', 1)).to.equal(undefined);
    expect(t.observe('d1', 2)).to.equal(undefined);
    expect(t.observe('d1', 5)).to.deep.equal({ expected: 3 });
    expect(t.observe('d1', 4)).to.equal(undefined); // late arrival: not a new gap
    expect(t.observe('d1', 5)).to.equal(undefined); // retransmission
    expect(t.observe('d1', 6)).to.equal(undefined);
  });

  it('one forged huge X-EC-Seq does not silence later gaps: far below the highest is a restart', () => {
    const t = new SequenceTracker(100);
    expect(t.observe('d1', 10)).to.equal(undefined);
    expect(t.observe('d1', 999_999_999_999_999)).to.deep.equal({ expected: 11 }); // the forged one
    expect(t.observe('d1', 11)).to.equal(undefined); // the device's own next number: tracking restarts
    expect(t.observe('d1', 12)).to.equal(undefined);
    expect(t.observe('d1', 15)).to.deep.equal({ expected: 13 }); // a later gap is still seen
    expect(t.observe('d1', 14)).to.equal(undefined); // and reordering is still not one
    expect(t.observe('d1', 16)).to.equal(undefined);
  });

  it('a number at most SEQ_REORDER_WINDOW below the highest is late, not a restart', () => {
    const t = new SequenceTracker(100);
    t.observe('d1', 5000);
    expect(t.observe('d1', 5000 - SEQ_REORDER_WINDOW)).to.equal(undefined);
    expect(t.observe('d1', 5001)).to.equal(undefined); // still counting from 5000
    expect(t.observe('d1', 5003)).to.deep.equal({ expected: 5002 });
  });

  it('a device that restarts its numbering: no gap, and gaps after the restart are seen', () => {
    const t = new SequenceTracker(100);
    t.observe('d1', 5000);
    expect(t.observe('d1', 1)).to.equal(undefined);
    expect(t.observe('d1', 2)).to.equal(undefined);
    expect(t.observe('d1', 4)).to.deep.equal({ expected: 3 });
  });

  // The bound itself: two-generation-map.test.ts.
  it('under a stream of new devices, keeps the devices still sending', () => {
    const t = new SequenceTracker(1000);
    for (let i = 0; i < 50_000; i++) {
      t.observe(`new-${i}`, 1);
      if (i % 100 === 0) t.observe('steady', i / 100 + 1);
    }
    // 'steady' was seen every 100 devices: never forgotten, so never a false gap.
    expect(t.observe('steady', 501)).to.equal(undefined);
    expect(t.observe('steady', 503)).to.deep.equal({ expected: 502 });
  });
});
