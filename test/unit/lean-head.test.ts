import { expect } from 'chai';
import sip, { type Message } from 'sip';
import { parseHeadGeneral } from '../../src/protocol/general-head.js';
import { parseHeadLean } from '../../src/protocol/lean-head.js';
import type { SipRequest } from '../../src/protocol/sip-request.js';
import { SERVER_HEADER, serializeResponse, type ResponseSpec, type Source } from '../../src/protocol/sip-response.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { fixture } from '../helpers/fixtures.js';

/**
 * The fast paths of the receive loop must be invisible: for every head the lean parser takes, it
 * returns exactly what `sip.parse` returns, and our response serializer writes exactly the bytes
 * `sip.stringify(sip.makeResponse(...))` wrote. Checked on hand-picked heads and on seeded
 * mutations of them (which mostly fall back to the slow path, but must never disagree with it).
 */

function headOf(raw: string): string {
  const text = raw.replace(/^(?:\r\n)+/, ''); // framing skips leading CRLFs
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? text : text.slice(0, end);
}

/** The reference: how responses were serialized with the `sip` package before serializeResponse. */
function serializeResponseWithSip(req: SipRequest, spec: ResponseSpec, toTag: string, source: Source): Buffer {
  const via = (req.headers.via ?? []).slice();
  const top = via[0];
  if (top) {
    const params = { ...top.params };
    if (top.host !== source.address) params.received = source.address;
    if ('rport' in params) params.rport = String(source.port);
    via[0] = { ...top, params };
  }
  const to = req.headers.to;
  const response = sip.makeResponse(req.message, spec.status, spec.reason, {
    headers: { Server: SERVER_HEADER, ...spec.headers },
  });
  response.version = '2.0';
  response.headers.via = via;
  if (to) {
    response.headers.to = to.params?.tag ? to : { ...to, params: { ...to.params, tag: toTag } };
  }
  return Buffer.from(sip.stringify(response), 'latin1');
}

const crlf = (lines: string[]) => lines.join('\r\n');

function withoutAuthorization(m: Message): Message {
  const { authorization: _ignored, ...headers } = m.headers;
  return { ...m, headers };
}

/** The reference parser (the `sip` package's), used here only: the server never hands it wire input. */
function parseHeadWithSip(head: string): Message | undefined {
  try {
    return sip.parse(head + '\r\n\r\n');
  } catch {
    return undefined;
  }
}

const SEEDS: string[] = [
  headOf(fixture('wire/seed-message.sip').toString('latin1')),
  headOf(fixture('wire/compact-options.sip').toString('latin1')),
  // What sipp sends in the benchmarks.
  crlf([
    'MESSAGE sip:ec@127.0.0.1:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1234-1-0',
    'From: <sip:meter@127.0.0.1:5061>;tag=1',
    'To: <sip:ec@127.0.0.1:5060>',
    'Call-ID: 1-1234@127.0.0.1',
    'CSeq: 1 MESSAGE',
    'Max-Forwards: 70',
    'Content-Type: text/plain',
    'X-EC-Count: 10',
    'X-EC-Checksum: ab90a997479da932469569d41cf6260b',
    'X-EC-Seq: 1',
    'Content-Length: 200',
  ]),
  // Display names, a To-tag, rport with a value, received, a bare AOR, Contact, Require.
  crlf([
    'MESSAGE sips:ec@example.org SIP/2.0',
    'via: SIP/2.0/TCP meter-7.example.org:5070;received=10.0.0.9;rport=5070;BRANCH=z9hG4bKAbC;lr',
    'From: "Meter 7" <sip:m7@example.org>;tag=a;x=y',
    'To: Energy Server <sip:ec@example.org>;tag=srv1',
    'Contact: <sip:m7@10.0.0.9:5070;transport=tcp>',
    'Call-ID: x@y',
    'CSeq: 0002 MESSAGE',
    'Require: 100rel',
    'Content-Type: text/plain; charset=us-ascii',
    'l: 12',
  ]),
  crlf([
    'OPTIONS sip:ec@10.1.1.1 SIP/2.0',
    'Via: SIP/2.0/UDP 10.1.1.2',
    'From: sip:probe@10.1.1.2;tag=9',
    'To: sip:ec@10.1.1.1',
    'Contact: *',
    'Call-ID: opt',
    'CSeq: 5 OPTIONS',
    'To-Be-Ignored:',
  ]),
  crlf([
    'MESSAGE sip:ec@h SIP/2.0',
    'Via: SIP/2.0/UDP h2:0;branch=z9hG4bKq',
    'From: <sip:a@h2>;tag',
    'To: <sip:ec@h>;tag',
    'Call-ID: c',
    'CSeq: 1 MESSAGE',
  ]),
];

const TOKENS = [
  ';',
  '=',
  '"',
  '<',
  '>',
  ',',
  ' ',
  '\t',
  ':',
  '\r\n',
  '\r\n ',
  'tag',
  ';tag=',
  'rport',
  '@',
  '%41',
  '\\',
  '\u00a0',
  '\r',
  '\n',
  '\u000b',
  '\u2000',
  'SIP/2.0/',
  '\r\nVia: SIP/2.0/UDP b;branch=z9hG4bKx',
  '\r\nConstructor: x',
  '\r\nTo: <sip:t>',
];

describe('lean head parser and response serializer (differential, against the sip package)', function () {
  this.timeout(60_000);
  const random = seededRandom(424242);
  function mutate(s: string): string {
    let out = s;
    for (let i = 0, edits = 1 + random(3); i < edits; i++) {
      const at = random(out.length + 1);
      switch (random(3)) {
        case 0:
          out = out.slice(0, at) + TOKENS[random(TOKENS.length)] + out.slice(at);
          break;
        case 1:
          out = out.slice(0, at) + out.slice(at + 1 + random(8));
          break;
        default:
          out = out.slice(0, at) + String.fromCharCode(32 + random(95)) + out.slice(at + 1);
      }
    }
    return out;
  }

  const specs: ResponseSpec[] = [
    { status: 200, reason: 'OK' },
    { status: 405, reason: 'Method Not Allowed', headers: { Allow: 'MESSAGE, OPTIONS' } },
    { status: 503, reason: 'Service Unavailable', headers: { 'Retry-After': '5' } },
  ];
  const sources = [
    { address: '127.0.0.1', port: 5061 },
    { address: '10.0.0.9', port: 5070 },
  ];

  function asRequest(m: Message): SipRequest {
    return {
      method: m.method!,
      uri: m.uri ?? '',
      version: m.version,
      headers: m.headers,
      message: m,
      body: Buffer.alloc(0),
    };
  }

  function check(head: string): 'lean' | 'slow' | 'none' {
    const slow = parseHeadWithSip(head);
    const lean = parseHeadLean(head);
    if (lean !== undefined) {
      expect(slow, `sip.parse refused what the lean parser took:\n${head}`).to.not.equal(undefined);
      // Authorization is kept as text by our parsers (the authenticator reads it), parsed by `sip`.
      expect(withoutAuthorization(lean), head).to.deep.equal(withoutAuthorization(slow!));
      // The general parser agrees with the lean one wherever the lean one answers.
      const general = parseHeadGeneral(head);
      expect(general?.problem, JSON.stringify(head)).to.equal(undefined);
      expect(general?.message, head).to.deep.equal(lean);
    }
    if (slow?.method && Array.isArray(slow.headers.via) && slow.headers.via[0]?.host) {
      for (const spec of specs) {
        for (const source of sources) {
          const ours = serializeResponse(asRequest(slow), spec, 'tag1', source).toString('latin1');
          const theirs = serializeResponseWithSip(asRequest(slow), spec, 'tag1', source).toString('latin1');
          expect(ours, head).to.equal(theirs);
        }
      }
    }
    return lean !== undefined ? 'lean' : slow ? 'slow' : 'none';
  }

  it('takes every plain seed head, with the same result as sip.parse', () => {
    for (const head of SEEDS) expect(check(head), head).to.equal('lean');
  });

  it('20,000 mutated heads: never disagrees with sip.parse, and serializes byte for byte alike', () => {
    const seen = { lean: 0, slow: 0, none: 0 };
    for (let i = 0; i < 20_000; i++) seen[check(mutate(SEEDS[random(SEEDS.length)]!))]++;
    // The mutations reach both paths and the refusals (else this test would prove little).
    expect(seen.lean).to.be.greaterThan(2_000);
    expect(seen.slow).to.be.greaterThan(2_000);
    expect(seen.none).to.be.greaterThan(100);
  });

  it('leaves folded lines, repeated headers and several Vias to sip.parse', () => {
    const base = SEEDS[0]!;
    expect(parseHeadLean(base.replace('\r\nMax-Forwards: 70', '\r\n  folded'))).to.equal(undefined);
    expect(parseHeadLean(`${base}\r\nMax-Forwards: 69`)).to.equal(undefined);
    expect(parseHeadLean(`${base}\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bKp`)).to.equal(undefined);
    expect(parseHeadLean(`${base}\r\n__proto__: x`)).to.equal(undefined);
  });
});
