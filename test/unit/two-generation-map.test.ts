import { expect } from 'chai';
import { TwoGenerationMap } from '../../src/util/two-generation-map.js';

describe('two-generation map (bounded, least recently used half dropped whole)', () => {
  it('never holds more than maxEntries, and always the newest half', () => {
    const m = new TwoGenerationMap<string, number>(1000);
    for (let i = 0; i < 50_000; i++) {
      m.set(`k${i}`, i);
      expect(m.size).to.be.at.most(1000);
    }
    for (let i = 50_000 - 500; i < 50_000; i++) expect(m.peek(`k${i}`)).to.equal(i);
    expect(m.peek('k0')).to.equal(undefined);
  });

  it('get makes an entry recently used (kept), peek does not', () => {
    const m = new TwoGenerationMap<string, number>(4);
    m.set('used', 1);
    m.set('peeked', 2);
    m.set('c', 3); // rotates: 'used' and 'peeked' are the previous generation
    expect(m.get('used')).to.equal(1);
    expect(m.peek('peeked')).to.equal(2);
    m.set('d', 4); // rotates again: the previous generation ('peeked') is dropped
    expect(m.peek('used')).to.equal(1);
    expect(m.peek('peeked')).to.equal(undefined);
  });

  it('bounds weight too (each generation half), counting what entries gain later', () => {
    let rotations = 0;
    const m = new TwoGenerationMap<string, string>(1_000_000, { maxWeight: 1000, onRotate: () => rotations++ });
    for (let i = 0; i < 100; i++) {
      m.set(`k${i}`, 'v', 50);
      m.addWeight(`k${i}`, 50);
      expect(m.weight).to.be.at.most(1000 + 2 * 50);
    }
    expect(rotations).to.be.greaterThan(10);
    expect(m.peek('k99')).to.equal('v');
    expect(m.peek('k0')).to.equal(undefined);
  });

  it('delete removes from either generation; rotate forgets the older one', () => {
    const m = new TwoGenerationMap<string, number>(4);
    m.set('a', 1);
    m.set('b', 2);
    m.rotate();
    m.set('c', 3);
    m.delete('a');
    m.delete('c');
    expect([m.peek('a'), m.peek('b'), m.peek('c')]).to.deep.equal([undefined, 2, undefined]);
    m.rotate();
    expect(m.peek('b')).to.equal(undefined);
    expect(m.size).to.equal(0);
  });
});
