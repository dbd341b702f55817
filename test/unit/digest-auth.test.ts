import { expect } from 'chai';
import pino from 'pino';
import { parseCredentials, parseDigestCredentials } from '../../src/auth/auth-params.js';
import { CredentialCache } from '../../src/auth/credential-cache.js';
import { DigestAuthenticator, type AuthRequest } from '../../src/auth/digest-authenticator.js';
import { NonceCounts } from '../../src/auth/nonce-counts.js';
import { NonceIssuer } from '../../src/auth/nonce.js';
import { isLoopback } from '../../src/auth/loopback.js';
import { DigestSession } from '../../src/client/digest-session.js';
import { credentialFor } from '../../src/domain/device-credential.js';
import { SipRequestError } from '../../src/errors.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { expectLinear } from '../helpers/linearity.js';

const KEY = Buffer.alloc(32, 7);

describe('digest authentication: the pieces', () => {
  it('reads credentials as sipp and RFC 7616 write them, linear in the value', () => {
    const sipp =
      'Digest username="m1",realm="ec-server",cnonce="6b8b4567",nc=00000001,qop=auth-int,uri="sip:127.0.0.1:5060",' +
      'nonce="abc",response="0123",algorithm=MD5';
    const c = parseCredentials(sipp)!;
    expect(c.scheme).to.equal('Digest');
    expect(Object.fromEntries(c.params)).to.deep.include({ username: 'm1', nc: '00000001', qop: 'auth-int' });
    expect(parseCredentials('Digest realm="a \\"b\\"", x=1')!.params.get('realm')).to.equal('a "b"');
    expect(parseCredentials('Digest a=1, a=2'), 'a repeated parameter').to.equal(undefined);
    expect(parseCredentials('Digest a="open'), 'unterminated').to.equal(undefined);
    expect(parseCredentials('Basic'), 'no parameters').to.equal(undefined);
    // Linear in the value (the shapes a backtracking reader would choke on), at 7.5 KB against 60 KB.
    expectLinear('60 KB of spaces', (k) => `Digest ${' '.repeat(7_500 * k)}a=`, parseCredentials);
    expectLinear('15,000 parameters', (k) => `Digest ${'a=b, '.repeat(1_875 * k)}`, parseCredentials);
    expectLinear('30,000 escapes', (k) => `Digest a="${'\\"'.repeat(3_750 * k)}`, parseCredentials);
  });

  it("the authenticator's fixed-field reader answers exactly as parseCredentials does", () => {
    const fields = ['username', 'realm', 'nonce', 'uri', 'response', 'algorithm', 'cnonce', 'qop', 'nc'] as const;
    for (const v of [
      'Digest username="m1",realm="ec-server",cnonce="6b8b4567",nc=00000001,qop=auth-int,uri="sip:h",nonce="n",' +
        'response="0123",algorithm=MD5',
      'digest  USERNAME = "m1" , Realm="a \\"b\\"", NC=0000000a, opaque="x", Opaque2=y',
      'Digest username="m1", UserName="m2"',
      'Digest opaque="x", OPAQUE="y"',
      'Digest nonce=""',
      'Digest user_name=1, username_=2, nc_=3',
      'Digest a=1,',
      'Digest a',
      'Basic',
      ' Digest realm="x"',
    ]) {
      const general = parseCredentials(v);
      const fixed = parseDigestCredentials(v);
      expect(fixed === undefined, v).to.equal(general === undefined);
      if (!general || !fixed) continue;
      expect(fixed.scheme, v).to.equal(general.scheme);
      for (const f of fields) expect(fixed[f], `${v}: ${f}`).to.equal(general.params.get(f));
    }
    expectLinear(
      '10,000 distinct parameters',
      (k) => `Digest ${Array.from({ length: 1_250 * k }, (_, i) => `p${i}=v`).join(', ')}`,
      parseDigestCredentials,
    );
  });

  it('nonces: valid when issued here and young, stale when old, invalid when forged', () => {
    let now = 1_000_000;
    const issuer = new NonceIssuer(KEY, 300_000, () => now);
    const nonce = issuer.issue();
    expect(issuer.check(nonce)).to.deep.equal({ valid: true, issuedMs: 1_000_000 });
    const forged = nonce.slice(0, 20) + (nonce[20] === 'A' ? 'B' : 'A') + nonce.slice(21);
    expect(issuer.check(forged)).to.deep.equal({ valid: false, stale: false });
    expect(new NonceIssuer(Buffer.alloc(32, 8), 300_000, () => now).check(nonce).valid, 'another key').to.equal(false);
    now += 300_001;
    expect(issuer.check(nonce)).to.deep.equal({ valid: false, stale: true });
  });

  it('nonce counts: each nc once, reordering within the window, bounded memory that never lets replays through', () => {
    const counts = new NonceCounts(2);
    expect(counts.use('d', 'n1', 10, 1)).to.equal('fresh');
    expect(counts.use('d', 'n1', 10, 3)).to.equal('fresh');
    expect(counts.use('d', 'n1', 10, 2), 'late but new').to.equal('fresh');
    expect(counts.use('d', 'n1', 10, 2), 'seen').to.equal('replayed');
    expect(counts.use('d', 'n1', 10, 3)).to.equal('replayed');
    expect(counts.use('d', 'n1', 10, 100)).to.equal('fresh');
    expect(counts.use('d', 'n1', 10, 30), '70 below the highest').to.equal('too-old');
    expect(counts.use('e', 'n1', 10, 3), 'another device, its own counts').to.equal('fresh');
    expect(counts.use('f', 'n2', 20, 1)).to.equal('fresh');
    expect(counts.size).to.equal(2);
    // (d, n1) was evicted: it must not start over at nc 1.
    expect(counts.use('d', 'n1', 10, 2)).to.equal('forgotten');
    expect(counts.use('g', 'n3', 30, 1), 'a newer nonce is fine').to.equal('fresh');
  });

  it('nonce counts after a restart: a nonce issued before the process started is stale, a new one is fresh', () => {
    const counts = new NonceCounts(10, 1_000);
    expect(counts.use('d', 'old', 999, 1), 'captured before the restart').to.equal('forgotten');
    expect(counts.use('d', 'new', 1_001, 1)).to.equal('fresh');
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].map(isLoopback)).to.deep.equal([true, true, true, true]);
    expect(['0.0.0.0', '10.0.0.1', '::', '192.168.1.1'].map(isLoopback)).to.deep.equal([false, false, false, false]);
  });
});

describe('digest authentication: the authenticator over a real store', () => {
  const log = pino({ level: 'silent' });
  let store: SqliteStore;
  let cache: CredentialCache;
  const body = (device: string) => Buffer.from(`${device}|20260101000000|0,1.5;500000,2.5`, 'latin1');

  before(async () => {
    store = new SqliteStore({ dir: ':memory:', synchronous: 'FULL' });
    await store.open();
    await store.putCredential(credentialFor('m1', 'ec-server', 'secret-1', Date.now()));
    await store.putCredential(credentialFor('m2', 'ec-server', 'secret-2', Date.now()));
    cache = new CredentialCache(store, { refreshMs: 60_000, pollMs: 1000, negativeMs: 10_000, maxNegative: 100 }, log);
    await cache.start();
  });
  after(async () => {
    await cache.stop();
    await store.close();
  });

  const authenticator = (required: boolean, algorithms: ('MD5' | 'SHA-256')[] = ['SHA-256', 'MD5']) =>
    new DigestAuthenticator(
      { realm: 'ec-server', algorithms, required, nonceLifetimeMs: 300_000, nonceKey: KEY },
      cache,
    );

  async function outcome(auth: DigestAuthenticator, req: AuthRequest) {
    try {
      return await auth.verify(req);
    } catch (e) {
      if (e instanceof SipRequestError) return { status: e.status, reason: e.reason, headers: e.headers };
      throw e;
    }
  }

  /** A session that has been challenged by `auth` (as a meter's first request would be). */
  async function challenged(auth: DigestAuthenticator, device: string, secret: string) {
    const session = new DigestSession(device, secret);
    const first = (await outcome(auth, { method: 'MESSAGE', authorization: undefined, body: body(device) })) as {
      status: number;
      headers: Record<string, string[]>;
    };
    expect(first.status).to.equal(401);
    expect(session.accept(first.headers['WWW-Authenticate']!)).to.equal(true);
    return session;
  }

  it('without credentials: a 401 with one WWW-Authenticate per algorithm, SHA-256 first, auth-int', async () => {
    const r = (await outcome(authenticator(true), {
      method: 'MESSAGE',
      authorization: undefined,
      body: body('m1'),
    })) as {
      status: number;
      reason: string;
      headers: Record<string, string[]>;
    };
    expect(r.status).to.equal(401);
    expect(r.reason).to.equal('Unauthorized: credentials required');
    const values = r.headers['WWW-Authenticate']!;
    expect(values).to.have.length(2);
    expect(values[0]).to.match(/^Digest realm="ec-server", nonce="[\w-]{43}", algorithm=SHA-256, qop="auth-int"$/);
    expect(values[1]).to.match(/algorithm=MD5/);
  });

  for (const algorithm of ['SHA-256', 'MD5'] as const) {
    it(
      `${algorithm}: the right secret authenticates, nonce reused with rising nc; wrong secret, replay, tampered ` +
        'body refused',
      async () => {
        const auth = authenticator(true, [algorithm]);
        const session = await challenged(auth, 'm1', 'secret-1');
        for (let i = 0; i < 3; i++) {
          const a = session.authorize('MESSAGE', 'sip:ec@h', body('m1'))!;
          expect(await outcome(auth, { method: 'MESSAGE', authorization: a, body: body('m1') })).to.deep.equal({
            kind: 'authenticated',
            device: 'm1',
          });
        }
        const once = session.authorize('MESSAGE', 'sip:ec@h', body('m1'))!;
        await outcome(auth, { method: 'MESSAGE', authorization: once, body: body('m1') });
        const replay = (await outcome(auth, { method: 'MESSAGE', authorization: once, body: body('m1') })) as {
          status: number;
          reason: string;
          headers: Record<string, string[]>;
        };
        expect([replay.status, replay.reason]).to.deep.equal([401, 'Unauthorized: nonce count 00000004 already used']);
        expect(replay.headers['WWW-Authenticate']![0]).to.match(/stale=true$/);

        const tampered = Buffer.from(body('m1').toString('latin1').replace('1.5', '9.5'), 'latin1');
        const signed = session.authorize('MESSAGE', 'sip:ec@h', body('m1'))!;
        const t = (await outcome(auth, { method: 'MESSAGE', authorization: signed, body: tampered })) as {
          status: number;
          reason: string;
        };
        expect([t.status, t.reason]).to.deep.equal([401, 'Unauthorized: wrong credentials for "m1"']);

        const wrong = await challenged(auth, 'm1', 'not-the-secret');
        const w = (await outcome(auth, {
          method: 'MESSAGE',
          authorization: wrong.authorize('MESSAGE', 'sip:ec@h', body('m1')),
          body: body('m1'),
        })) as { status: number };
        expect(w.status).to.equal(401);
      },
    );
  }

  it("device A's credentials cannot write device B's body: 403", async () => {
    const auth = authenticator(true);
    const session = await challenged(auth, 'm1', 'secret-1');
    const r = (await outcome(auth, {
      method: 'MESSAGE',
      authorization: session.authorize('MESSAGE', 'sip:ec@h', body('m2')),
      body: body('m2'),
    })) as { status: number; reason: string };
    expect([r.status, r.reason]).to.deep.equal([403, 'Forbidden: credentials of "m1" cannot write "m2"']);
  });

  it('an unknown device gets the same answer as a wrong secret (nothing to learn about who exists)', async () => {
    const auth = authenticator(true);
    const session = await challenged(auth, 'ghost', 'whatever');
    const r = (await outcome(auth, {
      method: 'MESSAGE',
      authorization: session.authorize('MESSAGE', 'sip:ec@h', body('ghost')),
      body: body('ghost'),
    })) as { status: number; reason: string };
    expect([r.status, r.reason]).to.deep.equal([401, 'Unauthorized: wrong credentials for "ghost"']);
  });

  it('not required: anonymous for a device without credentials; a device with credentials must use them', async () => {
    const auth = authenticator(false);
    expect(await outcome(auth, { method: 'MESSAGE', authorization: undefined, body: body('free') })).to.deep.equal({
      kind: 'anonymous',
    });
    const r = (await outcome(auth, { method: 'MESSAGE', authorization: undefined, body: body('m2') })) as {
      status: number;
      reason: string;
    };
    expect([r.status, r.reason]).to.deep.equal([401, 'Unauthorized: device "m2" has credentials']);
  });

  it('a stale nonce is answered with stale=true and a fresh nonce that works', async () => {
    const old = new DigestAuthenticator(
      { realm: 'ec-server', algorithms: ['MD5'], required: true, nonceLifetimeMs: 1, nonceKey: KEY },
      cache,
    );
    const session = await challenged(old, 'm1', 'secret-1');
    await new Promise((r) => setTimeout(r, 5));
    const r = (await outcome(old, {
      method: 'MESSAGE',
      authorization: session.authorize('MESSAGE', 'sip:ec@h', body('m1')),
      body: body('m1'),
    })) as { status: number; reason: string; headers: Record<string, string[]> };
    expect([r.status, r.reason]).to.deep.equal([401, 'Unauthorized: nonce expired']);
    expect(r.headers['WWW-Authenticate']![0]).to.match(/stale=true/);
    const fresh = authenticator(true, ['MD5']);
    const again = await challenged(fresh, 'm1', 'secret-1');
    const ok = await outcome(fresh, {
      method: 'MESSAGE',
      authorization: again.authorize('MESSAGE', 'sip:ec@h', body('m1')),
      body: body('m1'),
    });
    expect(ok).to.deep.equal({ kind: 'authenticated', device: 'm1' });
  });
});
