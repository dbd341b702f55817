import { expect } from 'chai';
import type { Batch } from '../../src/domain/batch.js';
import { ROW_COLUMNS, packBatches, unpackBatches, type BatchRow } from '../../src/store/batch-rows.js';
import { seededRandom } from '../helpers/seeded-random.js';

/** The hand-off to the SQLite writer thread: what is packed must come back field for field. */
describe('batch rows (packing for the writer thread)', () => {
  const random = seededRandom(77);
  const ALPHABET = ['a', '0', '9', ':', '|', ';', ',', '\n', '\u00e9', '\u20ac', '\ud83d\ude00', ''];
  const text = (max: number) => Array.from({ length: random(max + 1) }, () => ALPHABET[random(ALPHABET.length)]).join('');

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
});
