import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SipRequestError } from '../../src/errors.js';
import { parseBatchBody } from '../../src/domain/batch-body.js';

/** The vectors of docs/protocol.md; change both together. */
describe('batch body (seed text format)', () => {
  it('derives the stored fields of the documented example', () => {
    const b = parseBatchBody('00aabbccddef|20160909150505|123456,1234.456;654321,6543.321');
    expect(b).to.deep.equal({
      device_id: '00aabbccddef',
      ec_date: '20160909',
      ec_time: '150505',
      start_us: '123456',
      end_us: '654321',
      ec_consumption_values: '123456,1234.456;654321,6543.321',
      values_count: 2,
      values_checksum: '139b705c929153ba14963f995e9c4f63', // md5("123456,1234.456\n654321,6543.321")
    });
  });

  it('pads offsets to 6 digits, keeps records exactly as sent', () => {
    const b = parseBatchBody('m-1|20240229235959|5,-1.5e3;070,+.25;999999,0');
    expect(b.start_us).to.equal('000005');
    expect(b.end_us).to.equal('999999');
    expect(b.ec_consumption_values).to.equal('5,-1.5e3;070,+.25;999999,0');
    expect(b.values_count).to.equal(3);
    expect(b.values_checksum).to.equal('0e3326f1dc18781b91a011182abe71ce'); // md5 of the records joined with \n
  });

  it('tolerates a trailing ";" and a trailing line break, which do not enter the checksum', () => {
    const plain = parseBatchBody('d|20160909150505|1,2;3,4');
    for (const variant of [
      'd|20160909150505|1,2;3,4;',
      'd|20160909150505|1,2;3,4\n',
      'd|20160909150505|1,2;3,4;\r\n',
    ]) {
      expect(parseBatchBody(variant)).to.deep.equal(plain);
    }
  });

  const bad: [string, string, RegExp][] = [
    ['', 'EC_BODY_EMPTY', /Empty body/],
    ['d|20160909150505', 'EC_BODY_BAD_FORMAT', /device\|YYYYMMDDhhmmss\|records/],
    ['d|20160909150505|1,2|x', 'EC_BODY_BAD_FORMAT', /records/],
    ['|20160909150505|1,2', 'EC_BODY_BAD_DEVICE', /device id/],
    ['a/b|20160909150505|1,2', 'EC_BODY_BAD_DEVICE', /"a\/b"/],
    ['d|20160931120000|1,2', 'EC_BODY_BAD_TIMESTAMP', /20160931120000/],
    ['d|20160909240000|1,2', 'EC_BODY_BAD_TIMESTAMP', /timestamp/],
    ['d|2016090915050|1,2', 'EC_BODY_BAD_TIMESTAMP', /timestamp/],
    ['d|20160909150505|', 'EC_BODY_BAD_RECORD', /no records/],
    ['d|20160909150505|1,2;;3,4', 'EC_BODY_BAD_RECORD', /record 2 ""/],
    ['d|20160909150505|1234567,2', 'EC_BODY_BAD_RECORD', /record 1/],
    ['d|20160909150505|1,2,3', 'EC_BODY_BAD_RECORD', /record 1 "1,2,3"/],
    ['d|20160909150505|1,abc', 'EC_BODY_BAD_RECORD', /record 1/],
    ['d|20160909150505|1,1e', 'EC_BODY_BAD_RECORD', /record 1/],
    ['d|20160909150505| 1,2', 'EC_BODY_BAD_RECORD', /record 1/],
  ];
  for (const [body, code, reason] of bad) {
    it(`rejects ${JSON.stringify(body)} with ${code}`, () => {
      let err: unknown;
      try {
        parseBatchBody(body);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(SipRequestError);
      expect((err as SipRequestError).code).to.equal(code);
      expect((err as SipRequestError).status).to.equal(400);
      expect((err as SipRequestError).reason).to.match(reason);
    });
  }

  it('rejects a value of a million digits at once (the record grammar is linear, not quadratic)', function () {
    // With the former pattern this one call took minutes (40,000 digits: 2.7 s, growing with the
    // square); mocha reports the test as failed when it overruns the timeout.
    this.timeout(2_000);
    const body = `d1|20240101000000|1,2;3,${'9'.repeat(1_000_000)}x`;
    expect(() => parseBatchBody(body)).to.throw(SipRequestError, /record 2 "3,9999/);
  });

  it('counts, first and last offsets are right for 1000 records', () => {
    const records = Array.from({ length: 1000 }, (_, i) => `${i * 1000},${i}.5`).join(';');
    const b = parseBatchBody(`d1|20240101000000|${records};`);
    expect(b.values_count).to.equal(1000);
    expect(b.start_us).to.equal('000000');
    expect(b.end_us).to.equal('999000');
    expect(b.ec_consumption_values).to.equal(records);
  });

  it('a device id does not keep its body alive (V8 slices of >= 13 chars are views into the parent)', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const kept: string[] = [];
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200; i++) {
      // 200 distinct 100-kB bodies; only the device ids are kept, as the sequence tracker does.
      const device = `meter-with-a-long-id-${String(i).padStart(5, '0')}`;
      const body = `${device}|20240101000000|${`${i % 10},1;`.repeat(25_000)}9,9`;
      kept.push(parseBatchBody(body).device_id);
    }
    gc();
    const retainedMb = (process.memoryUsage().heapUsed - before) / 1e6;
    expect(kept).to.have.length(200);
    expect(retainedMb, `${retainedMb.toFixed(1)} MB retained by 200 device ids`).to.be.below(5);
  });
});
