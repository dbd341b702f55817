import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { loadConfig } from '../../src/config/load-config.js';
import { epochSecondToParts, recordsChecksum, type Batch } from '../../src/domain/batch.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { columns, directBuckets, expectSameColumns, samplesOf } from '../helpers/direct-stats.js';
import { buildMessage, udpRequest } from '../helpers/sip-client.js';

const TOKEN = 'read-api-token-0123456789';
const DEVICE = 'meter-q';
const DAY = Date.UTC(2026, 11, 1);

/** A batch of `n` records at `sec` starting at startUs, values mixing signs and decimals. */
function batch(sec: number, n: number, startUs = 0, seed = 1): Batch {
  const step = Math.floor((1_000_000 - startUs) / n);
  const recs = Array.from(
    { length: n },
    (_, i) => `${startUs + i * step},${(((sec * 7 + i * 37 + seed) % 2001) - 1000) / 8}`,
  );
  const values = recs.join(';');
  return {
    device_id: DEVICE,
    ...epochSecondToParts(sec),
    start_us: String(startUs).padStart(6, '0'),
    end_us: String(startUs + (n - 1) * step).padStart(6, '0'),
    ec_consumption_values: values,
    values_count: n,
    values_checksum: recordsChecksum(values),
    batch_seq: null,
    insert_time: DAY,
  };
}

describe('HTTP read API: consumption, daily, sync on a real server and SQLite file', function () {
  this.timeout(60_000);
  let dir: string;
  let server: RunningServer;
  const batches: Batch[] = [];

  const api = async (path: string, headers: Record<string, string> = {}, token: string | null = TOKEN) => {
    const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
      headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
  };
  const json = async (path: string) => {
    const r = await api(path);
    expect(r.status, r.text).to.equal(200);
    return JSON.parse(r.text) as Record<string, unknown> & Record<string, number[]>;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-read-api-'));
    const { config } = loadConfig({
      configPath: null,
      overrides: {
        'sip.port': '0',
        'sync.enabled': 'false',
        'http.port': '0',
        'http.tokens': TOKEN,
        'storage.path': join(dir, 'data'),
      },
    });
    server = await startServer(config, pino({ level: 'silent' }), undefined, { syncSchedule: false });
    // The registry learns the device from a real MESSAGE; the day's data goes into the store directly.
    const stamp = new Date(Date.now() - 5000).toISOString().replace(/\D/g, '').slice(0, 14);
    const msg = buildMessage({ port: server.port, body: `${DEVICE}|${stamp}|1000,1.5;2000,2.5` });
    expect((await udpRequest(server.port, msg))?.status).to.equal(200);
    const s0 = DAY / 1000 + 10 * 3600;
    for (let s = s0; s < s0 + 1800; s += 3) batches.push(batch(s, 5 + (s % 7)));
    // Two sub-second batches in one second, and a gap of 10 minutes.
    batches.push(batch(s0 + 1, 4, 0, 2), batch(s0 + 1, 4, 500_000, 3));
    for (let s = s0 + 2400; s < s0 + 2700; s++) batches.push(batch(s, 10));
    // Both sides of midnight.
    batches.push(batch(DAY / 1000 + 86_399, 3), batch(DAY / 1000 + 86_400, 3));
    await server.store.upsertBatches(batches);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const path = (q: string) => `/api/devices/${DEVICE}/consumption?${q}`;

  for (const [step, ms] of [
    ['1s', 1000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
  ] as const) {
    it(`step=${step}: each bucket's count/sum/min/max/mean equals a direct computation from the samples`, async () => {
      const from = step === '1s' ? DAY + 10 * 3_600_000 : DAY;
      const to = step === '1s' ? from + 3_600_000 : DAY + 2 * 86_400_000;
      const a = await json(path(`step=${step}&from=${from}&to=${to}`));
      expect(a).to.include({ device: DEVICE, step, from, to });
      const want = directBuckets(batches, ms, from, to);
      expect(want.length).to.be.greaterThan(0);
      expectSameColumns(a, columns(want));
    });
  }

  it('from/to in ISO-8601 (UTC, with or without Z) are widened to whole buckets', async () => {
    const a = await json(path('step=1m&from=2026-12-01T10:00:30&to=2026-12-01T10:05:00Z'));
    expect([a.from, a.to]).to.deep.equal([DAY + 36_000_000, DAY + 36_300_000]);
    expect(a.t).to.deep.equal([0, 1, 2, 3, 4].map((m) => DAY + 36_000_000 + m * 60_000));
  });

  it('step=raw returns the samples of [from, to) exactly; gaps are missing t values', async () => {
    const from = DAY + 10 * 3_600_000 + 500;
    const to = from + 20_000;
    const a = await json(path(`step=raw&from=${from}&to=${to}`));
    const want = samplesOf(batches).filter((s) => s.t >= from && s.t < to);
    expect(a).to.include({ step: 'raw', from, to });
    expect(a.t).to.deep.equal(want.map((s) => s.t));
    expect(a.value).to.deep.equal(want.map((s) => s.v));
  });

  it('streams CSV (header row) and JSON Lines with the same numbers as JSON', async () => {
    const q = `step=1m&from=${DAY}&to=${DAY + 86_400_000}`;
    const j = await json(path(q));
    const csv = await api(path(q), { accept: 'text/csv' });
    expect(csv.type).to.match(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\n');
    expect(lines[0]).to.equal('t,count,sum,min,max,mean');
    expect(lines.slice(1).map((l) => Number(l.split(',')[0]))).to.deep.equal(j.t);
    expect(lines.slice(1).map((l) => Number(l.split(',')[2]))).to.deep.equal(j.sum);
    const nd = await api(path(q), { accept: 'application/x-ndjson' });
    expect(nd.type).to.match(/^application\/x-ndjson/);
    const rows = nd.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: number; max: number });
    expect(rows.map((r) => r.max)).to.deep.equal(j.max);
    const raw = await api(path(`step=raw&from=${DAY + 36_000_000}&to=${DAY + 36_060_000}&format=csv`));
    const rawLines = raw.text.trimEnd().split('\n');
    expect(rawLines[0]).to.equal('t,value');
    const want = samplesOf(batches).filter((s) => s.t >= DAY + 36_000_000 && s.t < DAY + 36_060_000);
    expect(rawLines.slice(1)).to.deep.equal(want.map((s) => `${s.t},${s.v}`));
  });

  it('daily: total, mean, peak and when, min, samples, coverage and the sync status of each day', async () => {
    await server.store.writeIntervalCheck({
      device_id: DEVICE,
      ec_date: '20261201',
      ec_time: '100000',
      interval_seconds: 3600,
      values_count: 0,
      values_checksum: '',
      check_time: DAY + 40_000_000,
      check_times: 1,
      status: 'repaired',
    });
    const a = (await json(`/api/devices/${DEVICE}/daily?from=2026-12-01&to=2026-12-03`)) as unknown as {
      days: Record<string, unknown>[];
    };
    expect(a.days.map((d) => d.day)).to.deep.equal(['2026-12-01', '2026-12-02']);
    const samples = samplesOf(batches).filter((s) => s.t < DAY + 86_400_000);
    const peak = samples.reduce((m, s) => (s.v > m.v ? s : m));
    const sum = samples.reduce((x, s) => x + s.v, 0);
    const d = a.days[0]!;
    expect(d.samples).to.equal(samples.length);
    expect(d.total).to.be.closeTo(sum, 1e-6);
    expect(d.mean).to.be.closeTo(sum / samples.length, 1e-6);
    expect([d.peak, d.peak_at, d.min]).to.deep.equal([peak.v, peak.t, Math.min(...samples.map((s) => s.v))]);
    const seconds = new Set(samples.map((s) => Math.floor(s.t / 1000))).size;
    expect(d.coverage).to.equal(seconds / 86_400);
    expect(d.sync_status).to.equal('repaired');
    expect(a.days[1]).to.include({ samples: 3, sync_status: 'unchecked' });
  });

  it('sync: the periods of ec_checksum with start, end and status', async () => {
    const a = (await json(`/api/devices/${DEVICE}/sync?from=${DAY}&to=${DAY + 86_400_000}`)) as unknown as {
      periods: Record<string, unknown>[];
    };
    expect(a.periods.map((p) => [p.start, p.end, p.status])).to.deep.equal([
      [DAY + 36_000_000, DAY + 39_600_000, 'repaired'],
    ]);
  });

  it('400 with {error, message} for bad parameters, 404 for an unknown device, 401 without the token', async () => {
    const bad = async (q: string, code: string, re: RegExp) => {
      const r = await api(path(q));
      expect(r.status, q).to.equal(400);
      const body = JSON.parse(r.text) as { error: string; message: string };
      expect(body.error).to.equal(code);
      expect(body.message).to.match(re);
    };
    await bad('step=5m', 'EC_QUERY_BAD_PARAM', /step="5m" is not one of raw, 1s, 1m, 1h, 1d/);
    await bad('step=1m&from=yesterday', 'EC_QUERY_BAD_PARAM', /from="yesterday"/);
    await bad(`step=1m&from=${DAY}&to=${DAY - 1000}`, 'EC_QUERY_BAD_PARAM', /must be after/);
    await bad(`step=raw&from=${DAY}&to=${DAY + 3_600_001}`, 'EC_QUERY_SPAN_TOO_LONG', /at most 3600000 ms \(1 h\)/);
    await bad(`step=1m&format=xml`, 'EC_QUERY_BAD_PARAM', /format/);
    const unknown = await api('/api/devices/nobody/consumption?step=1m');
    expect(unknown.status).to.equal(404);
    expect(JSON.parse(unknown.text)).to.include({ error: 'EC_QUERY_UNKNOWN_DEVICE' });
    expect((await api('/api/devices/bad%20id/daily')).status).to.equal(400);
    expect((await api(path('step=1m'), {}, null)).status).to.equal(401);
  });
});
