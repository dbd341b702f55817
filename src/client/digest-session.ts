import { randomBytes } from 'node:crypto';
import { parseCredentials } from '../auth/auth-params.js';
import { digestHex, ha1, type DigestAlgorithm } from '../domain/device-credential.js';

/**
 * A meter's side of digest authentication (RFC 7616 / RFC 8760, qop=auth-int): remembers the
 * server's latest challenge and answers every request with it, raising the nonce count each time,
 * so that a stream of batches costs no extra round trip. A 401 (stale nonce, server restart)
 * replaces the challenge; the request is then sent again once with the new one.
 */
export class DigestSession {
  private challenge:
    { realm: string; nonce: string; algorithm: DigestAlgorithm; opaque?: string; ha1: string } | undefined;
  private nc = 0;

  constructor(
    readonly device: string,
    private readonly secret: string,
  ) {}

  get hasChallenge(): boolean {
    return this.challenge !== undefined;
  }

  /**
   * Takes the WWW-Authenticate values of a 401: the first offered algorithm this client supports,
   * with qop auth-int. Returns false when none fits (the request cannot be authenticated).
   */
  accept(values: readonly string[]): boolean {
    for (const v of values) {
      const c = parseCredentials(v);
      if (c?.scheme.toLowerCase() !== 'digest') continue;
      const algorithm = (c.params.get('algorithm') ?? 'MD5').toUpperCase();
      const qops = (c.params.get('qop') ?? '').split(',').map((q) => q.trim());
      const realm = c.params.get('realm');
      const nonce = c.params.get('nonce');
      if ((algorithm !== 'MD5' && algorithm !== 'SHA-256') || !qops.includes('auth-int') || !realm || !nonce) continue;
      const key = ha1(algorithm, this.device, realm, this.secret);
      this.challenge = { realm, nonce, algorithm, opaque: c.params.get('opaque'), ha1: key };
      this.nc = 0;
      return true;
    }
    return false;
  }

  /** The Authorization value for a request, or undefined before the first challenge. */
  authorize(method: string, uri: string, body: Buffer | string): string | undefined {
    const c = this.challenge;
    if (!c) return undefined;
    const nc = (++this.nc).toString(16).padStart(8, '0');
    const cnonce = randomBytes(8).toString('hex');
    const h = (s: string | Buffer) => digestHex(c.algorithm, s);
    const ha2 = h(`${method}:${uri}:${h(body)}`);
    const response = h(`${c.ha1}:${c.nonce}:${nc}:${cnonce}:auth-int:${ha2}`);
    return (
      `Digest username="${this.device}", realm="${c.realm}", nonce="${c.nonce}", uri="${uri}", ` +
      `response="${response}", algorithm=${c.algorithm}, cnonce="${cnonce}", qop=auth-int, nc=${nc}` +
      (c.opaque !== undefined ? `, opaque="${c.opaque}"` : '')
    );
  }
}
