import { openSync, readFileSync, statSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import pino from 'pino';
import { loadConfig } from '../../src/config/load-config.js';
import { startServer } from '../../src/server.js';
import { epochSecondToParts } from '../../src/domain/batch.js';
import { SQLITE_FILE } from '../../src/store/sqlite-store.js';
import { bodyOf, makeBatch } from '../helpers/batches.js';
import { runBin } from '../helpers/server-process.js';
import { buildMessage, udpRequest } from '../helpers/sip-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** Integrity edges (issue 14, item 8): batches from the future, a damaged store file. */

const stampOf = (epochS: number) => {
  const p = epochSecondToParts(epochS);
  return p.ec_date + p.ec_time;
};

for (const writer of ['thread', 'inline'])
  describe(`integrity: batches ahead of the server clock (sqlite writer ${writer})`, function () {
    this.timeout(20_000);
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ 'ingest.max_future_seconds': '300', 'storage.sqlite_writer': writer });
    });
    after(async () => {
      await server?.cleanup();
    });

    it('an hour ahead: 400 naming the timestamp and the bound, nothing stored; a minute ahead: stored', async () => {
      const nowS = Math.floor(Date.now() / 1000);
      const ahead = makeBatch('future-1', nowS + 3600);
      const res = await udpRequest(server.port, buildMessage({ port: server.port, body: bodyOf(ahead) }));
      expect(res!.status).to.equal(400);
      const stamp = stampOf(nowS + 3600);
      expect(res!.reason).to.match(
        new RegExp(
          `^Timestamp in the future: ${stamp} is 3[56]\\d\\d s ahead of the server clock ` +
            '\\(ingest\\.max_future_seconds = 300\\)$',
        ),
      );
      expect(await server.store.readBatches({ device_id: 'future-1', from: nowS, to: nowS + 7200 })).to.deep.equal([]);

      const soon = makeBatch('future-2', nowS + 60);
      const ok = await udpRequest(server.port, buildMessage({ port: server.port, body: bodyOf(soon) }));
      expect(ok!.status).to.equal(200);
      expect(await server.store.readBatches({ device_id: 'future-2', from: nowS, to: nowS + 120 })).to.have.length(1);
    });
  });

describe('integrity: a damaged SQLite file is refused at start', function () {
  this.timeout(60_000);

  it(
    'PRAGMA quick_check fails: the server does not start, and the message names the file (in process and as ' +
      'ec-server)',
    async () => {
      const first = await startTestServer();
      const dataDir = first.config.storage.path;
      const T0 = Date.UTC(2026, 0, 1) / 1000;
      for (let i = 0; i < 10; i++) {
        await first.store.upsertBatches(Array.from({ length: 300 }, (_, k) => makeBatch(`dev-${k}`, T0 + i, 50)));
      }
      await first.stop();
      const file = join(dataDir, SQLITE_FILE);
      const size = statSync(file).size;
      expect(size).to.be.greaterThan(200 * 4096);
      // Garbage over 20 pages in the middle of the file (pages of the table and its index).
      const fd = openSync(file, 'r+');
      const garbage = Buffer.alloc(20 * 4096, 0xa5);
      writeSync(fd, garbage, 0, garbage.length, Math.floor(size / 2 / 4096) * 4096);
      closeSync(fd);
      const damaged = readFileSync(file);

      let error: Error | undefined;
      try {
        const again = await startTestServer({ 'storage.path': dataDir });
        await again.stop();
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message).to.match(
        new RegExp(
          `^cannot open SQLite store ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .* is damaged \\(PRAGMA quick_check: `,
        ),
      );

      const run = await runBin('ec-server', [
        '--data-dir',
        dataDir,
        '--port',
        '0',
        '--set',
        'sync.port=0',
        '--set',
        'http.port=0',
        '--log-level',
        'silent',
      ]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include(`${file} is damaged (PRAGMA quick_check:`);
      // Refused, not repaired or rewritten.
      expect(readFileSync(file).equals(damaged)).to.equal(true);
      await first.cleanup();
    },
  );
});

describe('integrity: one forged X-EC-Seq does not silence later gaps', function () {
  this.timeout(20_000);
  it('seq 1, 999999999999999 (forged), 2, 5 on a real server: the gap before 5 is still logged', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        cb();
      },
    });
    const dir = mkdtempSync(join(tmpdir(), 'ec-seq-'));
    const { config } = loadConfig({
      configPath: null,
      overrides: { 'sip.port': '0', 'sync.enabled': 'false', 'http.port': '0', 'storage.path': join(dir, 'data') },
    });
    const server = await startServer(config, pino({ level: 'info' }, sink));
    try {
      const T0 = Date.UTC(2026, 0, 1) / 1000;
      for (const [i, seq] of [1, 999_999_999_999_999, 2, 5].entries()) {
        const body = bodyOf(makeBatch('seq-1', T0 + i));
        const res = await udpRequest(
          server.port,
          buildMessage({ port: server.port, body, extraHeaders: [`X-EC-Seq: ${seq}`] }),
        );
        expect(res!.status).to.equal(200);
      }
      const gaps = lines.filter((l) => l.msg === 'batch sequence gap').map((l) => [l.seq, l.expected]);
      expect(gaps).to.deep.equal([
        [999_999_999_999_999, 2],
        [5, 3],
      ]);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
