import { isValidDeviceId } from '../domain/device-id.js';
import { digestHex, type DeviceCredential, type DigestAlgorithm } from '../domain/device-credential.js';
import { SipRequestError, type SipErrorCode } from '../errors.js';
import { parseDigestCredentials } from './auth-params.js';
import type { CredentialCache } from './credential-cache.js';
import { NonceCounts, nonceCountKey } from './nonce-counts.js';
import { NonceIssuer } from './nonce.js';

/**
 * SIP digest authentication of meters (RFC 3261 22, RFC 7616, RFC 8760 for SHA-256), with
 * qop=auth-int only, so that the response covers the body: the data itself, not just the head.
 *
 * - 401 offers one WWW-Authenticate per algorithm, in the configured order (RFC 8760: the first a
 *   client supports is the one it uses); each carries a fresh stateless nonce (nonce.ts).
 * - A meter keeps its nonce and raises nc per request (nonce-counts.ts refuses any nc seen
 *   before), so authentication costs no extra round trip per batch; an expired nonce gets
 *   `stale=true` and the meter re-authenticates at once.
 * - The authenticated user name is the device id; a body naming another device is a 403.
 * - Without credentials: refused when authentication is required; otherwise accepted as
 *   anonymous, except for a device that has credentials, which must always use them.
 */
export interface DigestOptions {
  realm: string;
  /** Offered in this order. */
  algorithms: readonly DigestAlgorithm[];
  /** Refuse requests without credentials (security.require_auth, or any non-loopback listener). */
  required: boolean;
  nonceLifetimeMs: number;
  /** HMAC key of the nonces; receivers that share it accept each other's nonces. */
  nonceKey: Buffer;
}

export interface AuthRequest {
  method: string;
  authorization: string | undefined;
  body: Buffer;
}

export type AuthVerdict = { kind: 'authenticated'; device: string } | { kind: 'anonymous' };

/** Longest device id (batch-body.ts): how far into a body we look for the one it names. */
const MAX_DEVICE = 64;
const NC = /^[0-9a-fA-F]{8}$/;

export class DigestAuthenticator {
  private readonly nonces: NonceIssuer;
  // Nonces issued before this process (a previous run of it) are stale: see NonceCounts.
  readonly counts = new NonceCounts(200_000, Date.now() - 1);
  /** Statistics for logs and metrics. */
  readonly stats = { authenticated: 0, anonymous: 0, challenged: 0, refused: 0, forbidden: 0 };

  constructor(
    private readonly options: DigestOptions,
    private readonly credentials: CredentialCache,
  ) {
    this.nonces = new NonceIssuer(options.nonceKey, options.nonceLifetimeMs);
  }

  /** The verdict, or a thrown SipRequestError: 401 with challenges, or 403. */
  verify(req: AuthRequest): AuthVerdict | Promise<AuthVerdict> {
    if (req.authorization === undefined) return this.withoutCredentials(req);
    const c = parseDigestCredentials(req.authorization);
    if (c?.scheme.toLowerCase() !== 'digest') throw this.challenge('EC_AUTH_FAILED', 'Authorization is not Digest');
    const { username: user, nonce, uri, response, cnonce, nc } = c;
    const algorithm = normalizeAlgorithm(c.algorithm ?? 'MD5');
    if (!user || !nonce || uri === undefined || !response || !cnonce || !nc || !NC.test(nc)) {
      throw this.challenge('EC_AUTH_FAILED', 'Authorization lacks username, nonce, uri, response, cnonce or nc');
    }
    if (c.qop !== 'auth-int') throw this.challenge('EC_AUTH_FAILED', 'qop must be auth-int');
    if (!algorithm || !this.options.algorithms.includes(algorithm)) {
      throw this.challenge('EC_AUTH_FAILED', `algorithm ${(c.algorithm ?? '').slice(0, 20)} is not offered`);
    }
    if (c.realm !== this.options.realm) throw this.challenge('EC_AUTH_FAILED', 'wrong realm');
    // Checked before any lookup: an invented name must not cost a store read or a cache entry.
    if (!isValidDeviceId(user)) throw this.challenge('EC_AUTH_FAILED', 'username is not a device id');
    const countKey = nonceCountKey(user, nonce);
    const issuedMs = this.checkNonce(countKey, nonce);
    const credential = this.credentials.get(user);
    if (!(credential instanceof Promise)) {
      return this.verifyWith(req, user, nonce, uri, response, cnonce, nc, algorithm, countKey, issuedMs, credential);
    }
    return credential.then((found) =>
      this.verifyWith(req, user, nonce, uri, response, cnonce, nc, algorithm, countKey, issuedMs, found),
    );
  }

  /**
   * The rest of verify, once the device's credential is known. A method with many parameters
   * rather than a closure over them: verify ran once per request and allocated one every time.
   */
  private verifyWith(
    req: AuthRequest,
    user: string,
    nonce: string,
    uri: string,
    response: string,
    cnonce: string,
    nc: string,
    algorithm: DigestAlgorithm,
    countKey: string,
    issuedMs: number,
    credential: DeviceCredential | undefined,
  ): AuthVerdict {
    const ha1 = credential && (algorithm === 'MD5' ? credential.ha1_md5 : credential.ha1_sha256);
    if (credential?.realm !== this.options.realm || !ha1) {
      throw this.challenge('EC_AUTH_FAILED', `wrong credentials for ${printable(user)}`);
    }
    // One-shot crypto.hash over each concatenated input: cheaper than createHash().update() per piece
    // or a latin1 copy into a scratch Buffer (docs/performance.md, digest authentication's cost).
    const ha2 = digestHex(algorithm, `${req.method}:${uri}:${digestHex(algorithm, req.body)}`);
    const expected = digestHex(algorithm, `${ha1}:${nonce}:${nc}:${cnonce}:auth-int:${ha2}`);
    if (!sameHex(expected, response))
      throw this.challenge('EC_AUTH_FAILED', `wrong credentials for ${printable(user)}`);
    const count = this.counts.useKey(countKey, issuedMs, parseInt(nc, 16));
    if (count === 'replayed') throw this.challenge('EC_AUTH_REPLAYED', `nonce count ${nc} already used`, true);
    if (count !== 'fresh') throw this.challenge('EC_AUTH_STALE', `nonce count ${nc} too old`, true);
    if (!bodyNames(req.body, user)) {
      const named = deviceOf(req.body);
      this.stats.forbidden++;
      throw new SipRequestError(
        'EC_AUTH_FORBIDDEN',
        `credentials of ${printable(user)} cannot write ${named === undefined ? 'this body' : printable(named)}`,
      );
    }
    this.stats.authenticated++;
    return { kind: 'authenticated', device: user };
  }

  /**
   * A nonce this device has used before was checked then: only its age is checked again (no HMAC
   * per request). A new one is checked in full. Returns when the nonce was issued.
   */
  private checkNonce(countKey: string, nonce: string): number {
    const known = this.counts.issuedAtKey(countKey);
    const checked = known !== undefined ? this.nonces.checkAge(known) : this.nonces.check(nonce);
    if (!checked.valid) {
      throw checked.stale
        ? this.challenge('EC_AUTH_STALE', 'nonce expired', true)
        : this.challenge('EC_AUTH_FAILED', 'nonce not issued by this server');
    }
    return checked.issuedMs;
  }

  private withoutCredentials(req: AuthRequest): AuthVerdict | Promise<AuthVerdict> {
    if (this.options.required) throw this.challenge('EC_AUTH_REQUIRED', 'credentials required');
    const device = deviceOf(req.body);
    if (device === undefined) return this.anonymous();
    const decide = (credential: DeviceCredential | undefined): AuthVerdict => {
      if (credential) throw this.challenge('EC_AUTH_REQUIRED', `device ${printable(device)} has credentials`);
      return this.anonymous();
    };
    const credential = this.credentials.forAnonymous(device);
    return credential instanceof Promise ? credential.then(decide) : decide(credential);
  }

  private anonymous(): AuthVerdict {
    this.stats.anonymous++;
    return { kind: 'anonymous' };
  }

  /**
   * The WWW-Authenticate values of a 401: one per offered algorithm, all with the same fresh nonce (a
   * nonce does not depend on the algorithm, and nonce counts are kept per device and nonce whichever
   * the meter picks); one HMAC per 401 rather than one per algorithm matters under a flood.
   */
  challenges(stale: boolean): string[] {
    const nonce = this.nonces.issue();
    return this.options.algorithms.map(
      (a) =>
        `Digest realm="${this.options.realm}", nonce="${nonce}", algorithm=${a}, qop="auth-int"` +
        (stale ? ', stale=true' : ''),
    );
  }

  private challenge(code: SipErrorCode, detail: string, stale = false): SipRequestError {
    if (code === 'EC_AUTH_REQUIRED' || code === 'EC_AUTH_STALE') this.stats.challenged++;
    else this.stats.refused++;
    return new SipRequestError(code, detail, { 'WWW-Authenticate': this.challenges(stale) });
  }
}

function normalizeAlgorithm(a: string): DigestAlgorithm | undefined {
  if (a === 'MD5' || a === 'SHA-256') return a;
  const upper = a.toUpperCase();
  return upper === 'MD5' || upper === 'SHA-256' ? upper : undefined;
}

/**
 * got.toLowerCase() === expected for a lowercase hex `expected`, in time that depends on neither's
 * content (every character is compared; no early exit), without the two Buffers and the lowercased
 * copy that timingSafeEqual needed (half the time: docs/performance.md). Folding A-Z alone is exact: no other
 * character lowercases to [0-9a-f], and the code units are compared whole, not truncated to bytes.
 */
function sameHex(expected: string, got: string): boolean {
  if (got.length !== expected.length) return false;
  let diff = 0;
  for (let k = 0; k < expected.length; k++) {
    const c = got.charCodeAt(k);
    diff |= (c >= 0x41 && c <= 0x5a ? c | 0x20 : c) ^ expected.charCodeAt(k);
  }
  return diff === 0;
}

/** deviceOf(body) === device, without making a string of the body's device id. */
function bodyNames(body: Buffer, device: string): boolean {
  const bar = body.indexOf(0x7c, 0);
  if (bar <= 0 || bar > MAX_DEVICE || bar !== device.length) return false;
  for (let k = 0; k < bar; k++) if (body[k] !== device.charCodeAt(k)) return false;
  return true;
}

/** The device id a body names (what precedes its first '|'), or undefined when there is none. */
export function deviceOf(body: Buffer): string | undefined {
  const bar = body.indexOf(0x7c, 0);
  if (bar <= 0 || bar > MAX_DEVICE) return undefined;
  return body.toString('latin1', 0, bar);
}

/** User-supplied text in a reason phrase: short, printable (sanitizeReason also runs later). */
function printable(s: string): string {
  return JSON.stringify(s.length > MAX_DEVICE ? `${s.slice(0, MAX_DEVICE)}...` : s);
}
