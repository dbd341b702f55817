import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { batchEpochSecond, epochSecondToParts } from '../../src/domain/batch.js';
import { cassandraSh, dropKeyspace, requireNode } from '../helpers/cassandra-node.js';
import { buildMessage, parseResponse, udpRequest } from '../helpers/sip-client.js';
import { sippPath } from '../helpers/sipp.js';
import { CALLS, sippIngest } from '../helpers/sipp-ingest.js';
import { Conditions } from '../helpers/wait.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { makeBatch } from '../helpers/batches.js';

/**
 * A node just (re)started, e.g. by the outage test of cassandra-store.test.ts, takes its first
 * writes slowly (measured: 2.7 s), which overload control rightly answers 503 (the expected commit
 * wait exceeds ingest.max_wait_ms). These end-to-end runs are about a node that takes writes: write
 * small groups through the server's store until one comes back quickly (at most 60 s).
 */
async function warmUp(server: TestServer): Promise<void> {
  const T = Date.UTC(2025, 0, 1) / 1000;
  const deadline = Date.now() + 60_000;
  for (let round = 0; Date.now() < deadline; round++) {
    const group = Array.from({ length: 20 }, (_, i) => makeBatch(`warm-up-${round}`, T + i));
    const started = performance.now();
    const ok = await server.store.upsertBatches(group).then(
      () => true,
      () => false,
    );
    if (ok && performance.now() - started < 100) return;
  }
}

/**
 * The whole server on the Cassandra backend, against the real node of scripts/cassandra/:
 * sipp end to end, and a node outage while a meter streams.
 */
describe('ec-server on Cassandra (real node)', function () {
  this.timeout(300_000);
  const keyspace = `ec_e2e_${randomBytes(4).toString('hex')}`;
  let server: TestServer;

  before(async function () {
    await requireNode(this);
    sippPath();
    server = await startTestServer({
      'storage.backend': 'cassandra',
      'cassandra.keyspace': keyspace,
      'cassandra.request_timeout_ms': '1000',
      'sip.retry_after': '1',
      // A node in its first minute after a restart still pauses for a few hundred ms now and
      // then; overload control answers a batch that would wait out such a pause 503, as it should
      // (overload.test.ts, overload-control.test.ts). These runs are about the end-to-end path, so
      // they allow 2 s, within sipp's retransmission budget.
      'ingest.max_wait_ms': '2000',
      // ...and the answer deadline (auto: 400 ms on Cassandra) would answer a batch caught in such a pause 503
      // (tested in answer-deadline.test.ts and measured by bench/overload-ramp.mjs).
      'ingest.max_answer_ms': '0',
      // The same for the receiver's own CPU: this server runs in the test's process, beside a node that
      // takes the machine's cores while it writes 500 late batches/s (read, insert, two marks each), and
      // the loop rule answers 503 while this thread waits for a core (loop-busy.ts; it is tested in
      // overload-control.test.ts and bench/overload-ramp.mjs).
      'ingest.max_loop_busy': '0',
    });
    await warmUp(server);
  });
  after(async () => {
    await server?.cleanup();
    await dropKeyspace(keyspace);
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`sipp: ${CALLS} MESSAGEs over ${transport.toUpperCase()}, all answered 200 and stored in Cassandra`, () =>
      sippIngest(server, transport, `cass-sipp-${transport}`));
  }

  it("/metrics shows the Cassandra writer's adaptive limit and the writes in flight", async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.httpPort!}/metrics`)).text();
    const value = (name: string) =>
      Number(/^(\S+) (\S+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2]);
    // The limit adapts within 64..1024 (WRITE_LIMIT); idle after the runs: nothing in flight.
    expect(value('ec_store_write_limit')).to.be.within(64, 1024);
    expect(value('ec_store_writes_in_flight')).to.equal(0);
    expect(value('ec_overload_admitted_ratio')).to.be.within(0, 1);
  });

  it('Cassandra stopped mid-stream: 503 + Retry-After when down, no 200 without a row, resumes by itself', async () => {
    const T0 = Date.UTC(2026, 5, 1) / 1000;
    const device = 'cass-outage';
    const sock = dgram.createSocket('udp4');
    const statuses = new Map<number, number[]>();
    const retryAfter = new Set<string>();
    const answers = new Conditions();
    sock.on('message', (m) => {
      const r = parseResponse(m.toString('latin1'));
      const sec = Number(r.headers['call-id']!.split('-').pop());
      statuses.set(sec, [...(statuses.get(sec) ?? []), r.status]);
      if (r.status === 503) retryAfter.add(r.headers['retry-after'] ?? '');
      answers.check();
    });
    let next = 0;
    const send = () => {
      const sec = T0 + next++;
      const p = epochSecondToParts(sec);
      sock.send(
        buildMessage({
          port: server.port,
          callId: `outage-${sec}`,
          body: `${device}|${p.ec_date}${p.ec_time}|1,1.5;500000,2.5`,
        }),
        server.port,
        '127.0.0.1',
      );
    };
    const pump = setInterval(() => {
      for (let i = 0; i < 5; i++) send();
    }, 50); // ~100 MESSAGE/s
    const count = (status: number) => [...statuses.values()].filter((s) => s.includes(status)).length;
    try {
      // Counts reached, not times waited: the same on a fast machine and a slow one.
      await answers.until(() => count(200) > 50, '50 batches answered 200 before the outage');
      expect((await cassandraSh('stop')).code).to.equal(0);
      await answers.until(() => count(503) > 10, '10 batches answered 503 while Cassandra is down');
      expect([...retryAfter]).to.deep.equal(['1']);
      const started = await cassandraSh('start');
      expect(started.code, started.out).to.equal(0);
      const okAtRestart = count(200);
      // Ingestion resumes without restarting ec-server.
      await answers.until(() => count(200) >= okAtRestart + 100, '100 more 200s after Cassandra is back');
    } finally {
      clearInterval(pump);
      // The answers still on their way (a batch unanswered here is only left out of the check below).
      await answers.until(() => statuses.size >= next, 'an answer to every batch sent', 10_000).catch(() => undefined);
      sock.close();
    }
    // Every batch answered 200 is in Cassandra; nothing answered 503 was reported stored.
    const acked = [...statuses.entries()].filter(([, s]) => s.includes(200)).map(([sec]) => sec);
    const stored = new Set<number>();
    for (let t = T0; t < T0 + next; t += 3600) {
      for (const b of await server.store.readSummaries({
        device_id: device,
        from: t,
        to: Math.min(T0 + next, t + 3600),
      }))
        stored.add(batchEpochSecond(b));
    }
    const lost = acked.filter((s) => !stored.has(s));
    console.log(
      `      outage: ${next} sent, ${acked.length} answered 200, ${count(503)} answered 503, ${stored.size} ` +
        `stored, ${lost.length} acknowledged-but-lost`,
    );
    expect(lost).to.deep.equal([]);
    const r = await udpRequest(server.port, buildMessage({ port: server.port, body: `${device}|20260601235959|1,1` }));
    expect(r?.status).to.equal(200);
  });
});
