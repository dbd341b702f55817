import { expect } from 'chai';
import { parseBatchBody } from '../../src/domain/batch-body.js';
import { decodeDatagram } from '../../src/protocol/datagram-decoder.js';
import { SipDiscard, SipRequestError } from '../../src/errors.js';
import { TcpFramer } from '../../src/protocol/tcp-framer.js';
import { RejectedRequest } from '../../src/protocol/sip-request.js';
import { validateRequest } from '../../src/protocol/validate-request.js';
import { fixture } from '../helpers/fixtures.js';
import { seededRandom } from '../helpers/seeded-random.js';

/**
 * Mutation fuzzing of the wire path with a fixed seed: whatever the bytes, decoding, validation
 * and body parsing either succeed or fail with one of our typed errors; nothing else escapes.
 */
describe('fuzzing the SIP wire path (seeded mutations)', function () {
  this.timeout(60_000);
  const random = seededRandom(20261123);
  const seedMessage = fixture('wire/seed-message.sip');
  const tokens = [
    '\r\n',
    '\r\n\r\n',
    ':',
    ';',
    ',',
    '|',
    ' ',
    '\t',
    'Content-Length: 99999\r\n',
    'Via: SIP/2.0/UDP x;branch=',
    '\u0000',
    '\u00ff',
    '9'.repeat(20),
  ];

  function mutate(buf: Buffer): Buffer {
    const b = Buffer.from(buf);
    const edits = 1 + random(6);
    let out = b;
    for (let i = 0; i < edits; i++) {
      const at = random(out.length + 1);
      switch (random(4)) {
        case 0:
          out[Math.min(at, out.length - 1)] = random(256);
          break;
        case 1:
          out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + random(40)))]);
          break;
        case 2:
          out = Buffer.concat([
            out.subarray(0, at),
            Buffer.from(tokens[random(tokens.length)]!, 'latin1'),
            out.subarray(at),
          ]);
          break;
        default:
          out = Buffer.concat([out.subarray(0, at), out.subarray(random(out.length))]);
      }
    }
    return out;
  }

  const expected = (e: unknown) =>
    e instanceof SipRequestError || e instanceof SipDiscard || e instanceof RejectedRequest;

  it('5,000 mutated datagrams and streams: only typed outcomes', () => {
    const limits = { maxHeaderBytes: 8192, maxBodyBytes: 65536 };
    const kinds = { request: 0, reject: 0, discard: 0 };
    for (let i = 0; i < 5000; i++) {
      const data = mutate(seedMessage);
      const d = decodeDatagram(data, limits);
      kinds[d.kind]++;
      if (d.kind === 'request') {
        try {
          validateRequest(d.request);
          parseBatchBody(d.request.body.toString('latin1'));
        } catch (e) {
          expect(expected(e), String(e)).to.equal(true);
        }
      }
      const framer = new TcpFramer(limits);
      const cut = random(data.length);
      framer.push(data.subarray(0, cut));
      framer.push(data.subarray(cut));
    }
    // The mutations exercise every outcome.
    expect(kinds.request).to.be.greaterThan(100);
    expect(kinds.reject).to.be.greaterThan(100);
    expect(kinds.discard).to.be.greaterThan(100);
  });
});
