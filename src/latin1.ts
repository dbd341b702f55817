/**
 * Latin1 text <-> bytes without Buffer#write / #toString's argument handling. Both public methods
 * end in Buffer.prototype.latin1Write / latin1Slice, node's own undocumented fast paths (present
 * in every node this runs on, see package.json engines); calling them directly cost a third of
 * what the public wrappers cost on the receive path. Falls back to the public API if they go away.
 */
interface FastLatin1 {
  latin1Write(s: string, offset: number, length: number): number;
  latin1Slice(start: number, end: number): string;
}

const proto = Buffer.prototype as unknown as Partial<FastLatin1>;
const fast = typeof proto.latin1Write === 'function' && typeof proto.latin1Slice === 'function';

/** Writes s (every char <= 0xff) at offset; returns the bytes written (s.length when it fits). */
export const writeLatin1: (buf: Buffer, s: string, offset: number) => number = fast
  ? (buf, s, offset) => (buf as unknown as FastLatin1).latin1Write(s, offset, buf.length - offset)
  : (buf, s, offset) => buf.write(s, offset, 'latin1');

/** The bytes [start, end) as a new latin1 string (a copy: it refers to nothing else). */
export const readLatin1: (buf: Buffer, start: number, end: number) => string = fast
  ? (buf, start, end) => (buf as unknown as FastLatin1).latin1Slice(start, end)
  : (buf, start, end) => buf.toString('latin1', start, end);

/**
 * A copy of a piece of request text that does not keep the request alive. V8 represents a slice
 * of 13 or more characters (and a concatenation) as a view into its parent string, so an id sliced
 * from a 17-kB body or a 400-byte head and kept for a while pins the whole parent: a device id
 * remembered by the sequence tracker cost +17 kB of heap per new device (430 MB after 16,000 large
 * batches). Request text is decoded as latin1, so the latin1 round trip is exact.
 *
 * Runs a few times per request: through one reused scratch buffer rather than a Buffer per call.
 */
export function detachedCopy(s: string): string {
  const n = s.length;
  if (n > scratch.length) return Buffer.from(s, 'latin1').toString('latin1');
  writeLatin1(scratch, s, 0);
  return readLatin1(scratch, 0, n);
}

/** Used synchronously within one call: nothing keeps a reference to it. */
const scratch = Buffer.allocUnsafeSlow(4096);
