import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { COMPRESS_MIN_CHARS, decodeValues, encodeValues } from '../../src/store/stored-values.js';

describe('stored record lists (stored-values)', () => {
  const records = (n: number) =>
    Array.from(
      { length: n },
      (_, i) => `${String(i * 1000).padStart(6, '0')},${(1000 + ((i * 7919) % 9000) + i / 7).toFixed(4)}`,
    ).join(';');

  it('deflates a long list into fewer bytes and inflates it back to the same text', () => {
    const text = records(1000);
    const stored = encodeValues(text, 'deflate');
    expect(Buffer.isBuffer(stored)).to.equal(true);
    expect((stored as Buffer).length).to.be.below(text.length / 2);
    expect(decodeValues(stored)).to.equal(text);
  });

  it('keeps short lists, compression none, and lists that deflate would not shrink as the text itself', () => {
    const short = 'a'.repeat(COMPRESS_MIN_CHARS - 1);
    expect(encodeValues(short, 'deflate')).to.equal(short);
    const long = records(1000);
    expect(encodeValues(long, 'none')).to.equal(long);
    // Random bytes: nothing for deflate to use, so its output is longer than its input.
    const noise = randomBytes(4096).toString('latin1');
    expect(encodeValues(noise, 'deflate')).to.equal(noise);
  });

  it('keeps every latin1 char through deflate (bodies are latin1 strings)', () => {
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i))
      .join('')
      .repeat(8);
    const stored = encodeValues(all, 'deflate');
    expect(decodeValues(stored)).to.equal(all);
  });

  it('keeps a list with a char outside latin1 as the text itself (latin1 bytes would lose it)', () => {
    const text = `${records(200)};1,\u20ac`;
    expect(text.length).to.be.above(COMPRESS_MIN_CHARS);
    expect(encodeValues(text, 'deflate')).to.equal(text);
    const latin1 = `${records(200)};1,\u00e9`;
    expect(decodeValues(encodeValues(latin1, 'deflate'))).to.equal(latin1);
  });

  it('a BLOB that does not inflate reads as an empty list (its checksum then fails), not as an exception', () => {
    expect(decodeValues(Buffer.from([0xff, 0xff, 0xff]))).to.equal('');
  });
});
