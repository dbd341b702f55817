import { SipRequestError } from '../errors.js';
import type { ReceivedBatch } from '../domain/received-batch.js';
import type { ParsedBatch } from '../domain/batch-body.js';

/**
 * Optional integrity headers of better clients (docs/protocol.md):
 *   X-EC-Count    number of records in the body
 *   X-EC-Checksum MD5 of the records joined with \n (the stored values_checksum)
 *   X-EC-Seq      per-device batch sequence number
 * A mismatch is a 400 and nothing is stored. Returns the sequence number, if any.
 */
export function checkIntegrity(
  headers: Pick<ReceivedBatch, 'count' | 'checksum' | 'seq'>,
  batch: ParsedBatch,
): number | null {
  const count = headers.count;
  if (count !== undefined) {
    if (!/^\d{1,9}$/.test(count))
      throw new SipRequestError('EC_INTEGRITY_BAD_HEADER', `X-EC-Count ${JSON.stringify(count.slice(0, 20))}`);
    if (Number(count) !== batch.values_count) {
      throw new SipRequestError(
        'EC_INTEGRITY_COUNT_MISMATCH',
        `header says ${Number(count)}, body has ${batch.values_count}`,
      );
    }
  }
  const checksum = headers.checksum;
  if (checksum !== undefined) {
    if (!/^[0-9a-fA-F]{32}$/.test(checksum)) {
      throw new SipRequestError(
        'EC_INTEGRITY_BAD_HEADER',
        `X-EC-Checksum ${JSON.stringify(checksum.slice(0, 40))} is not 32 hex digits`,
      );
    }
    if (checksum.toLowerCase() !== batch.values_checksum) {
      throw new SipRequestError('EC_INTEGRITY_CHECKSUM_MISMATCH', `body MD5 is ${batch.values_checksum}`);
    }
  }
  const seq = headers.seq;
  if (seq === undefined) return null;
  if (!/^\d{1,15}$/.test(seq))
    throw new SipRequestError('EC_INTEGRITY_BAD_HEADER', `X-EC-Seq ${JSON.stringify(seq.slice(0, 20))}`);
  return Number(seq);
}
