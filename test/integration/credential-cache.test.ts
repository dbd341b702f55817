import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { CredentialCache } from '../../src/auth/credential-cache.js';
import { credentialFor, type DeviceCredential } from '../../src/domain/device-credential.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { SQLITE_FILE, SqliteStore } from '../../src/store/sqlite-store.js';
import Database from 'better-sqlite3';
import { until } from '../helpers/until.js';

/** A real SQLite store that counts the server's per-device credential reads. */
class CountingStore extends SqliteStore {
  lookups = 0;
  override async readCredential(deviceId: string): Promise<DeviceCredential | undefined> {
    this.lookups++;
    return super.readCredential(deviceId);
  }
}

/**
 * The server's credential cache over a real SQLite file, with `ec-server device add|remove` played by a
 * second store on the same file (another process's connection): a device missing from memory costs no
 * store read, and a change shows within a poll.
 */
describe('credential cache: version polls instead of a read per unknown device (real SQLite file)', function () {
  this.timeout(20_000);
  const log = pino({ level: 'silent' });
  let dir: string;
  let store: CountingStore;
  let cli: SqliteStore;
  let cache: CredentialCache;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-credcache-'));
    store = new CountingStore({ dir, synchronous: 'NORMAL' });
    await store.open();
    cli = new SqliteStore({ dir, synchronous: 'NORMAL' });
    await cli.open();
    await cli.putCredential(credentialFor('known', 'ec-server', 'secret', Date.now()));
    cache = new CredentialCache(store, { refreshMs: 60_000, pollMs: 50, negativeMs: 1000, maxNegative: 100 }, log);
    await cache.start();
  });
  afterEach(async () => {
    await cache.stop();
    await cli.close();
    await store.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers anonymous requests from memory: no store read, however many devices', async () => {
    for (let i = 0; i < 5000; i++) expect(cache.forAnonymous(`anonymous-${i}`)).to.equal(undefined);
    expect(cache.forAnonymous('known')).to.have.property('device_id', 'known');
    expect(store.lookups, 'store reads').to.equal(0);
  });

  it('looks up a device that presents credentials but is missing from memory, once per negativeMs', async () => {
    const added = credentialFor('just-added', 'ec-server', 's', Date.now());
    await cli.putCredential(added);
    // Before the next poll: the peer's claim is checked against the store, not refused.
    const first = cache.get('just-added');
    expect(await first).to.deep.equal(added);
    expect(await cache.get('stranger')).to.equal(undefined);
    expect(cache.get('stranger'), 'the absence is remembered').to.equal(undefined);
    expect(store.lookups).to.be.at.most(2);
  });

  it('sees a credential added, rotated and removed by another process within a poll', async () => {
    expect(cache.forAnonymous('new-meter')).to.equal(undefined);
    const added = credentialFor('new-meter', 'ec-server', 'first', Date.now());
    await cli.putCredential(added);
    await until(() => cache.peek('new-meter') !== undefined, 'the added credential', 2000);
    expect(cache.forAnonymous('new-meter')).to.deep.equal(added);
    const rotated = credentialFor('new-meter', 'ec-server', 'second', Date.now() + 1, added.created_ms);
    await cli.putCredential(rotated);
    await until(() => cache.peek('new-meter')?.ha1_sha256 === rotated.ha1_sha256, 'the rotated credential', 2000);
    await cli.removeCredential('known');
    await until(() => cache.peek('known') === undefined, 'the removal', 2000);
    expect(store.lookups, 'store reads').to.equal(0);
  });

  it('reloads the whole table every refreshMs: a change made without the version token shows too', async () => {
    await cache.stop();
    cache = new CredentialCache(store, { refreshMs: 300, pollMs: 50, negativeMs: 1000, maxNegative: 100 }, log);
    await cache.start();
    // Written by hand (an older ec-server device, or SQL), without touching ec_meta.
    const db = new Database(join(dir, SQLITE_FILE));
    const c = credentialFor('by-hand', 'ec-server', 'secret', Date.now());
    db.prepare(
      'INSERT INTO ec_device_credential (device_id, realm, ha1_md5, ha1_sha256, created_ms, updated_ms) ' +
        'VALUES (@device_id, @realm, @ha1_md5, @ha1_sha256, @created_ms, @updated_ms)',
    ).run(c);
    db.close();
    await until(() => cache.peek('by-hand') !== undefined, 'the full reload', 3000);
  });

  it('looks an anonymous device up in the store only once polls have failed for negativeMs', async () => {
    await store.close(); // the store goes away: polls fail from now on
    expect(cache.forAnonymous('stranger'), 'the last poll is recent').to.equal(undefined);
    await new Promise((r) => setTimeout(r, 1100));
    const answer = cache.forAnonymous('stranger');
    expect(answer, 'asks the store').to.be.instanceOf(Promise);
    const err = await (answer as Promise<unknown>).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'the store is down: 503 as for a write').to.be.instanceOf(StoreUnavailableError);
    expect(store.lookups).to.equal(1);
  });
});
