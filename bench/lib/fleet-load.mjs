#!/usr/bin/env node
// @ts-check
// The fleet load generator: N meters, each on its own TCP connection, each sending one MESSAGE of
// `records` records per second on a fixed schedule (meter i at i/N of every second), measuring the
// time from the write of each request to its 200. Run as its own process by bench/lib/fleet.mjs.
//
// Why not sipp here: sipp with thousands of TCP connections used a whole core at ~1,200 meters on
// these 2-core machines (and two sipps 1.6 cores at 1,700), so it measured itself, not the server.
// This does the same work per meter with pre-built bodies, at a few percent of a core. It is used
// for Kamailio's fleet baseline too, so that both are measured with the same generator.
//
//   node fleet-load.mjs '{"host":"127.0.0.1","port":5060,"meters":2000,"seconds":30,"records":1000,"run":"f1"}'
// Prints one JSON line: { sent, ok200, non200, failed, connectFailed, p50, p99, max, timeline, ... }
import { createHash } from 'node:crypto';
import net from 'node:net';

const opts = JSON.parse(process.argv[2]);
const { host, port, meters, seconds, records = 1000, run, graceMs = 5000, stamp: first } = opts;

// The same records for every batch (the store does not care); distinct keys come from device and second.
const recs = [];
for (let i = 0; i < records; i++)
  recs.push(
    `${String(i * Math.floor(1_000_000 / records)).padStart(6, '0')},${(1000 + ((i * 7919) % 9000)).toFixed(4)}`,
  );
const values = recs.join(';');
const checksum = createHash('md5').update(recs.join('\n')).digest('hex');
/** Batch k of a meter is dated BASE_SECOND + k: 2024-01-01, or opts.stamp (YYYYMMDDhhmmss, live rows). */
const BASE_SECOND = first
  ? Date.UTC(
      +first.slice(0, 4),
      +first.slice(4, 6) - 1,
      +first.slice(6, 8),
      +first.slice(8, 10),
      +first.slice(10, 12),
    ) /
      1000 +
    +first.slice(12, 14)
  : Date.UTC(2024, 0, 1) / 1000;

function stamp(sec) {
  const iso = new Date(sec * 1000).toISOString();
  return (
    iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19)
  );
}

function message(i, k, localPort) {
  const body = `f${run}-${i}|${stamp(BASE_SECOND + k)}|${values}`;
  return (
    `MESSAGE sip:ec@${host}:${port} SIP/2.0\r\n` +
    `Via: SIP/2.0/TCP 127.0.0.1:${localPort};branch=z9hG4bK-${run}-${i}-${k}\r\n` +
    `From: <sip:meter${i}@127.0.0.1>;tag=${i}\r\n` +
    `To: <sip:ec@${host}:${port}>\r\n` +
    `Call-ID: ${run}-${i}-${k}\r\n` +
    `CSeq: ${k + 1} MESSAGE\r\n` +
    'Max-Forwards: 70\r\n' +
    'Content-Type: text/plain\r\n' +
    `X-EC-Count: ${records}\r\n` +
    `X-EC-Checksum: ${checksum}\r\n` +
    `X-EC-Seq: ${k + 1}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

const rtts = [];
let t0 = performance.now(); // set again when the schedule starts
const timeline = []; // [s, ok, 0, failed, sum ms]
const counts = { sent: 0, ok200: 0, non200: 0, failed: 0, connectFailed: 0 };
const row = (s) => (timeline[s] ??= [s, 0, 0, 0, 0]);

class Meter {
  constructor(i) {
    this.i = i;
    this.k = 0;
    this.pending = new Map(); // Call-ID -> send time (ms, hrtime)
    this.buf = '';
    this.sock = net.connect({ host, port });
    this.sock.setNoDelay(true);
    this.sock.setEncoding('latin1');
    this.up = new Promise((resolve) => {
      this.sock.once('connect', () => resolve(true));
      this.sock.once('error', () => resolve(false));
    });
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', () => {});
    this.sock.on('close', () => {
      for (const [, t] of this.pending) {
        counts.failed++;
        row(Math.floor((t - t0) / 1000))[3]++;
      }
      this.pending.clear();
      this.closed = true;
    });
  }

  send() {
    if (this.closed || this.k >= seconds) return;
    const k = this.k++;
    const now = performance.now();
    this.pending.set(`${run}-${this.i}-${k}`, now);
    this.sock.write(message(this.i, k, this.sock.localPort));
    counts.sent++;
  }

  onData(d) {
    this.buf += d;
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.slice(0, end);
      const cl = /\r\nContent-Length:\s*(\d+)/i.exec(head);
      const len = cl ? Number(cl[1]) : 0;
      if (this.buf.length < end + 4 + len) return;
      this.buf = this.buf.slice(end + 4 + len);
      const status = Number(head.slice(8, 11));
      const id = /\r\nCall-ID:\s*([^\r\n]+)/i.exec(head)?.[1]?.trim();
      const t = id !== undefined ? this.pending.get(id) : undefined;
      if (t === undefined) continue;
      this.pending.delete(id);
      const now = performance.now();
      const r = row(Math.floor((t - t0) / 1000));
      if (status === 200) {
        counts.ok200++;
        rtts.push(now - t);
        r[1]++;
        r[4] += now - t;
      } else {
        counts.non200++;
        r[3]++;
      }
    }
  }
}

const meterList = [];
for (let i = 0; i < meters; i++) meterList.push(new Meter(i));
const ups = await Promise.all(meterList.map((m) => m.up));
counts.connectFailed = ups.filter((u) => !u).length;

// Fixed schedule: meter i sends at t0 + i/N s + k s. One ticker drives all of them.
t0 = performance.now() + 100;
const cpu0 = process.cpuUsage();
let next = 0; // index into the flattened (k, i) schedule
const total = meters * seconds;
const sendSpan = { first: undefined, last: undefined };
await new Promise((resolve) => {
  const tick = () => {
    const now = performance.now();
    while (next < total) {
      const k = Math.floor(next / meters);
      const i = next % meters;
      const at = t0 + k * 1000 + (i * 1000) / meters;
      if (at > now) break;
      meterList[i].send();
      sendSpan.first ??= now;
      sendSpan.last = now;
      next++;
    }
    if (next >= total) resolve();
    else setTimeout(tick, 2);
  };
  tick();
});

// Wait for the last answers.
const deadline = performance.now() + graceMs;
while (meterList.some((m) => m.pending.size > 0) && performance.now() < deadline)
  await new Promise((r) => setTimeout(r, 20));
const cpu = process.cpuUsage(cpu0);
const wallS = (performance.now() - t0) / 1000;
let timedOut = 0;
for (const m of meterList) {
  for (const [, t] of m.pending) {
    timedOut++;
    row(Math.floor((t - t0) / 1000))[3]++;
  }
  m.pending.clear();
  m.sock.destroy();
}
rtts.sort((a, b) => a - b);
const pct = (p) =>
  rtts.length ? Math.round(rtts[Math.min(rtts.length - 1, Math.floor((p / 100) * rtts.length))]) : undefined;
const out = {
  ...counts,
  timedOut,
  failed: counts.failed + timedOut + counts.connectFailed * seconds,
  p50: pct(50),
  p99: pct(99),
  max: rtts.length ? Math.round(rtts[rtts.length - 1]) : undefined,
  samples: rtts.length,
  achievedRate: sendSpan.last > sendSpan.first ? (counts.sent - 1) / ((sendSpan.last - sendSpan.first) / 1000) : 0,
  cpuPct: (100 * (cpu.user + cpu.system)) / 1e6 / wallS,
  timeline: timeline.filter(Boolean).map((r) => [r[0], r[1], r[2], r[3], r[1] ? Math.round(r[4] / r[1]) : 0]),
};
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
