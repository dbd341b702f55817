import fc from 'fast-check';
import { SipDiscard, SipRequestError, SyncProtocolError } from '../../src/errors.js';
import { parseBatchBody } from '../../src/domain/batch-body.js';
import { decodeDatagram } from '../../src/protocol/datagram-decoder.js';
import { RejectedRequest, type Decoded, type Limits } from '../../src/protocol/sip-request.js';
import { TcpFramer } from '../../src/protocol/tcp-framer.js';
import { validateRequest } from '../../src/protocol/validate-request.js';
import { FrameTooLarge, LineFramer } from '../../src/sync/line-framer.js';
import { decodeFrame } from '../../src/sync/sync-protocol.js';

/**
 * Property-based fuzzing of everything that reads wire input: SIP framing and head parsing (UDP
 * and TCP, split at random points), request validation, the batch body grammar, and the sync
 * protocol's framer and decoder. Each property asserts that the outcome is one of our typed ones
 * and that no single input takes longer than MAX_MS_PER_INPUT. Shared by the test (a short run)
 * and `npm run fuzz` (a million inputs).
 */

export const LIMITS: Limits = { maxHeaderBytes: 8192, maxBodyBytes: 65536 };
/** Bound on one input's time. Linear parsers take well under a millisecond on these sizes. */
export const MAX_MS_PER_INPUT = 50;

/** Slowest input seen per target, for the script's report. */
export const slowest: Record<string, number> = {};

/**
 * Runs one input and checks its time. The time is the process's CPU time, not the wall clock: on a
 * shared machine a descheduled thread is not the parser's doing. A slow run is repeated (up to 3
 * times) before it counts, which filters GC pauses; a super-linear input is slow every time.
 */
function timed<T>(target: string, f: () => T): T {
  let best = Infinity;
  let out!: T;
  for (let attempt = 0; attempt < 3 && best > MAX_MS_PER_INPUT; attempt++) {
    const before = process.cpuUsage();
    out = f();
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  if (best > (slowest[target] ?? 0)) slowest[target] = best;
  if (best > MAX_MS_PER_INPUT) throw new Error(`${target}: one input took ${best.toFixed(1)} ms of CPU (best of 3)`);
  return out;
}

const isTyped = (e: unknown) => e instanceof SipRequestError || e instanceof SipDiscard || e instanceof RejectedRequest;

/** Header-ish fragments: the separators and runs that backtracking parsers choke on. */
const fragment = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom('<', '>', ';', ',', '=', '"', ':', '/', '\\', '@', ' ', '\t', '\r\n', '\r', '\n'),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom('sip:m@h', 'SIP/2.0/UDP', 'tag=1', 'branch=z9hG4bKx', 'Digest', '[::1]', '5060'),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-zA-Z0-9.!%*_+`'~-]{1,12}$/) },
  { weight: 1, arbitrary: fc.nat(3000).map((n) => ' '.repeat(n)) },
  {
    weight: 1,
    arbitrary: fc.nat(500).chain((n) => fc.constantFrom('a ', ';a', '\\"', '\r\n ', ' ,').map((u) => u.repeat(n))),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);

const headerName = fc.oneof(
  fc.constantFrom('Via', 'v', 'From', 'f', 'To', 't', 'Contact', 'm', 'CSeq', 'Call-ID', 'i', 'Content-Length', 'l'),
  fc.constantFrom('Content-Type', 'Require', 'Authorization', 'X-EC-Count', 'X-EC-Checksum', 'X-EC-Seq', '__proto__'),
  fc.stringMatching(/^[A-Za-z-]{1,10}$/),
);

const headerLine = fc
  .tuple(headerName, fc.constantFrom(':', ': ', ' : ', ''), fc.array(fragment, { maxLength: 12 }))
  .map(([n, sep, parts]) => `${n}${sep}${parts.join('')}`);

const plainHeaders = [
  'Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-f',
  'From: <sip:meter@127.0.0.1>;tag=1',
  'To: <sip:ec@127.0.0.1>',
  'Call-ID: fuzz@h',
  'CSeq: 1 MESSAGE',
  'Content-Type: text/plain',
];

/** A SIP message: a (mostly) valid start line, plain headers mixed with fuzzed ones, a body. */
export const sipMessage = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('MESSAGE sip:ec@h SIP/2.0', 'OPTIONS sip:ec@h SIP/2.0') },
      { weight: 1, arbitrary: fc.constantFrom('MESSAGE sip:ec@h SIP/3.0', 'SIP/2.0 200 OK', 'MESSAGE  SIP/2.0') },
    ),
    fc.oneof({ weight: 3, arbitrary: fc.constant(plainHeaders) }, { weight: 1, arbitrary: fc.subarray(plainHeaders) }),
    fc.array(headerLine, { maxLength: 4 }),
    fc.oneof(fc.constant(null), fc.constant('exact' as const), fc.nat(100_000)),
    fc.string({ maxLength: 200 }),
  )
  .chain(([start, plain, fuzzed, length, body]) =>
    fc.shuffledSubarray([...plain, ...fuzzed], { minLength: plain.length + fuzzed.length }).map((lines) => {
      const bytes = length === 'exact' ? Buffer.byteLength(body, 'latin1') : length;
      const cl = bytes === null ? [] : [`Content-Length: ${bytes}`];
      return Buffer.from([start, ...lines, ...cl, '', body].join('\r\n'), 'latin1');
    }),
  );

/** Raw bytes too, for what is not SIP at all. */
export const wireBytes = fc.oneof(
  { weight: 5, arbitrary: sipMessage },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)) },
);

/** How decoding ended, counted over every run: a fuzzer that only ever reaches one outcome proves little. */
export const outcomes = { request: 0, reject: 0, discard: 0 };

function checkDecoded(d: Decoded): void {
  outcomes[d.kind]++;
  if (d.kind !== 'request') return;
  try {
    validateRequest(d.request);
    parseBatchBody(d.request.body.toString('latin1'));
  } catch (e) {
    if (!isTyped(e)) throw e;
  }
}

/** UDP: decode, validate, parse the body. */
export const datagramProperty = fc.property(wireBytes, (buf) => {
  timed('udp', () => checkDecoded(decodeDatagram(buf, LIMITS)));
});

/** TCP: the same bytes, twice in a row, cut into chunks at random points. */
export const streamProperty = fc.property(wireBytes, fc.array(fc.nat(), { maxLength: 5 }), (buf, cuts) => {
  const stream = Buffer.concat([buf, buf]);
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  timed('tcp', () => {
    const framer = new TcpFramer(LIMITS);
    let from = 0;
    for (const to of [...points, stream.length]) {
      const out = framer.push(stream.subarray(from, to));
      out.messages.forEach(checkDecoded);
      from = to;
      if (out.close) break;
    }
  });
});

/** The body grammar on its own: any text is a batch or a SipRequestError. */
export const bodyProperty = fc.property(
  fc.oneof(
    fc.string({ maxLength: 3000 }),
    fc
      .tuple(
        fc.stringMatching(/^[0-9a-f]{1,14}$/),
        fc.stringMatching(/^\d{0,15}$/),
        fc.array(fc.tuple(fc.nat(), fc.double())),
      )
      .map(([d, t, rs]) => `${d}|${t}|${rs.map(([o, v]) => `${o},${v}`).join(';')}`),
  ),
  (body) => {
    timed('body', () => {
      try {
        parseBatchBody(body);
      } catch (e) {
        if (!(e instanceof SipRequestError)) throw e;
      }
    });
  },
);

/** Sync: chunks through the line framer (bounded), each frame through the decoder. */
export const syncProperty = fc.property(
  fc.array(
    fc.oneof(
      fc.json(),
      fc.string({ maxLength: 300 }),
      fc.constantFrom('{"type":"hello","version":1,"devices":["a"],"retention_s":60}', '\n', '{"type":'),
    ),
    { maxLength: 8 },
  ),
  (chunks) => {
    timed('sync', () => {
      const framer = new LineFramer(4096);
      for (const chunk of chunks) {
        let lines: string[];
        try {
          lines = framer.push(Buffer.from(chunk + (chunk.length % 3 === 0 ? '\n' : ''), 'utf8'));
        } catch (e) {
          if (e instanceof FrameTooLarge) return;
          throw e;
        }
        for (const line of lines) {
          try {
            decodeFrame(line);
          } catch (e) {
            if (!(e instanceof SyncProtocolError)) throw e;
          }
        }
      }
    });
  },
);

/** Each target runs its property for `numRuns` inputs from `seed`; it throws on the first failure. */
export const TARGETS: Record<string, (numRuns: number, seed: number) => void> = {
  udp: (numRuns, seed) => fc.assert(datagramProperty, { numRuns, seed }),
  tcp: (numRuns, seed) => fc.assert(streamProperty, { numRuns, seed }),
  body: (numRuns, seed) => fc.assert(bodyProperty, { numRuns, seed }),
  sync: (numRuns, seed) => fc.assert(syncProperty, { numRuns, seed }),
};
