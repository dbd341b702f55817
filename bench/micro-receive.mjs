#!/usr/bin/env node
// @ts-check
// CPU per request of the receive path alone, without sockets or disk: small-UDP datagrams (as
// bench/sipp/small-udp.xml sends them) go through decodeDatagram -> TransactionLayer ->
// SipHandler -> GroupCommitter, whose store only packs each group the way the SQLite writer thread
// gets it (packReceived: the bodies are parsed in that thread) and resolves. Answers go to a link
// that drops them. A quick, low-noise loop for trying changes to the hot path before a real sipp
// run confirms them.
//
//   node bench/micro-receive.mjs [--messages N] [--rounds R] [--burst B]
//                                [--cache N (default: the server's sip.transaction_cache_size)]
//
// Prints microseconds per request for each round (the first rounds include JIT warm-up).
import pino from 'pino';
import { decodeDatagram } from '../dist/src/protocol/datagram-decoder.js';
import { TransactionLayer } from '../dist/src/protocol/transaction-layer.js';
import { KEY_INDEX } from '../dist/src/config/config-keys.js';
import { SipHandler } from '../dist/src/ingest/sip-handler.js';
import { GroupCommitter } from '../dist/src/ingest/group-commit.js';
import { packReceived } from '../dist/src/store/batch-rows.js';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const messages = arg('messages', 100_000);
const rounds = arg('rounds', 6);
const burst = arg('burst', 64); // datagrams delivered per event-loop turn

const RECORDS =
  '012345,1000.0000;112345,8919.0031;212345,7838.0062;312345,6757.0093;412345,5676.0124;' +
  '512345,4595.0155;612345,3514.0186;712345,2433.0217;812345,1352.0248;912345,9271.0279';

function datagram(n, run) {
  const body = `s${run}-${n}|20240101000000|${RECORDS}`;
  const head = [
    'MESSAGE sip:ec@127.0.0.1:5060 SIP/2.0',
    `Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-${run}-${n}-0`,
    `From: <sip:meter@127.0.0.1:5061>;tag=${n}`,
    'To: <sip:ec@127.0.0.1:5060>',
    `Call-ID: ${n}-${run}@127.0.0.1`,
    'CSeq: 1 MESSAGE',
    'Max-Forwards: 70',
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
const store = {
  async writeReceived(received) {
    serializedBytes += packReceived(received).length;
    return { rejected: [], gaps: [] };
  },
};
const committer = new GroupCommitter(store, {
  maxBatches: 500,
  maxBytes: 2 * 1024 * 1024,
  maxQueued: 1e6,
  maxQueuedBytes: 1e9,
});
const handler = new SipHandler(committer, { retryAfterS: 5 }, log);
// The server's default cache size (a larger one here made the cache look cheaper than it is).
const cacheSize = arg('cache', Number(KEY_INDEX.get('sip.transaction_cache_size').default));
const layer = new TransactionLayer(handler, { cacheSize }, log);
const limits = { maxHeaderBytes: 8192, maxBodyBytes: 1 << 20 };
let answered = 0;
const link = { transport: 'udp', remote: { address: '127.0.0.1', port: 5061 }, send: () => void answered++ };

async function round(run) {
  const data = Array.from({ length: messages }, (_, i) => datagram(i, run));
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

const results = [];
for (let r = 0; r < rounds; r++) {
  const res = await round(r);
  results.push(res);
  console.log(`round ${r + 1}: ${res.us.toFixed(2)} us/request wall, ${res.cpuUs.toFixed(2)} us CPU (all threads)`);
}
const steady = results
  .slice(Math.min(2, results.length - 1))
  .map((r) => r.us)
  .sort((a, b) => a - b);
console.log(
  `after warm-up: min ${steady[0].toFixed(2)}, median ${steady[Math.floor(steady.length / 2)].toFixed(2)} ` +
    `us/request; answered ${answered}; ${(serializedBytes / answered).toFixed(0)} packed bytes/batch`,
);
