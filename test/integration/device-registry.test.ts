import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import pino from 'pino';
import { loadConfig } from '../../src/config/load-config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { runBin } from '../helpers/server-process.js';
import { buildMessage, udpRequest } from '../helpers/sip-client.js';
import { until } from '../helpers/until.js';

const TOKEN = 'registry-token-0123456789';

interface Listed {
  device_id: string;
  state: string;
  first_seen_ms: number;
  last_seen_ms: number;
  last_seq: number | null;
  batches_today: number;
  samples_today: number;
}

describe('device registry: a real server, real UDP meters, a restart', function () {
  this.timeout(60_000);
  let dir: string;
  let server: RunningServer | undefined;
  const logged: { msg: string; device?: string }[] = [];

  const start = async () => {
    const { config } = loadConfig({
      configPath: null,
      overrides: {
        'sip.port': '0',
        'sync.enabled': 'false',
        'http.port': '0',
        'http.tokens': TOKEN,
        'storage.path': join(dir, 'data'),
        'devices.offline_after': '1',
        'devices.flush_seconds': '3600',
      },
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          logged.push(JSON.parse(line) as { msg: string; device?: string });
        done();
      },
    });
    server = await startServer(config, pino({ level: 'info' }, sink), undefined, { syncSchedule: false });
    return server;
  };
  const api = async (path: string, token: string | null = TOKEN) => {
    const res = await fetch(`http://127.0.0.1:${server!.httpPort}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    return { status: res.status, text: await res.text() };
  };
  const devices = async (query = '') => {
    const r = await api(`/api/devices${query}`);
    expect(r.status, r.text).to.equal(200);
    return JSON.parse(r.text) as { devices: Listed[]; next: string | null };
  };
  const transitions = async () => {
    const r = await api('/metrics');
    return Number(/^ec_device_offline_transitions_total (\d+)$/m.exec(r.text)![1]);
  };
  let seq = 0;
  const send = async (device: string, records = 3) => {
    const stamp = new Date(Date.now() - 5000).toISOString().replace(/\D/g, '').slice(0, 14);
    const values = Array.from({ length: records }, (_, i) => `${(i + 1) * 1000},${i}.5`).join(';');
    const msg = buildMessage({
      port: server!.port,
      body: `${device}|${stamp}|${values}`,
      extraHeaders: [`X-EC-Seq: ${++seq}`],
    });
    expect((await udpRequest(server!.port, msg))?.status).to.equal(200);
  };
  /** Polls the API until `device` is in `state` (the threshold is 1 s; the wait is bounded, not asserted). */
  const untilState = async (device: string, state: string) => {
    let now: string | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      now = (await devices()).devices.find((d) => d.device_id === device)?.state;
      if (now === state) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${device} did not turn ${state} (is ${now})`);
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ec-registry-it-'));
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a silent meter turns offline after devices.offline_after, logged, counted once; online on resuming', async () => {
    await start();
    expect((await api('/api/devices', null)).status, 'behind the bearer token').to.equal(401);
    await send('meter-a', 3);
    await send('meter-a', 4);
    const first = (await devices()).devices;
    expect(first.map((d) => [d.device_id, d.state, d.batches_today, d.samples_today, d.last_seq])).to.deep.equal([
      ['meter-a', 'online', 2, 7, 2],
    ]);
    expect(await transitions()).to.equal(0);

    await untilState('meter-a', 'offline');
    expect((await devices('?state=offline')).devices.map((d) => d.device_id)).to.deep.equal(['meter-a']);
    expect((await devices('?state=online')).devices).to.deep.equal([]);
    // The check keeps running: still one transition once several more checks have passed.
    await until(() => server!.devices.stats.offlineTransitions >= 1, 'the transition');
    const checks = server!.devices.stats.checks;
    await until(() => server!.devices.stats.checks >= checks + 3, 'three more offline checks');
    expect(await transitions()).to.equal(1);
    expect(logged.filter((l) => l.msg === 'device offline').map((l) => l.device)).to.deep.equal(['meter-a']);
    expect((await api('/metrics')).text).to.match(/^ec_devices\{state="offline"\} 1$/m);

    await send('meter-a', 5);
    expect((await devices('?state=online')).devices.map((d) => [d.device_id, d.batches_today])).to.deep.equal([
      ['meter-a', 3],
    ]);
    expect(logged.filter((l) => l.msg === 'device online again').map((l) => l.device)).to.deep.equal(['meter-a']);
    expect(await transitions()).to.equal(1);
  });

  it('pages with limit and after; refuses a bad query with 400', async () => {
    await send('meter-b');
    await send('meter-c');
    const p1 = await devices('?limit=2');
    expect(p1.devices.map((d) => d.device_id)).to.deep.equal(['meter-a', 'meter-b']);
    expect(p1.next).to.equal('meter-b');
    const p2 = await devices(`?limit=2&after=${p1.next}`);
    expect(p2).to.deep.include({ next: null });
    expect(p2.devices.map((d) => d.device_id)).to.deep.equal(['meter-c']);
    expect((await api('/api/devices?state=gone')).status).to.equal(400);
    expect((await api('/api/devices?limit=0')).status).to.equal(400);
  });

  it('survives a restart (flushed at stop, loaded at start); `ec-server devices` reads the same table', async () => {
    const before = (await devices()).devices;
    await server!.stop();
    server = undefined;
    await start();
    const after = (await devices()).devices;
    expect(
      after.map((d) => [d.device_id, d.first_seen_ms, d.last_seq, d.batches_today, d.samples_today]),
    ).to.deep.equal(before.map((d) => [d.device_id, d.first_seen_ms, d.last_seq, d.batches_today, d.samples_today]));
    expect(after.find((d) => d.device_id === 'meter-a')).to.include({ batches_today: 3, samples_today: 12 });
    await send('meter-a', 1);
    expect((await devices()).devices.find((d) => d.device_id === 'meter-a')).to.include({ batches_today: 4 });
    await untilState('meter-a', 'offline');
    await server!.stop();
    server = undefined;

    const cli = (...args: string[]) =>
      runBin('ec-server', ['devices', '--data-dir', join(dir, 'data'), '--set', 'devices.offline_after=1', ...args]);
    const json = await cli('--json');
    expect(json.code, json.stderr).to.equal(0);
    const rows = JSON.parse(json.stdout) as Listed[];
    expect(rows.map((d) => [d.device_id, d.state, d.batches_today])).to.deep.equal([
      ['meter-a', 'offline', 4],
      ['meter-b', 'offline', 1],
      ['meter-c', 'offline', 1],
    ]);
    const offline = await cli('--offline');
    expect(offline.stdout.split('\n')[0]).to.equal(
      'device\tstate\tfirst_seen\tlast_seen\tlast_seq\tbatches_today\tsamples_today',
    );
    expect(offline.stdout.trim().split('\n')).to.have.length(4);
    expect(offline.stderr).to.equal('ec-server: 3 device(s) offline (not seen for 1 s)\n');
  });
});
