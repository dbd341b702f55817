#!/usr/bin/env node
// @ts-check
// What TLS costs the large-batch stream path: one real server (bin/ec-server.js, SQLite, synchronous=FULL)
// listening on TCP and on TLS (certificates generated for the run), loaded in alternating rounds over
// each by the same pipelined senders (ec-client's SipSender), so that both are measured side by side on
// a shared machine (only ratios measured in the same run mean anything).
//
//   npm run bench:tls [-- --rounds R] [-- --messages N] [-- --connections C] [-- --records K]
//
// Load per round: C connections, each sending N/C MESSAGEs with 8 in flight; each body holds K records
// (default 1000: ~13 KB, a 1-second batch at 1 kHz). Prints per round the acknowledged MESSAGE/s and the
// server's CPU per MESSAGE, then the medians and the ratios tls/tcp. Exit 1 when a round loses a batch.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { SipSender } from '../dist/src/client/sip-sender.js';
import { makeTestPki } from '../dist/test/helpers/certificates.js';
import { countRows, startEcServer } from './lib/targets.mjs';
import { BENCH_DIR, cpuSeconds, fmtNum, freePort, log, table } from './lib/util.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const ROUNDS = arg('rounds', 5);
const MESSAGES = arg('messages', 4000);
const CONNECTIONS = arg('connections', 4);
const RECORDS = arg('records', 1000);
const WINDOW = 8;
/** Answers other than 200, by status (a run with any is reported). */
const statuses = {};
const quiet = pino({ level: 'silent' });

/** A batch body of RECORDS records for `device` at epoch second `second`. */
function body(device, second) {
  const stamp = new Date(second * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const step = Math.floor(1_000_000 / RECORDS);
  const records = Array.from({ length: RECORDS }, (_, i) => `${i * step},${((i * 31) % 100000) / 100}`);
  return `${device}|${stamp}|${records.join(';')}`;
}

/** One connection's stream: `count` MESSAGEs, WINDOW in flight; resolves with the number answered 200. */
async function stream(sender, device, first, count) {
  let next = 0;
  let ok = 0;
  const worker = async () => {
    while (next < count) {
      const r = await sender.send(body(device, first + next++), {});
      if (r.status === 200) ok++;
      else statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  return ok;
}

async function round(server, ports, ca, kind, r) {
  const perConn = Math.floor(MESSAGES / CONNECTIONS);
  const first = Math.floor(Date.now() / 1000) - 86_400;
  const senders = await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, c) => {
      const s = new SipSender(
        { host: '127.0.0.1', port: ports[kind], transport: kind, tls: { ca }, from: `tls-bench-${c}`, t1Ms: 2000 },
        quiet,
      );
      await s.start();
      // Connected (and the handshake done) before the clock starts: the stream is measured, not the set-up.
      // The body is not a batch: answered 400, nothing stored.
      await s.send('ping', {});
      return s;
    }),
  );
  const cpu0 = cpuSeconds(server.pid) ?? 0;
  const started = Date.now();
  const oks = await Promise.all(senders.map((s, c) => stream(s, `${kind}-${r}-${c}`, first, perConn)));
  const seconds = (Date.now() - started) / 1000;
  const cpu = (cpuSeconds(server.pid) ?? 0) - cpu0;
  for (const s of senders) s.close();
  const acked = oks.reduce((a, b) => a + b, 0);
  return { kind, round: r + 1, rate: acked / seconds, cpuUs: (cpu / acked) * 1e6, acked, sent: perConn * CONNECTIONS };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const pki = await makeTestPki();
const dataDir = join(BENCH_DIR, '.work', 'tls-ratio');
rmSync(dataDir, { recursive: true, force: true });
const tlsPort = await freePort();
const server = await startEcServer({
  dataDir,
  extraArgs: [
    `tls.certificate=${pki.server.cert}`,
    `tls.key=${pki.server.key}`,
    `sip.tls_port=${tlsPort}`,
    'sync.enabled=false',
    'http.enabled=false',
  ].flatMap((kv) => ['--set', kv]),
});
const ports = { tcp: server.port, tls: tlsPort };
const ca = readFileSync(pki.ca);
log(`tls-ratio: ${ROUNDS} rounds x (tcp, tls), ${MESSAGES} MESSAGEs of ${RECORDS} records, ${CONNECTIONS} conns`);
const results = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of /** @type {const} */ (['tcp', 'tls'])) {
    const res = await round(server, ports, ca, kind, r);
    results.push(res);
    log(`${kind} round ${r + 1}: ${fmtNum(res.rate, 0)} MESSAGE/s, ${fmtNum(res.cpuUs, 0)} us server CPU/MESSAGE`);
  }
}
await server.stop();
const stored = countRows(dataDir);
rmSync(dataDir, { recursive: true, force: true });
rmSync(pki.dir, { recursive: true, force: true });

const of = (kind, f) => median(results.filter((x) => x.kind === kind).map(f));
const rows = results.map((x) => [x.kind, x.round, fmtNum(x.rate, 0), fmtNum(x.cpuUs, 0), `${x.acked}/${x.sent}`]);
console.log(table(['transport', 'round', 'MESSAGE/s', 'server CPU us/MESSAGE', 'acked'], rows));
const rate = of('tls', (x) => x.rate) / of('tcp', (x) => x.rate);
const cpu = of('tls', (x) => x.cpuUs) / of('tcp', (x) => x.cpuUs);
console.log(
  `\nmedians: tcp ${fmtNum(
    of('tcp', (x) => x.rate),
    0,
  )}/s, tls ${fmtNum(
    of('tls', (x) => x.rate),
    0,
  )}/s; ` + `tls/tcp rate x${fmtNum(rate, 2)}, server CPU per MESSAGE x${fmtNum(cpu, 2)}`,
);
if (Object.keys(statuses).length) console.log(`answers other than 200: ${JSON.stringify(statuses)}`);
const acked = results.reduce((n, x) => n + x.acked, 0);
if (stored < acked) {
  console.log(`LOST: ${acked} acknowledged, ${stored} stored`);
  process.exitCode = 1;
}
