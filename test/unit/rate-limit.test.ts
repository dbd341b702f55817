import { expect } from 'chai';
import { RateLimit } from '../../src/protocol/rate-limit.js';

describe('rate limit per key (token bucket: per source address, per device)', () => {
  it('lets a burst through, then one request per 1/rate seconds', () => {
    let now = 0;
    const limit = new RateLimit(10, 5, 100, () => now);
    const taken = Array.from({ length: 8 }, () => limit.take('10.0.0.1'));
    expect(taken).to.deep.equal([true, true, true, true, true, false, false, false]);
    now = 99; // 0.99 tokens refilled
    expect(limit.take('10.0.0.1')).to.equal(false);
    now = 200; // 2 tokens since the refused attempts (they cost nothing)
    expect([limit.take('10.0.0.1'), limit.take('10.0.0.1'), limit.take('10.0.0.1')]).to.deep.equal([true, true, false]);
    expect(limit.refused).to.equal(5);
    now = 60_000; // refilled up to the burst, not beyond
    expect(Array.from({ length: 6 }, () => limit.take('10.0.0.1')).filter(Boolean)).to.have.length(5);
  });

  it('keeps a bucket per address', () => {
    const limit = new RateLimit(1, 1, 100, () => 0);
    expect(limit.take('a')).to.equal(true);
    expect(limit.take('a')).to.equal(false);
    expect(limit.take('b')).to.equal(true);
  });

  // The bound on addresses itself: two-generation-map.test.ts.
  it('under a stream of spoofed addresses, an address that keeps sending keeps its (empty) bucket', () => {
    const limit = new RateLimit(1, 1, 1000, () => 0);
    limit.take('busy');
    for (let i = 0; i < 50_000; i++) {
      limit.take(`spoofed-${i}`);
      if (i % 100 === 0) expect(limit.take('busy')).to.equal(false);
    }
  });
});
