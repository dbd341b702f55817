import { createHash } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { recordsChecksumWithStats } from '../../src/domain/batch.js';
import { parseBatchBody } from '../../src/domain/batch-body.js';
import { readRecords, valueStats, type ValueStats } from '../../src/domain/value-stats.js';
import { BatchStage } from '../../src/ingest/batch-stage.js';
import { makeBatch, receivedOf } from '../helpers/batches.js';

/**
 * The records as the definition reads them, with split and Number() on each value: a record is digits
 * (its µs offset), a comma and a value; anything else is skipped.
 */
function directRecords(records: string): [number, number][] {
  if (records === '') return [];
  const out: [number, number][] = [];
  for (const part of records.split(';')) {
    const m = /^(\d+),(.*)$/s.exec(part);
    if (!m) continue;
    const us = [...m[1]!].reduce((a, d) => a * 10 + Number(d), 0);
    out.push([us, Number(m[2])]);
  }
  return out;
}

function directStats(records: string): ValueStats {
  const s: ValueStats = { count: 0, sum: 0, min: NaN, max: NaN, max_us: 0 };
  for (const [us, v] of directRecords(records)) {
    if (s.count === 0 || v < s.min) s.min = v;
    if (s.count === 0 || v > s.max) [s.max, s.max_us] = [v, us];
    s.sum += v;
    s.count++;
  }
  return s;
}

const md5OfDefinition = (records: string) => createHash('md5').update(records.replaceAll(';', '\n')).digest('hex');

const digits = (min: number, max: number) =>
  fc.array(fc.constantFrom(...'0123456789'), { minLength: min, maxLength: max }).map((d) => d.join(''));

/** Values as the body grammar accepts them, and then some: long mantissas, long fractions, exponents. */
const value = fc.oneof(
  fc
    .tuple(fc.constantFrom('', '-', '+'), digits(1, 20), fc.constantFrom('', '.'), digits(0, 25))
    .map((p) => p.join('')),
  fc.tuple(fc.constantFrom('', '-'), digits(0, 3), fc.constant('.'), digits(1, 4)).map((p) => p.join('')),
  fc.double({ noNaN: true }).map(String),
  fc.tuple(digits(1, 4), fc.constantFrom('e', 'E', 'e-', 'e+'), digits(1, 3)).map((p) => p.join('')),
  fc.constantFrom('0', '-0', '+0', '0.0', '1.', '.5', '999999999999999', '9999999999999999', '0.30000000000000004'),
);
const record = fc.tuple(digits(1, 6), value).map(([us, v]) => `${us},${v}`);
const recordList = fc.array(record, { minLength: 1, maxLength: 60 }).map((r) => r.join(';'));
/** Anything over the grammar's alphabet: damaged records, empty values, stray separators. */
const anyText = fc.array(fc.constantFrom(...'0123456789,;.-+eE x\n'), { maxLength: 80 }).map((c) => c.join(''));

describe('value statistics of a record list (ingest-time aggregates, raw reads)', () => {
  it('the fused byte scan, the string scan and the definition agree on every record list (property)', () => {
    fc.assert(
      fc.property(fc.oneof(recordList, anyText), (records) => {
        const want = directStats(records);
        const fused = recordsChecksumWithStats(records);
        expect(fused.stats).to.deep.equal(want); // deep-eql: NaN equals NaN, -0 differs from +0
        expect(fused.checksum).to.equal(md5OfDefinition(records));
        expect(valueStats(records)).to.deep.equal(want);
        const columns = { us: [] as number[], value: [] as number[] };
        expect(readRecords(records, columns)).to.deep.equal(want);
        expect(columns.us.map((us, k) => [us, columns.value[k]])).to.deep.equal(directRecords(records));
      }),
      { numRuns: 3000 },
    );
  });

  it('edge cases: no record, empty and odd values, Number() beyond 15 digits, -0', () => {
    const cases: [string, Partial<ValueStats>][] = [
      ['', { count: 0, sum: 0, min: NaN, max: NaN, max_us: 0 }],
      ['5,', { count: 1, sum: 0, min: 0, max: 0, max_us: 5 }],
      ['5,.', { count: 1, min: NaN, max: NaN }],
      ['1,-0', { count: 1, sum: 0, min: -0, max: -0, max_us: 1 }], // 0 + -0 is +0
      ['1,1e3;2,-2.5E-1', { count: 2, sum: 999.75, min: -0.25, max: 1000, max_us: 1 }],
      ['7,12345678901234567890', { count: 1, max: Number('12345678901234567890') }],
      ['7,0.1000000000000000000000001', { count: 1, max: Number('0.1000000000000000000000001') }],
      ['1,3;2,3;x,9;3,1', { count: 3, sum: 7, min: 1, max: 3, max_us: 1 }],
      // U+0131's low byte is '1', U+013B's is ';': neither may pass for one
      ['\u0131,1;2,\u01312;3,4\u013B5,6', { count: 2, min: NaN, max: NaN, max_us: 2 }],
    ];
    for (const [records, want] of cases) {
      const got = recordsChecksumWithStats(records).stats;
      for (const [k, v] of Object.entries(want))
        expect(Object.is(got[k as keyof ValueStats], v), `${records} ${k}`).to.equal(true);
      expect(got, records).to.deep.equal(valueStats(records));
      expect(got, records).to.deep.equal(directStats(records));
    }
  });

  it('reads nothing past the list: bytes a longer list left in the scratch buffer do not count', () => {
    expect(recordsChecksumWithStats('1,12345678;2,1234567890123').stats.count).to.equal(2);
    expect(recordsChecksumWithStats('1,1').stats).to.deep.equal({ count: 1, sum: 1, min: 1, max: 1, max_us: 1 });
    expect(recordsChecksumWithStats('1,1;2,').stats).to.deep.equal({ count: 2, sum: 1, min: 0, max: 1, max_us: 1 });
    expect(recordsChecksumWithStats('12').stats.count).to.equal(0);
  });

  it('parseBatchBody computes them only when asked (storage.aggregates), with the same checksum', () => {
    const body = 'd|20260101000000|5,1.5;10,-2;20,1.5';
    const plain = parseBatchBody(body);
    expect(plain).to.not.have.property('values_stats');
    const withStats = parseBatchBody(body, { stats: true });
    expect(withStats.values_checksum).to.equal(plain.values_checksum);
    expect(withStats.values_stats).to.deep.equal({ count: 3, sum: 1, min: -2, max: 1.5, max_us: 5 });
  });

  it('the batch stage hands each batch to the store with its statistics, and none with aggregates off', () => {
    const received = [receivedOf(makeBatch('s', 1_700_000_000, 5, 0, 3)), receivedOf(makeBatch('s', 1_700_000_001))];
    const on = new BatchStage().run(received).batches;
    expect(on.map((b) => b.values_stats)).to.deep.equal(on.map((b) => directStats(b.ec_consumption_values)));
    const off = new BatchStage({ aggregates: false }).run(received).batches;
    expect(off.map((b) => b.values_stats)).to.deep.equal([undefined, undefined]);
  });
});
