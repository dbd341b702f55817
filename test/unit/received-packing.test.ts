import { expect } from 'chai';
import type { ReceivedBatch } from '../../src/domain/received-batch.js';
import { packReceived, unpackReceived } from '../../src/ingest/received-packing.js';
import { seededRandom } from '../helpers/seeded-random.js';

/** The hand-off to the SQLite writer thread: what is packed must come back field for field. */
describe('received batches packed for the writer thread (unparsed bodies)', () => {
  const random = seededRandom(77);
  const LATIN1 = ['a', '0', '|', ';', ',', '\r', '\n', '\u0000', '\u00e9', '\u00ff', ' '];
  const latin1 = (max: number) => Array.from({ length: random(max + 1) }, () => LATIN1[random(LATIN1.length)]).join('');
  const maybe = (max: number) => (random(3) === 0 ? undefined : latin1(max));
  function received(): ReceivedBatch {
    return {
      body: latin1(500),
      count: maybe(5),
      checksum: maybe(40),
      seq: maybe(16),
      insert_time: 1_700_000_000_000 + random(1_000_000),
    };
  }

  it('round-trips 2,000 of them (any latin1 byte, empty/absent headers) in order, in a buffer of their own', () => {
    const batches = Array.from({ length: 2000 }, received);
    batches.push({ body: '', count: '', checksum: undefined, seq: '', insert_time: 0 });
    const packed = packReceived(batches);
    // Transferable: the buffer is the whole ArrayBuffer, not a slice of Node's shared pool.
    expect(packed.byteOffset).to.equal(0);
    expect(packed.buffer.byteLength).to.equal(packed.length);
    expect(unpackReceived(packed)).to.deep.equal(batches);
  });

  it('packs nothing to nothing', () => {
    expect(unpackReceived(packReceived([]))).to.deep.equal([]);
  });

  it('refuses bytes it did not write, naming where', () => {
    const good = packReceived([received()]);
    expect(() => unpackReceived(good.subarray(0, good.length - 3))).to.throw(/packed received batches: truncated/);
    const lying = Buffer.from(good);
    lying.writeUInt32LE(1 << 30, 0);
    expect(() => unpackReceived(lying)).to.throw(/overruns/);
  });
});
