import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { recordsChecksum } from '../../src/domain/batch.js';

/** The definition (docs/protocol.md): lowercase hex MD5 of the records joined with \n, as UTF-8. */
const reference = (s: string) => createHash('md5').update(s.split(';').join('\n'), 'utf8').digest('hex');

describe('records checksum', () => {
  it('equals the definition for the vectors, long batches, and non-ASCII input', () => {
    const records = Array.from({ length: 5000 }, (_, i) => `${i * 199},${(i * 1.7).toFixed(3)}`).join(';'); // > 64 kB
    const cases = [
      '123456,1234.456;654321,6543.321',
      '1,2',
      ';;',
      '',
      records,
      'a;\u00e9;\u20ac;x',
      records.slice(0, 100),
    ];
    for (const s of cases) expect(recordsChecksum(s), JSON.stringify(s.slice(0, 30))).to.equal(reference(s));
    // A long one first, then a short one: nothing of the first may leak into the second.
    expect(recordsChecksum('1,1')).to.equal(reference('1,1'));
    expect(recordsChecksum('123456,1234.456;654321,6543.321')).to.equal('139b705c929153ba14963f995e9c4f63');
  });
});
