import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { epochSecondToParts } from '../../src/domain/batch.js';
import type { HourReport } from '../../src/report/hour-report.js';
import { SQLITE_FILE } from '../../src/store/sqlite-store.js';
import { makeBatch } from '../helpers/batches.js';
import { runBin } from '../helpers/server-process.js';
import { buildMessage, UdpPeer } from '../helpers/sip-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** `ec-test` reports exactly what a test run sent: counts per minute, gaps, damage. */
describe('ec-test', function () {
  this.timeout(60_000);
  let server: TestServer;
  const H = Date.UTC(2026, 2, 1, 10) / 1000; // 2026-03-01 10:00 UTC
  const stamp = (sec: number) => {
    const p = epochSecondToParts(sec);
    return p.ec_date + p.ec_time;
  };
  const records = (n: number, startUs: number) =>
    Array.from({ length: n }, (_, i) => `${startUs + i * 1000},${i}.25`).join(';');
  let dataDir: string;
  const ecTest = (args: string[]) => runBin('ec-test', ['--data-dir', dataDir, ...args]);

  before(async () => {
    server = await startTestServer();
    dataDir = join(server.dir, 'data');
    // What a meter sends: minute 0 complete; minute 1 without :30-:39 and with a second
    // sub-second batch in :05; minute 2 only :00-:09.
    const bodies: string[] = [];
    for (let s = 0; s < 60; s++) bodies.push(`meter|${stamp(H + s)}|${records(10, 0)}`);
    for (let s = 0; s < 60; s++) if (s < 30 || s >= 40) bodies.push(`meter|${stamp(H + 60 + s)}|${records(10, 0)}`);
    bodies.push(`meter|${stamp(H + 65)}|${records(4, 600_000)}`);
    for (let s = 0; s < 10; s++) bodies.push(`meter|${stamp(H + 120 + s)}|${records(10, 0)}`);
    const peer = new UdpPeer();
    for (const body of bodies) peer.send(server.port, buildMessage({ port: server.port, body }));
    await peer.waitFor(bodies.length, 10_000);
    peer.close();
    expect(peer.responses.filter((r) => r.status === 200)).to.have.length(bodies.length);
    // A complete hour for another device, written straight to the store.
    await server.store.upsertBatches(Array.from({ length: 3600 }, (_, s) => makeBatch('full', H + s, 5, 0, s)));
    // Two 1000-record batches, stored deflated (storage.sqlite_compression's default).
    await server.store.upsertBatches([makeBatch('big', H, 1000, 0, 1), makeBatch('big', H + 1, 1000, 0, 2)]);
    await server.stop();
  });
  after(async () => {
    await server?.cleanup();
  });

  it('reports counts per minute, seconds without data and gaps; exit 1 for missing data', async () => {
    const r = await ecTest(['-i', 'meter', '-d', stamp(H + 1234), '--json']);
    expect(r.code, r.stderr).to.equal(1);
    const rep = JSON.parse(r.stdout) as HourReport;
    expect(rep.hour).to.equal('2026-03-01T10:00:00.000Z');
    expect(rep.batches).to.equal(121);
    expect(rep.samples).to.equal(1204);
    expect(rep.minutes.slice(0, 4).map((m) => [m.minute, m.batches, m.samples, m.secondsWithoutData])).to.deep.equal([
      ['10:00', 60, 600, 0],
      ['10:01', 51, 504, 10],
      ['10:02', 10, 100, 50],
      ['10:03', 0, 0, 60],
    ]);
    expect(rep.secondsWithoutData).to.equal(10 + 50 + 57 * 60);
    expect(rep.gaps).to.deep.equal([
      { from: '10:01:30', to: '10:01:39', seconds: 10 },
      { from: '10:02:10', to: '10:59:59', seconds: 3470 },
    ]);
    expect(rep.damaged).to.deep.equal([]);
    expect(rep.result).to.equal('missing');
  });

  it('a complete, intact hour exits 0 with a readable report', async () => {
    const r = await ecTest(['-i', 'full', '-d', stamp(H)]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('batches 3600, samples 18000, seconds without data 0 of 3600 due');
    expect(r.stdout).to.match(/^10:59\s+60\s+300\s+0\s+-$/m);
    expect(r.stdout).to.match(/result: OK\n$/);
  });

  it('a stored value altered after the fact is reported damaged, exit 1', async () => {
    const db = new Database(join(dataDir, SQLITE_FILE));
    const p = epochSecondToParts(H + 1800);
    db.prepare(
      "UPDATE ec_consumption SET ec_consumption_values = replace(ec_consumption_values, ',', ',9') WHERE " +
        "device_id = 'full' AND ec_date = ? AND ec_time = ?",
    ).run(p.ec_date, p.ec_time);
    db.close();
    const r = await ecTest(['-i', 'full', '-d', stamp(H), '--json']);
    expect(r.code).to.equal(1);
    const rep = JSON.parse(r.stdout) as HourReport;
    expect(rep.result).to.equal('damaged');
    expect(rep.damaged).to.deep.equal([
      {
        key: `${p.ec_date}${p.ec_time}.000000-${makeBatch('full', H, 5).end_us}`,
        problem: 'checksum does not match values',
      },
    ]);
  });

  it('a compressed row whose bytes were damaged is reported damaged (exit 1), its intact neighbour not', async () => {
    const db = new Database(join(dataDir, SQLITE_FILE));
    const p = epochSecondToParts(H + 1);
    const kinds = db
      .prepare("SELECT typeof(ec_consumption_values) AS t FROM ec_consumption WHERE device_id = 'big'")
      .all() as { t: string }[];
    expect(kinds.map((k) => k.t)).to.deep.equal(['blob', 'blob']);
    // Not a valid deflate stream (block type 3 is reserved).
    db.prepare(
      "UPDATE ec_consumption SET ec_consumption_values = X'FFFFFF' WHERE device_id = 'big' AND ec_date = ? " +
        'AND ec_time = ?',
    ).run(p.ec_date, p.ec_time);
    db.close();
    const r = await ecTest(['-i', 'big', '-d', stamp(H), '--json']);
    expect(r.code, r.stderr).to.equal(1);
    const rep = JSON.parse(r.stdout) as HourReport;
    expect(rep.damaged).to.deep.equal([
      {
        key: `${p.ec_date}${p.ec_time}.000000-${makeBatch('big', H + 1, 1000).end_us}`,
        problem: 'checksum does not match values',
      },
    ]);
  });

  it('bad arguments exit 2 with a clear message', async () => {
    const badDate = await ecTest(['-i', 'meter', '-d', '20261301000000']);
    expect(badDate.code).to.equal(2);
    expect(badDate.stderr).to.include('-d "20261301000000" is not a real yyyymmddhhmiss');
    const noDevice = await ecTest(['-d', stamp(H)]);
    expect(noDevice.code).to.equal(2);
    expect(noDevice.stderr).to.match(/Missing required argument: i/);
    const badConfig = await ecTest(['-i', 'meter', '--set', 'storage.backend=mongo']);
    expect(badConfig.code).to.equal(2);
    expect(badConfig.stderr).to.include('key storage.backend: "mongo" is not one of sqlite, cassandra');
  });

  it('a file that is not a store exits 2 with one line saying so, no stack trace', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'ec-test-bad-'));
    try {
      writeFileSync(join(bad, SQLITE_FILE), 'not a database, only text\n'.repeat(100));
      const r = await runBin('ec-test', ['--data-dir', bad, '-i', 'meter', '-d', stamp(H)]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.equal(
        `ec-test: cannot open SQLite store ${join(bad, SQLITE_FILE)}: file is not a database\n`,
      );
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it('a data directory without a store exits 2 naming the path, and creates nothing there', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'ec-test-missing-'));
    try {
      const missing = join(empty, 'data');
      const r = await runBin('ec-test', ['--data-dir', missing, '-i', 'meter', '-d', stamp(H)]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.include(`no store at ${join(missing, SQLITE_FILE)}`);
      expect(r.stdout).to.equal('');
      expect(readdirSync(empty)).to.deep.equal([]);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
