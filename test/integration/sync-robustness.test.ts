import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { makeBatch } from '../helpers/batches.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { pollUntil } from '../helpers/wait.js';

/** Bad frames, oversized frames, wrong versions, silent clients: clear errors, bounded memory, no crash. */

interface Exchange {
  frames: Record<string, unknown>[];
  closed: boolean;
}

function talk(
  port: number,
  write: (s: net.Socket) => void,
  waitMs = 3000,
  onFrame?: (f: Record<string, unknown>, s: net.Socket) => void,
): Promise<Exchange> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const frames: Record<string, unknown>[] = [];
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ frames, closed: false });
    }, waitMs);
    s.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const f = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        frames.push(f);
        onFrame?.(f, s);
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ frames, closed: true });
    });
    s.on('connect', () => write(s));
  });
}

const hello = (devices: unknown = ['dev-1'], version = 1) =>
  JSON.stringify({ type: 'hello', version, devices, retention_s: 900 }) + '\n';

describe('sync service robustness', function () {
  this.timeout(30_000);
  const T0 = Date.UTC(2026, 3, 1) / 1000;
  let now = T0;
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'sync.syncfreq': '10', 'sync.request_timeout': '1' }, { now: () => now });
  });
  after(async () => {
    await server?.cleanup();
  });

  async function expectError(data: string | Buffer, code: string): Promise<void> {
    const ex = await talk(server.syncPort!, (s) => s.write(data));
    expect(ex.closed, 'connection closed').to.equal(true);
    expect(ex.frames.map((f) => f.code)).to.include(code);
    const message = ex.frames.find((f) => f.code === code)!.message;
    expect(message).to.be.a('string').and.not.equal('');
    // Still serving: a good hello is welcomed.
    const ok = await talk(
      server.syncPort!,
      (s) => s.write(hello()),
      3000,
      (f, s) => f.type === 'welcome' && s.destroy(), // done at the welcome, no fixed wait
    );
    expect(ok.frames.map((f) => f.type)).to.deep.equal(['challenge', 'welcome']);
    expect(ok.frames[1]).to.include({ type: 'welcome', version: 1, period_s: 600 });
  }

  it('a frame that is not JSON', () => expectError('this is not json\n', 'EC_SYNC_BAD_JSON'));
  it('a JSON frame without a type', () => expectError('[1,2,3]\n', 'EC_SYNC_BAD_FRAME'));
  it('a frame over 4 MiB (no newline): refused without buffering it all', () =>
    expectError(Buffer.alloc(5 * 1024 * 1024, 0x61), 'EC_SYNC_FRAME_TOO_LARGE'));
  it('another protocol version', () => expectError(hello(['dev-1'], 2), 'EC_SYNC_VERSION'));
  it('a hello with bad device ids', () => expectError(hello(['bad id']), 'EC_SYNC_BAD_HELLO'));
  it('a request-shaped frame instead of a hello', () =>
    expectError(JSON.stringify({ type: 'digest', id: 1 }) + '\n', 'EC_SYNC_NO_HELLO'));
  it('an error frame instead of a hello (it used to be logged and the connection kept)', () =>
    expectError(JSON.stringify({ type: 'error', code: 'X', message: 'y' }) + '\n', 'EC_SYNC_NO_HELLO'));
  it('a second hello', () => expectError(hello() + hello(), 'EC_SYNC_UNEXPECTED'));

  it('a client that never answers: the request times out, the period stays pending, nothing crashes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ec-silent-'));
    try {
      await server.store.upsertBatches([makeBatch('silent', T0 + 5)]);
      now = T0 + 600 + 61;
      await Promise.all(server.sync!.catchUps.splice(0)); // the earlier tests' clients
      let client: net.Socket | undefined;
      const ex = talk(
        server.syncPort!,
        (s) => {
          client = s;
          s.write(hello(['silent']));
        },
        10_000,
      );
      await pollUntil(() => server.sync!.catchUps.length > 0, 'the hello to start a catch-up');
      const reports = await Promise.all(server.sync!.catchUps.splice(0));
      const all = reports.flatMap((r) => r.errors);
      expect(all.map((e) => e.error).join()).to.match(/no answer to digest #1 within 1000 ms/);
      const checks = await server.store.readIntervalChecks({ device_id: 'silent', from: T0, to: T0 + 600 });
      expect(checks.filter((c) => c.status === 'verified' || c.status === 'repaired')).to.deep.equal([]);
      client?.destroy(); // the round is over: what the server sent until now is all it sent
      (await ex).frames.forEach((f) => expect(f.type).to.be.oneOf(['challenge', 'welcome', 'digest']));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
