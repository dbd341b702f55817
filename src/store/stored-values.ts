import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { readLatin1 } from '../latin1.js';

/**
 * How the embedded store keeps a batch's records (ec_consumption_values). A large record list is
 * stored as a BLOB holding its latin1 bytes deflated (raw deflate, level 1); anything else as the
 * TEXT it arrived as. SQLite keeps a BLOB as a BLOB in a TEXT column, so both live in one table,
 * and every reader decodes whatever it finds: a file written with compression off (or before it
 * existed) reads the same, and so does one written with it on after the setting is turned off.
 *
 * Why: at fleet load the disk, not the CPU, was the limit over 10 minutes (~40 kB written per
 * 17-kB batch: WAL plus checkpoint, plus the key index). Level 1 keeps most of level 6's ratio
 * at a fifth of the time (measured: docs/performance.md, Figures behind the code).
 */
export type ValuesCompression = 'deflate' | 'none';

/**
 * Record lists shorter than this stay TEXT: a 10-record body (~200 B) would save ~100 B for
 * ~10 us of CPU per batch, and small batches are limited by CPU, not by the disk.
 */
export const COMPRESS_MIN_CHARS = 1024;

/**
 * What to bind for `values`: a deflated BLOB when compression is on, the list is long, it is ASCII
 * and deflating saves space. Record lists that passed the body grammar are ASCII; the check keeps
 * any other string a caller stores intact (a char above 0xff would not survive latin1 bytes). The
 * UTF-8 length count is negligible next to deflate (V8's one-byte fast path).
 */
export function encodeValues(values: string, compression: ValuesCompression): string | Buffer {
  if (compression === 'none' || values.length < COMPRESS_MIN_CHARS) return values;
  if (Buffer.byteLength(values, 'utf8') !== values.length) return values;
  const packed = deflateRawSync(Buffer.from(values, 'latin1'), { level: 1 });
  return packed.length < values.length ? packed : values;
}

/**
 * The record list as sent, from what the column holds (TEXT as is, a BLOB inflated). A BLOB that
 * does not inflate (a damaged file) reads as an empty list: its checksum then fails, so ec-test
 * and the hour report name that batch as damaged, as they do a damaged TEXT row, instead of the
 * whole read failing.
 */
export function decodeValues(stored: string | Uint8Array): string {
  if (typeof stored === 'string') return stored;
  let bytes: Buffer;
  try {
    bytes = inflateRawSync(stored);
  } catch {
    return '';
  }
  return readLatin1(bytes, 0, bytes.length);
}
