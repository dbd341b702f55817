import { compactToEpochSecond } from '../domain/batch.js';
import { SipRequestError } from '../errors.js';

/**
 * ingest.max_future_seconds: a batch stamped further ahead of the server clock than this is
 * refused (400). A meter whose clock runs ahead would otherwise write into periods that sync has
 * not reached, and its batches would sort after everything stored since.
 */
export class FutureBound {
  /** The last stamp checked and its epoch second: batches arriving together carry the same one. */
  private lastStamp = '';
  private lastEpoch = 0;

  constructor(readonly maxFutureS: number) {}

  /** Throws the 400 when `stamp` (YYYYMMDDhhmmss, already valid) is too far ahead of `nowS`. */
  check(stamp: string, nowS: number): void {
    if (stamp !== this.lastStamp) {
      this.lastEpoch = compactToEpochSecond(stamp);
      this.lastStamp = stamp;
    }
    const ahead = this.lastEpoch - nowS;
    if (ahead > this.maxFutureS) {
      throw new SipRequestError(
        'EC_BODY_FUTURE_TIMESTAMP',
        `${stamp} is ${Math.floor(ahead)} s ahead of the server clock (ingest.max_future_seconds = ${this.maxFutureS})`,
      );
    }
  }
}
