import { expect } from 'chai';
import type { Batch } from '../../src/domain/batch.js';
import { ROW_COLUMNS, rowOf, type BatchRow } from '../../src/store/batch-rows.js';
import { seededRandom } from '../helpers/seeded-random.js';

describe('batch rows (positional, for the SQLite upsert)', () => {
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

  it('rowOf puts a batch in ROW_COLUMNS order', () => {
    const b = batch();
    expect(rowOf(b)).to.deep.equal(asRow(b));
  });
});
