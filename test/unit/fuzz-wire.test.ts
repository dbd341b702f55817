import { expect } from 'chai';
import { MAX_MS_PER_INPUT, outcomes, slowest, TARGETS } from '../fuzz/wire-fuzz.js';

/**
 * A short run of the property-based fuzzer (`npm run fuzz` runs a million inputs): every wire
 * parser ends in a typed outcome, within MAX_MS_PER_INPUT per input. A fixed seed keeps the run
 * reproducible; the script draws a new one each time and prints it.
 */
describe('property-based fuzzing of the wire parsers (fast-check)', function () {
  this.timeout(120_000);
  for (const [name, run] of Object.entries(TARGETS)) {
    it(`${name}: 3,000 inputs, typed outcomes, each under ${MAX_MS_PER_INPUT} ms`, () => {
      run(3000, 20261203);
      expect(slowest[name], 'the target ran').to.be.a('number');
    });
  }

  it('reaches every decoding outcome (requests, rejections with a status, discards)', () => {
    expect(outcomes.request).to.be.greaterThan(100);
    expect(outcomes.reject).to.be.greaterThan(100);
    expect(outcomes.discard).to.be.greaterThan(100);
  });
});
