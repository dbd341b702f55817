import { expect } from 'chai';
import type { Batch } from '../../src/domain/batch.js';
import type { ReceivedBatch } from '../../src/domain/received-batch.js';
import {
  ROW_COLUMNS,
  packBatches,
  packReceived,
  rowOf,
  unpackBatches,
  unpackReceived,
  type BatchRow,
} from '../../src/store/batch-rows.js';
import { seededRandom } from '../helpers/seeded-random.js';

/** The hand-off to the SQLite writer thread: what is packed must come back field for field. */
describe('batch rows (packing for the writer thread)', () => {
  const random = seededRandom(77);
  const ALPHABET = ['a', '0', '9', ':', '|', ';', ',', '\n', '\u00e9', '\u20ac', '\ud83d\ude00', ''];
  const text = (max: number) =>
    Array.from({ length: random(max + 1) }, () => ALPHABET[random(ALPHABET.length)]).join('');

  function batch(): Batch {
    return {
      device_id: text(20),
      ec_date: text(8),
      ec_time: text(6),
      start_us: text(6),
      end_us: text(6),
      ec_consumption_values: text(300),
      values_count: random(100_000),
      values_checksum: text(32),
      batch_seq: random(3) === 0 ? null : random(2 ** 31) * 1000 + 7,
      insert_time: 1_700_000_000_000 + random(1_000_000),
    };
  }

  const asRow = (b: Batch): BatchRow => ROW_COLUMNS.map((c) => b[c]) as BatchRow;

  it('round-trips 2,000 batches of arbitrary text (separators, digits, non-ASCII) in order', () => {
    const batches = Array.from({ length: 2000 }, batch);
    const rows: BatchRow[] = [];
    unpackBatches(packBatches(batches), (r) => rows.push(r));
    expect(rows).to.deep.equal(batches.map(asRow));
  });

  it('packs nothing to nothing', () => {
    const rows: BatchRow[] = [];
    unpackBatches(packBatches([]), (r) => rows.push(r));
    expect(rows).to.deep.equal([]);
  });

  it('refuses text it did not write, naming where', () => {
    const good = packBatches([batch()]);
    expect(() => unpackBatches(good.slice(0, -3), () => {})).to.throw(/packed batches: bad/);
    expect(() => unpackBatches(`x${good}`, () => {})).to.throw(/packed batches: bad text field at 0/);
    expect(() => unpackBatches('999:abc', () => {})).to.throw(/packed batches: bad text field at 0/);
  });

  it('rowOf puts a batch in ROW_COLUMNS order', () => {
    const b = batch();
    expect(rowOf(b)).to.deep.equal(asRow(b));
  });

  describe('received batches (unparsed bodies for the writer thread)', () => {
    const LATIN1 = ['a', '0', '|', ';', ',', '\r', '\n', '\u0000', '\u00e9', '\u00ff', ' '];
    const latin1 = (max: number) =>
      Array.from({ length: random(max + 1) }, () => LATIN1[random(LATIN1.length)]).join('');
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
});
