import { createHash, timingSafeEqual } from 'node:crypto';

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * The bearer tokens of http.tokens. A presented token is compared with every configured one in constant time
 * (digests of equal length, timingSafeEqual, no early exit), so that neither a token's content nor its length
 * nor which one matched shows in the response time.
 */
export class BearerTokens {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(sha256);
  }

  get empty(): boolean {
    return this.digests.length === 0;
  }

  /** Whether an Authorization header carries one of the tokens (`Bearer <token>`, scheme case-insensitive). */
  accepts(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    const m = /^bearer +(\S+) *$/i.exec(authorization);
    if (!m) return false;
    const presented = sha256(m[1]!);
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(d, presented) || ok;
    return ok;
  }
}
