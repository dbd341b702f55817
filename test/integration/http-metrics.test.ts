import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ConfigError } from '../../src/errors.js';
import { buildMessage, tcpExchange, udpRequest, UdpPeer } from '../helpers/sip-client.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const TOKEN = 'test-token-0123456789abcdef';

async function get(port: number, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Samples of the text format: `name{labels}` -> value (labels as written, sorted by prom-client). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Metric families named by `# TYPE` lines. */
function families(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}

/** `promtool check metrics` on the text: its exit code and everything it printed. */
function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

const havePromtool = spawnSync('promtool', ['--version']).status === 0;

describe('HTTP endpoints: /healthz, /readyz, /metrics', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.cleanup();
  });

  const scrape = async () => {
    const r = await get(server.httpPort!, '/metrics');
    expect(r.status).to.equal(200);
    return r.text;
  };

  it('listens on loopback; /healthz and /readyz answer 200; unknown paths 404', async () => {
    expect(server.httpPort).to.be.a('number').and.not.equal(0);
    expect(await get(server.httpPort!, '/healthz')).to.include({ status: 200, text: 'ok\n' });
    expect(await get(server.httpPort!, '/readyz')).to.include({ status: 200, text: 'ready\n' });
    expect((await get(server.httpPort!, '/nothing')).status).to.equal(404);
  });

  it('/metrics is the Prometheus text format and passes `promtool check metrics`', async function () {
    const r = await get(server.httpPort!, '/metrics');
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    expect(r.text).to.match(/^ec_store_up 1$/m);
    expect(r.text, 'default Node metrics').to.match(/^process_cpu_seconds_total /m);
    expect(r.text).to.match(/^nodejs_eventloop_lag_seconds /m);
    if (!havePromtool) {
      if (process.env.EC_REQUIRE_PROMTOOL === '1') throw new Error('promtool is required (Debian package prometheus)');
      console.warn('    promtool check NOT RUN: promtool missing (apt-get install prometheus; test:full installs it)');
      return this.skip();
    }
    const check = await promtool(r.text);
    expect(check.output, 'promtool reports no problem').to.equal('');
    expect(check.code).to.equal(0);
    // The check can fail: a counter without _total is a problem promtool reports.
    const bad = await promtool('# HELP ec_bad a counter\n# TYPE ec_bad counter\nec_bad 1\n');
    expect(bad.output).to.match(/counter metrics should have "_total" suffix/);
  });

  it('counters move by exactly the traffic sent: N stored, a bad body, a bad type, a retransmission, TCP', async () => {
    const before = samples(await scrape());
    const T0 = Date.UTC(2026, 0, 1) / 1000;
    const N = 5;
    const stamp = (s: number) => new Date((T0 + s) * 1000).toISOString().replace(/\D/g, '').slice(0, 14);
    const body = (s: number) => `metrics-dev|${stamp(s)}|1000,1.5;2000,2.5;3000,3.5`;
    const first = buildMessage({ port: server.port, body: body(0), branch: 'z9hG4bK-metrics-0' });
    // The first and its retransmission from one socket (a retransmission comes from where the request
    // came from): the copy is answered from the transaction cache, not stored again.
    const peer = new UdpPeer();
    try {
      peer.send(server.port, first);
      await peer.waitFor(1);
      peer.send(server.port, first);
      await peer.waitFor(2);
      expect(peer.responses.map((r) => r.status)).to.deep.equal([200, 200]);
    } finally {
      peer.close();
    }
    for (let i = 1; i < N; i++) {
      const msg = buildMessage({ port: server.port, body: body(i) });
      expect((await udpRequest(server.port, msg))?.status).to.equal(200);
    }
    const badBody = buildMessage({ port: server.port, body: 'metrics-dev|2026|x' });
    expect((await udpRequest(server.port, badBody))?.status).to.equal(400);
    const badType = buildMessage({ port: server.port, body: body(9), contentType: 'application/json' });
    expect((await udpRequest(server.port, badType))?.status).to.equal(415);
    const overTcp = buildMessage({ port: server.port, body: body(20), transport: 'TCP' });
    expect((await tcpExchange(server.port, overTcp, 1)).responses[0]?.status).to.equal(200);

    const after = samples(await scrape());
    const moved = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    const requests = (transport: string, status: number) =>
      moved(`ec_sip_requests_total{transport="${transport}",method="MESSAGE",status="${status}"}`);
    expect(requests('udp', 200)).to.equal(N);
    expect(requests('udp', 400)).to.equal(1);
    expect(requests('udp', 415)).to.equal(1);
    expect(requests('tcp', 200)).to.equal(1);
    expect(moved('ec_sip_requests_received_total')).to.equal(N + 1 + 2 + 1);
    expect(moved('ec_sip_retransmissions_total')).to.equal(1);
    expect(after.get('ec_sip_late_answers_total'), 'max_answer_ms: off on sqlite (auto)').to.equal(0);
    expect(moved('ec_batches_stored_total')).to.equal(N + 1);
    expect(moved('ec_samples_stored_total')).to.equal(3 * (N + 1));
    expect(moved('ec_sip_rejections_total{code="EC_BODY_BAD_TIMESTAMP",status="400"}')).to.equal(1);
    expect(moved('ec_sip_rejections_total{code="EC_SIP_UNSUPPORTED_MEDIA",status="415"}')).to.equal(1);
    // Every batch that reached the group commit is in exactly one group: the good ones and the bad body.
    expect(moved('ec_commit_group_batches_sum')).to.equal(N + 1 + 1);
    expect(moved('ec_commit_duration_seconds_count')).to.equal(moved('ec_commits_total'));
    expect(moved('ec_commits_total')).to.be.within(1, N + 2);
    expect(after.get('ec_commit_queue_batches')).to.equal(0);
    // The event-loop overload rule (on by default): an idle test server admits every batch.
    expect(after.get('ec_overload_admitted_ratio')).to.equal(1);
    expect(after.get('ec_overload_loop_busy_ratio')).to.be.within(0, 1);
    // SQLite writes one transaction at a time: no adaptive write limit to show (Cassandra has one).
    expect(after.has('ec_store_write_limit')).to.equal(false);
    expect(moved('ec_sip_unavailable_total{reason="EC_STORE_UNAVAILABLE"}')).to.equal(0);
  });

  it('every metric the Grafana dashboard (deploy/grafana/ec-server.json) queries is served', async () => {
    const dashboard = JSON.parse(readFileSync(join(FIXTURES, '../../deploy/grafana/ec-server.json'), 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).to.be.greaterThan(10);
    const used = new Set(
      exprs.flatMap((e) => [...e.matchAll(/\b((?:ec|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!)),
    );
    const served = families(await scrape());
    const base = (name: string) => name.replace(/_(bucket|sum|count)$/, '');
    const missing = [...used].filter((n) => !served.has(n) && !served.has(base(n)));
    expect(missing, 'queried by the dashboard, not served').to.deep.equal([]);
    expect(used.size).to.be.greaterThan(15);
  });

  it('/readyz is 503 and ec_store_up 0 once the store stops answering; a MESSAGE then counts as a 503', async () => {
    const before = samples(await scrape());
    await server.store.close();
    const r = await get(server.httpPort!, '/readyz');
    expect(r).to.include({ status: 503, text: 'not ready: the store does not answer\n' });
    expect((await get(server.httpPort!, '/healthz')).status, 'alive all the same').to.equal(200);
    const msg = buildMessage({ port: server.port, body: 'metrics-dev|20260101000100|1,1' });
    expect((await udpRequest(server.port, msg))?.status).to.equal(503);
    const after = samples(await scrape());
    expect(after.get('ec_store_up')).to.equal(0);
    const key = 'ec_sip_unavailable_total{reason="EC_STORE_UNAVAILABLE"}';
    expect((after.get(key) ?? 0) - (before.get(key) ?? 0)).to.equal(1);
  });
});

describe('HTTP endpoints beyond loopback', function () {
  this.timeout(30_000);

  it('on 0.0.0.0 with http.tokens: /metrics needs the token (also from 127.0.0.1), probes do not', async () => {
    const server = await startTestServer({
      'http.listen_addr': '0.0.0.0',
      'http.tokens': `other-token-000000000,${TOKEN}`,
    });
    try {
      const port = server.httpPort!;
      const none = await get(port, '/metrics');
      expect(none.status).to.equal(401);
      expect(none.headers.get('www-authenticate')).to.equal('Bearer realm="ec-server"');
      expect(none.text).to.not.include('ec_');
      expect((await get(port, '/metrics', { authorization: `Bearer ${TOKEN}x` })).status).to.equal(401);
      expect((await get(port, '/metrics', { authorization: `Basic ${TOKEN}` })).status).to.equal(401);
      const ok = await get(port, '/metrics', { authorization: `Bearer ${TOKEN}` });
      expect(ok.status).to.equal(200);
      expect(ok.text).to.match(/^ec_store_up 1$/m);
      expect((await get(port, '/metrics', { authorization: 'bearer other-token-000000000' })).status).to.equal(200);
      expect((await get(port, '/healthz')).status).to.equal(200);
      expect((await get(port, '/readyz')).status).to.equal(200);
    } finally {
      await server.cleanup();
    }
  });

  it('beyond loopback without a token the server refuses to start, naming http.tokens', async () => {
    let err: unknown;
    try {
      const s = await startTestServer({ 'http.listen_addr': '0.0.0.0' });
      await s.cleanup();
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).key).to.equal('http.tokens');
    expect((err as Error).message).to.include('http.allow_anonymous=true');
  });

  it('http.allow_anonymous=true serves /metrics beyond loopback without a token', async () => {
    const server = await startTestServer({ 'http.listen_addr': '0.0.0.0', 'http.allow_anonymous': 'true' });
    try {
      expect((await get(server.httpPort!, '/metrics')).status).to.equal(200);
    } finally {
      await server.cleanup();
    }
  });

  it('http.enabled=false: no HTTP listener', async () => {
    const server = await startTestServer({ 'http.enabled': 'false' });
    try {
      expect(server.httpPort).to.equal(undefined);
    } finally {
      await server.cleanup();
    }
  });
});
