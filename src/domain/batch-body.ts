import { isValidDeviceId } from './device-id.js';
import { SipRequestError } from '../errors.js';
import { compactToEpochSecond, recordsChecksum, recordsChecksumWithStats, type Batch } from './batch.js';
import { detachedCopy } from '../latin1.js';

/**
 * Parser of the original clients' text body (Content-Type text/plain):
 *
 *     <device_id>|<YYYYMMDDhhmmss>|<us>,<value>;<us>,<value>;...
 *
 * Pure: string in, batch fields out, or a SipRequestError (400) naming what is wrong.
 * See docs/protocol.md for the grammar and test vectors.
 */

export type ParsedBatch = Omit<Batch, 'insert_time' | 'batch_seq'>;

export { isValidDeviceId };
// The value pattern is unambiguous on purpose: the former `\d+\.?\d*` let the engine split a run of
// digits between its two halves in every way before failing, quadratic in the run's length
// (a 40,000-digit value took 2.7 s; a 1 MiB body would have stalled the server for minutes).
const US = String.raw`\d{1,6}`;
const VALUE = String.raw`[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?`;
const RECORD_RE = new RegExp(`^(${US}),(${VALUE})$`);
/** The whole record list in one pass: the common, valid case costs one regex run, not one per record. */
const RECORDS_RE = new RegExp(`^${US},${VALUE}(?:;${US},${VALUE})*$`);

/**
 * `options.stats` (storage.aggregates): also the records' statistics (values_stats), read in the checksum's
 * pass over them; without it the batch has no values_stats.
 */
export function parseBatchBody(body: string, options: { stats?: boolean } = {}): ParsedBatch {
  // A trailing line break and a trailing ';' are tolerated (the original clients send them).
  let text = body;
  if (text.endsWith('\n')) text = text.slice(0, text.endsWith('\r\n') ? -2 : -1);
  if (text.length === 0) throw new SipRequestError('EC_BODY_EMPTY', 'MESSAGE carries no batch');

  const first = text.indexOf('|');
  const second = first < 0 ? -1 : text.indexOf('|', first + 1);
  if (first < 0 || second < 0 || text.includes('|', second + 1)) {
    throw new SipRequestError('EC_BODY_BAD_FORMAT', 'expected device|YYYYMMDDhhmmss|records');
  }
  const device = text.slice(0, first);
  const stamp = text.slice(first + 1, second);
  let records = text.slice(second + 1);
  if (records.endsWith(';')) records = records.slice(0, -1);

  if (!isValidDeviceId(device)) {
    throw new SipRequestError('EC_BODY_BAD_DEVICE', `${quote(device)} is not 1-64 of [A-Za-z0-9._:-]`);
  }
  if (!isRealStamp(stamp)) {
    throw new SipRequestError('EC_BODY_BAD_TIMESTAMP', `${quote(stamp)} is not a real YYYYMMDDhhmmss`);
  }
  if (records.length === 0) throw new SipRequestError('EC_BODY_BAD_RECORD', 'no records');

  if (!RECORDS_RE.test(records)) throw badRecord(records);
  let count = 1;
  for (let i = records.indexOf(';'); i >= 0; i = records.indexOf(';', i + 1)) count++;
  const firstUs = records.slice(0, records.indexOf(','));
  const last = records.lastIndexOf(';') + 1;
  const lastUs = records.slice(last, records.indexOf(',', last));
  const summed = options.stats ? recordsChecksumWithStats(records) : undefined;

  const parsed: ParsedBatch = {
    device_id: detachedCopy(device),
    ec_date: stamp.slice(0, 8),
    ec_time: stamp.slice(8, 14),
    start_us: firstUs.padStart(6, '0'),
    end_us: lastUs.padStart(6, '0'),
    ec_consumption_values: records,
    values_count: count,
    values_checksum: summed ? summed.checksum : recordsChecksum(records),
  };
  if (summed) parsed.values_stats = summed.stats;
  return parsed;
}

/** The last valid timestamp seen: most batches arriving together carry the same second. */
let lastGoodStamp = '';
function isRealStamp(stamp: string): boolean {
  if (stamp === lastGoodStamp) return true;
  if (Number.isNaN(compactToEpochSecond(stamp))) return false;
  lastGoodStamp = detachedCopy(stamp); // a slice would keep its whole body alive
  return true;
}

/** Which record is wrong, for the reason phrase (only on the error path: it splits the body). */
function badRecord(records: string): SipRequestError {
  const parts = records.split(';');
  const i = parts.findIndex((p) => !RECORD_RE.test(p));
  return new SipRequestError('EC_BODY_BAD_RECORD', `record ${i + 1} ${quote(parts[i] ?? '')} is not us,value`);
}

/** Quote user input for a reason phrase, cut short so a hostile body cannot bloat the answer. */
function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);
}
