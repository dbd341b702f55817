#!/usr/bin/env node
// @ts-check
// CPU per request of the receive path alone, without sockets or disk: small-UDP datagrams (as
// bench/sipp/small-udp.xml sends them) go through decodeDatagram -> TransactionLayer ->
// SipHandler -> GroupCommitter, whose ingest sink only packs each group the way the SQLite writer
// thread gets it (packReceived: the bodies are parsed in that thread) and resolves. Answers go to a link
// that drops them. A quick, low-noise loop for trying changes to the hot path before a real sipp
// run confirms them.
//
//   node bench/micro-receive.mjs [--messages N] [--rounds R] [--burst B]
//                                [--cache N (default: the server's sip.transaction_cache_size)]
//                                [--auth] [--devices D (default 1000)]
//
// Prints microseconds per request for each round (the first rounds include JIT warm-up).
// --auth alternates rounds without and with digest authentication (the server's default algorithm
// order; each of D devices answers one challenge and then reuses its nonce with rising nc, as
// meters do) and prints the ratio of the two: what authentication costs the event loop.
import pino from 'pino';
import { decodeDatagram } from '../dist/src/protocol/datagram-decoder.js';
import { TransactionLayer } from '../dist/src/protocol/transaction-layer.js';
import { KEY_INDEX } from '../dist/src/config/config-keys.js';
import { SipHandler } from '../dist/src/ingest/sip-handler.js';
import { GroupCommitter } from '../dist/src/ingest/group-commit.js';
import { packReceived } from '../dist/src/ingest/received-packing.js';
import { CredentialCache } from '../dist/src/auth/credential-cache.js';
import { DigestAuthenticator } from '../dist/src/auth/digest-authenticator.js';
import { DigestSession } from '../dist/src/client/digest-session.js';
import { credentialFor } from '../dist/src/domain/device-credential.js';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const messages = arg('messages', 100_000);
const rounds = arg('rounds', 6);
const burst = arg('burst', 64); // datagrams delivered per event-loop turn
const withAuth = process.argv.includes('--auth');
const deviceCount = arg('devices', 1000);

const RECORDS =
  '012345,1000.0000;112345,8919.0031;212345,7838.0062;312345,6757.0093;412345,5676.0124;' +
  '512345,4595.0155;612345,3514.0186;712345,2433.0217;812345,1352.0248;912345,9271.0279';

/** `session`: the device's digest session (its Authorization is computed here, outside the timing). */
function datagram(n, run, session) {
  const device = session ? session.device : `s${run}-${n}`;
  const body = `${device}|20240101000000|${RECORDS}`;
  const authorization = session?.authorize('MESSAGE', 'sip:ec@127.0.0.1:5060', body);
  const head = [
    'MESSAGE sip:ec@127.0.0.1:5060 SIP/2.0',
    `Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-${run}-${n}-0`,
    `From: <sip:meter@127.0.0.1:5061>;tag=${n}`,
    'To: <sip:ec@127.0.0.1:5060>',
    `Call-ID: ${n}-${run}@127.0.0.1`,
    'CSeq: 1 MESSAGE',
    'Max-Forwards: 70',
    ...(authorization ? [`Authorization: ${authorization}`] : []),
    'Content-Type: text/plain',
    'X-EC-Count: 10',
    'X-EC-Checksum: ab90a997479da932469569d41cf6260b',
    'X-EC-Seq: 1',
    `Content-Length: ${body.length}`,
  ].join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${body}`, 'latin1');
}

const log = pino({ level: 'warn' });
let serializedBytes = 0;
const sink = {
  pipelined: false,
  concurrent: false,
  async write(received) {
    serializedBytes += packReceived(received).length;
    return { rejected: [], gaps: [] };
  },
  async close() {},
};
const committer = new GroupCommitter(sink, {
  maxBatches: 500,
  maxBytes: 2 * 1024 * 1024,
  maxQueued: 1e6,
  maxQueuedBytes: 1e9,
});
// Authentication as the server sets it up, over credentials held in memory (no store reads per
// request in the server either: credential-cache.ts).
const secrets = new Map(Array.from({ length: deviceCount }, (_, i) => [`auth-${i}`, `secret-${i}`]));
const credentials = [...secrets].map(([d, secret]) => credentialFor(d, 'ec-server', secret, Date.now()));
const cache = new CredentialCache(
  { listCredentials: async () => credentials, readCredential: async () => undefined },
  { refreshMs: 3_600_000, negativeMs: 10_000, maxNegative: 1000 },
  log,
);
await cache.start();
cache.stop();
const authenticator = new DigestAuthenticator(
  {
    realm: 'ec-server',
    algorithms: ['SHA-256', 'MD5'],
    required: true,
    nonceLifetimeMs: 3_600_000,
    nonceKey: Buffer.alloc(32, 1),
  },
  cache,
);
/** One session per device, challenged once (a meter's first request). */
const sessions = [...secrets].map(([d, secret]) => {
  const session = new DigestSession(d, secret);
  session.accept(authenticator.challenges(false));
  return session;
});
const plainHandler = new SipHandler(committer, { retryAfterS: 5 }, log);
const authHandler = new SipHandler(committer, { retryAfterS: 5, authenticator }, log);
// The server's default cache size (a larger one here made the cache look cheaper than it is).
const cacheSize = arg('cache', Number(KEY_INDEX.get('sip.transaction_cache_size').default));
const plainLayer = new TransactionLayer(plainHandler, { cacheSize }, log);
const authLayer = new TransactionLayer(authHandler, { cacheSize }, log);
const limits = { maxHeaderBytes: 8192, maxBodyBytes: 1 << 20 };
let answered = 0;
let refused = 0;
const link = {
  transport: 'udp',
  remote: { address: '127.0.0.1', port: 5061 },
  send: (buf) => void (buf.subarray(8, 11).toString() === '200' ? answered++ : refused++),
};

async function round(run, auth) {
  const data = Array.from({ length: messages }, (_, i) =>
    datagram(i, run, auth ? sessions[i % deviceCount] : undefined),
  );
  const layer = auth ? authLayer : plainLayer;
  const started = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const pending = [];
  for (let i = 0; i < data.length; i += burst) {
    for (let j = i; j < Math.min(i + burst, data.length); j++) {
      pending.push(layer.receive(decodeDatagram(data[j], limits), { ...link }));
    }
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(pending);
  await committer.drain();
  const us = Number(process.hrtime.bigint() - started) / 1000 / messages;
  const cpu = process.cpuUsage(cpu0);
  return { us, cpuUs: (cpu.user + cpu.system) / messages };
}

const results = { plain: [], auth: [] };
for (let r = 0; r < rounds; r++) {
  for (const auth of withAuth ? [false, true] : [false]) {
    const res = await round(r, auth);
    results[auth ? 'auth' : 'plain'].push(res);
    console.log(
      `round ${r + 1}${withAuth ? (auth ? ' auth ' : ' plain') : ''}: ${res.us.toFixed(2)} us/request wall, ` +
        `${res.cpuUs.toFixed(2)} us CPU (all threads)`,
    );
  }
}
/** Median of the rounds after warm-up. */
const steady = (list) => {
  const us = list
    .slice(Math.min(2, list.length - 1))
    .map((r) => r.us)
    .sort((a, b) => a - b);
  return { min: us[0], median: us[Math.floor(us.length / 2)] };
};
const plain = steady(results.plain);
console.log(
  `after warm-up: min ${plain.min.toFixed(2)}, median ${plain.median.toFixed(2)} ` +
    `us/request; answered ${answered}, refused ${refused}; ` +
    `${(serializedBytes / answered).toFixed(0)} packed bytes/batch`,
);
if (withAuth) {
  const auth = steady(results.auth);
  console.log(
    `with digest authentication (${deviceCount} devices, nonce reuse): min ${auth.min.toFixed(2)}, median ` +
      `${auth.median.toFixed(2)} us/request; rate ratio auth/plain ${(plain.median / auth.median).toFixed(3)}`,
  );
  if (refused > 0) {
    console.error(`${refused} requests were refused: the authenticated rounds did not measure what they claim`);
    process.exitCode = 1;
  }
}
