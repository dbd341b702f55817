import { expect } from 'chai';
import sip from 'sip';
import { parseHeadGeneral } from '../../src/protocol/general-head.js';
import { parseHead, RejectedRequest } from '../../src/protocol/sip-request.js';
import { SipDiscard } from '../../src/errors.js';
import { PATHOLOGICAL_HEADS } from '../helpers/pathological-heads.js';
import { expectLinear } from '../helpers/linearity.js';

const crlf = (lines: string[]) => lines.join('\r\n');
const BASE = [
  'MESSAGE sip:ec@127.0.0.1:5060 SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1',
  'From: <sip:meter@127.0.0.1:5061>;tag=1',
  'To: <sip:ec@127.0.0.1:5060>',
  'Call-ID: 1-1234@127.0.0.1',
  'CSeq: 1 MESSAGE',
  'Content-Type: text/plain',
];

/** Replaces the line starting with `name:` (or adds it). */
function withLine(name: string, line: string | string[]): string {
  const lines = BASE.filter((l) => !l.startsWith(`${name}:`));
  return crlf([...lines, ...(Array.isArray(line) ? line : [line])]);
}

/** What the response serializer and the transaction layer read, for comparisons with `sip.parse`. */
function essentials(m: sip.Message) {
  const aor = (a?: sip.Aor) => a && { name: a.name, uri: a.uri, params: a.params };
  return {
    method: m.method,
    uri: m.uri,
    version: m.version,
    via: m.headers.via?.map((v) => ({ host: v.host, port: v.port, protocol: v.protocol, params: v.params })),
    from: aor(m.headers.from),
    to: aor(m.headers.to),
    callId: m.headers['call-id'],
    cseq: m.headers.cseq,
  };
}

describe('general head parser (linear, for every head the lean parser declines)', () => {
  const unusual: [string, string][] = [
    ['folded header line', withLine('Content-Type', ['Content-Type:', '  text/plain'])],
    ['two Via lines', withLine('Via', ['Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp', BASE[1]!])],
    ['comma-separated Vias', withLine('Via', 'Via: SIP/2.0/UDP a.example;branch=z9hG4bKa, SIP/2.0/TCP b:5070;rport')],
    ['quoted display name with escapes', withLine('From', 'From: "Meter \\"7\\", hall" <sip:m7@h>;tag=9')],
    ['display name of tokens', withLine('From', 'From: Meter Seven <sip:m7@h>;tag=9')],
    ['bare AOR with params', withLine('From', 'From: sip:m7@h;tag=9')],
    ['whitespace around Via separators', withLine('Via', 'Via: SIP / 2.0 / UDP 127.0.0.1 ;branch=z9hG4bKs')],
    ['quoted param value', withLine('To', 'To: <sip:ec@h>;x="a b"')],
    ['compact names', crlf(BASE.map((l) => l.replace(/^Via:/, 'v:').replace(/^From:/, 'f:')))],
    ['repeated generic header', withLine('Supported', ['Supported: a', 'Supported: b'])],
  ];

  for (const [name, head] of unusual) {
    it(`parses ${name} as sip.parse reads it, with no problem`, () => {
      const ours = parseHeadGeneral(head);
      expect(ours?.problem, head).to.equal(undefined);
      expect(essentials(ours!.message)).to.deep.equal(essentials(sip.parse(head + '\r\n\r\n')!));
    });
  }

  it('reads a folded value as one line and repeated generic headers as a list', () => {
    const folded = parseHeadGeneral(withLine('Subject', ['Subject: a', '\tb', '  c']))!;
    expect(folded.message.headers.subject).to.equal('a b c');
    const repeated = withLine('Supported', ['Supported: a', 'Supported: b']);
    expect(parseHeadGeneral(repeated)!.message.headers.supported).to.equal('a,b');
  });

  const problems: [string, string, RegExp][] = [
    ['"<" then whitespace in From', withLine('From', `From: <${' '.repeat(2000)}`), /^From: "<" without ">"/],
    ['whitespace inside <...>', withLine('To', 'To: <sip:ec@h >'), /^To: whitespace inside/],
    ['a repeated To', withLine('To', ['To: <sip:a@h>', 'To: <sip:b@h>']), /^To: header repeated/],
    ['a repeated CSeq', withLine('CSeq', ['CSeq: 1 MESSAGE', 'CSeq: 2 MESSAGE']), /^CSeq: header repeated/],
    ['a bare LF inside Require', withLine('Require', 'Require: a\nInjected: yes'), /CR or LF/],
    ['a bare CR inside a value', withLine('Subject', 'Subject: a\rb'), /CR or LF/],
    ['a line without colon', withLine('X', 'NoColonHere'), /not "name: value"/],
    ['a bad CSeq', withLine('CSeq', 'CSeq: one MESSAGE'), /^CSeq: expected "number METHOD"/],
    ['junk after an address', withLine('From', 'From: <sip:a@h>;tag=1 junk'), /^From: unexpected "j"/],
    ['a Via without transport', withLine('Via', ['Via: SIP/2.0 host', BASE[1]!]), /^Via: /],
    ['__proto__ as a header', withLine('__proto__', '__proto__: x'), /not a header name/],
  ];
  for (const [name, head, reason] of problems) {
    it(`answers ${name} with 400 naming the problem`, () => {
      const parsed = parseHeadGeneral(head);
      expect(parsed?.problem, head).to.match(reason);
      const thrown = (() => {
        try {
          parseHead(head);
        } catch (e) {
          return e;
        }
      })();
      expect(thrown).to.be.instanceOf(RejectedRequest);
      const rejection = thrown as RejectedRequest;
      expect(rejection.error.status).to.equal(400);
      expect(rejection.error.reason).to.match(/^Bad header: /);
      expect(rejection.error.reason, 'one printable line').to.match(/^[\x20-\x7e]+$/);
    });
  }

  it('cleans every line with a bare CR or LF, not only the first: nothing can be injected into the 400', () => {
    const head = withLine('Call-ID', ['X-A: a\rb', 'Call-ID: abc\nInjected: evil', 'Subject: s\rt']);
    const parsed = parseHeadGeneral(head)!;
    expect(parsed.problem).to.match(/CR or LF/);
    expect(parsed.message.headers['call-id']).to.equal('abc Injected: evil');
    expect(JSON.stringify(parsed.message.headers)).to.not.match(/\\[rn]/);
  });

  it('discards what has no start line or no usable Via (nobody to answer)', () => {
    expect(() => parseHead('HELLO WORLD\r\nVia: SIP/2.0/UDP h')).to.throw(SipDiscard);
    expect(() => parseHead(withLine('Via', 'Via: <' + ' '.repeat(100)))).to.throw(SipDiscard);
    expect(() => parseHead('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx')).to.throw(SipDiscard);
  });

  it('reads an IPv6 sent-by (which sip.parse does not)', () => {
    const head = withLine('Via', 'Via: SIP/2.0/UDP [::1]:5061;branch=z9hG4bK6;received=::1');
    const via = parseHeadGeneral(head)!.message.headers.via![0]!;
    expect([via.host, via.port, via.params.received]).to.deep.equal(['[::1]', 5061, '::1']);
  });

  it('reads response start lines (for the reference meter)', () => {
    const r = parseHeadGeneral('SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx')!;
    expect(r.message.status).to.equal(503);
    expect(r.message.reason).to.equal('Service Unavailable');
    expect(r.message.headers.via![0]!.params.branch).to.equal('z9hG4bKx');
  });

  it('parses every pathological head in time linear in its size, and within 100 ms at 64 KB', () => {
    // sip.parse took seconds on the 2-KB "<" + whitespace head and minutes on the 60-KB one.
    const outcome = (head: string) => {
      try {
        return parseHead(head).method;
      } catch (e) {
        if (e instanceof RejectedRequest || e instanceof SipDiscard) return e.constructor.name;
        throw e;
      }
    };
    const large = PATHOLOGICAL_HEADS(64 * 1024);
    for (let i = 0; i < large.length; i++) {
      const { name, head } = large[i]!;
      const started = process.hrtime.bigint();
      const result = outcome(head);
      const what = `${name} (${result})`;
      expect(Number(process.hrtime.bigint() - started) / 1e6, `${what} at 64 KB, ms`).to.be.lessThan(100);
      expectLinear(what, (k) => PATHOLOGICAL_HEADS(8 * 1024 * k)[i]!.head, outcome);
    }
  });
});
