import { SipRequestError } from '../errors.js';
import { compactToEpochSecond, recordsChecksum, type Batch } from '../domain/batch.js';

/**
 * Parser of the original clients' text body (Content-Type text/plain):
 *
 *     <device_id>|<YYYYMMDDhhmmss>|<us>,<value>;<us>,<value>;...
 *
 * Pure: string in, batch fields out, or a SipRequestError (400) naming what is wrong.
 * See docs/protocol.md for the grammar and test vectors.
 */

export type ParsedBatch = Omit<Batch, 'insert_time' | 'batch_seq'>;

const DEVICE_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const RECORD_RE = /^(\d{1,6}),([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$/;

export function parseBatchBody(body: string): ParsedBatch {
  // A trailing line break and a trailing ';' are tolerated (the original clients send them).
  let text = body;
  if (text.endsWith('\n')) text = text.slice(0, text.endsWith('\r\n') ? -2 : -1);
  if (text.length === 0) throw new SipRequestError('EC_BODY_EMPTY', 'MESSAGE carries no batch');

  const first = text.indexOf('|');
  const second = first < 0 ? -1 : text.indexOf('|', first + 1);
  if (first < 0 || second < 0 || text.indexOf('|', second + 1) >= 0) {
    throw new SipRequestError('EC_BODY_BAD_FORMAT', 'expected device|YYYYMMDDhhmmss|records');
  }
  const device = text.slice(0, first);
  const stamp = text.slice(first + 1, second);
  let records = text.slice(second + 1);
  if (records.endsWith(';')) records = records.slice(0, -1);

  if (!DEVICE_RE.test(device)) {
    throw new SipRequestError('EC_BODY_BAD_DEVICE', `${quote(device)} is not 1-64 of [A-Za-z0-9._:-]`);
  }
  if (Number.isNaN(compactToEpochSecond(stamp))) {
    throw new SipRequestError('EC_BODY_BAD_TIMESTAMP', `${quote(stamp)} is not a real YYYYMMDDhhmmss`);
  }
  if (records.length === 0) throw new SipRequestError('EC_BODY_BAD_RECORD', 'no records');

  const parts = records.split(';');
  let firstUs = '';
  let lastUs = '';
  for (let i = 0; i < parts.length; i++) {
    const m = RECORD_RE.exec(parts[i]!);
    if (!m) {
      throw new SipRequestError('EC_BODY_BAD_RECORD', `record ${i + 1} ${quote(parts[i]!)} is not us,value`);
    }
    if (i === 0) firstUs = m[1]!;
    lastUs = m[1]!;
  }

  return {
    device_id: device,
    ec_date: stamp.slice(0, 8),
    ec_time: stamp.slice(8, 14),
    start_us: firstUs.padStart(6, '0'),
    end_us: lastUs.padStart(6, '0'),
    ec_consumption_values: records,
    values_count: parts.length,
    values_checksum: recordsChecksum(records),
  };
}

/** Quote user input for a reason phrase, cut short so a hostile body cannot bloat the answer. */
function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);
}
