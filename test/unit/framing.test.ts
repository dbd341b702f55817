import { expect } from 'chai';
import { decodeDatagram } from '../../src/protocol/datagram-decoder.js';
import type { Decoded } from '../../src/protocol/sip-request.js';
import { TcpFramer } from '../../src/protocol/tcp-framer.js';
import { fixture } from '../helpers/fixtures.js';

const limits = { maxHeaderBytes: 8192, maxBodyBytes: 65536 };

function request(d: Decoded) {
  if (d.kind !== 'request') throw new Error(`expected a request, got ${d.kind}: ${JSON.stringify(d)}`);
  return d.request;
}

describe('framing: UDP datagrams', () => {
  it('decodes the seed MESSAGE fixture byte for byte', () => {
    const req = request(decodeDatagram(fixture('wire/seed-message.sip'), limits));
    expect(req.method).to.equal('MESSAGE');
    expect(req.headers.via![0]!.params.branch).to.equal('z9hG4bK776asdhds');
    expect(req.headers.cseq).to.deep.equal({ seq: 314159, method: 'MESSAGE' });
    expect(req.headers['x-ec-seq']).to.equal('7');
    expect(req.body.toString('latin1')).to.equal('00aabbccddef|20160909150505|123456,1234.456;654321,6543.321');
  });

  it('ignores leading CRLFs and understands compact header names', () => {
    const req = request(decodeDatagram(fixture('wire/compact-options.sip'), limits));
    expect(req.method).to.equal('OPTIONS');
    expect(req.headers['call-id']).to.equal('opt-1');
    expect(req.body.length).to.equal(0);
  });

  it('discards bytes after Content-Length (RFC 3261 18.3)', () => {
    const buf = Buffer.concat([fixture('wire/seed-message.sip'), Buffer.from('TRAILING')]);
    expect(request(decodeDatagram(buf, limits)).body.toString()).to.match(/6543\.321$/);
  });

  it('takes the rest of the datagram as body when Content-Length is absent', () => {
    const text = fixture('wire/seed-message.sip')
      .toString('latin1')
      .replace(/Content-Length: 59\r\n/, '');
    expect(request(decodeDatagram(Buffer.from(text, 'latin1'), limits)).body.length).to.equal(59);
  });

  it('rejects a body shorter than Content-Length with 400 naming both sizes', () => {
    const d = decodeDatagram(fixture('wire/seed-message.sip').subarray(0, -6), limits);
    expect(d.kind).to.equal('reject');
    if (d.kind === 'reject')
      expect(d.rejection.error.reason).to.equal('Bad Content-Length: 59 exceeds the 53-byte body');
  });

  it('discards a CRLF keep-alive and leading whitespace in linear time', () => {
    expect(decodeDatagram(Buffer.from('\r\n\r\n'), limits).kind).to.equal('discard');
    const spaces = Buffer.alloc(64_000, 0x20);
    expect(decodeDatagram(spaces, limits).kind).to.equal('discard');
    // Guards against a quadratic scan (the sip package's regex) without depending on the machine's
    // speed: the decoder against itself on 16 times the input (linear: x16, quadratic: x256).
    const fastest = (b: Buffer): number => {
      let best = Infinity;
      for (let i = 0; i < 20; i++) {
        const t = process.hrtime.bigint();
        decodeDatagram(b, limits);
        best = Math.min(best, Number(process.hrtime.bigint() - t));
      }
      return best;
    };
    const ratio = fastest(spaces) / Math.max(1, fastest(spaces.subarray(0, 4_000)));
    expect(ratio, '64,000 vs 4,000 bytes').to.be.below(64);
  });
});

describe('framing: TCP streams', () => {
  const seed = fixture('wire/seed-message.sip');

  it('frames pipelined requests from one chunk, in order', () => {
    const f = new TcpFramer(limits);
    const out = f.push(Buffer.concat([seed, seed, seed]));
    expect(out.close).to.equal(false);
    expect(out.messages.map((m) => m.kind)).to.deep.equal(['request', 'request', 'request']);
    expect(f.buffered).to.equal(0);
  });

  it('frames a request split at every byte', () => {
    const f = new TcpFramer(limits);
    const got: Decoded[] = [];
    for (let i = 0; i < seed.length; i++) got.push(...f.push(seed.subarray(i, i + 1)).messages);
    expect(got).to.have.length(1);
    expect(request(got[0]!).body.toString()).to.equal('00aabbccddef|20160909150505|123456,1234.456;654321,6543.321');
  });

  it('holds at most the limits while waiting, and rejects a head that never ends with 513 + close', () => {
    const f = new TcpFramer(limits);
    const head = seed.toString('latin1').split('\r\n\r\n')[0]!;
    let out = f.push(Buffer.from(head + '\r\n'));
    expect(out.messages).to.have.length(0);
    out = f.push(Buffer.from(`X-Junk: ${'x'.repeat(9000)}`));
    expect(out.close).to.equal(true);
    expect(out.messages[0]!.kind).to.equal('reject');
    if (out.messages[0]!.kind === 'reject') expect(out.messages[0]!.rejection.error.status).to.equal(513);
    expect(f.push(seed).messages, 'nothing more after close').to.have.length(0);
  });

  it('requires Content-Length over TCP (400, then close)', () => {
    const text = seed.toString('latin1').replace(/Content-Length: 59\r\n/, '');
    const out = new TcpFramer(limits).push(Buffer.from(text, 'latin1'));
    expect(out.close).to.equal(true);
    const m = out.messages[0]!;
    expect(m.kind).to.equal('reject');
    if (m.kind === 'reject') {
      expect(m.rejection.error.status).to.equal(400);
      expect(m.rejection.fatal).to.equal(true);
    }
  });
});
