/**
 * Byte-level scanning shared by the UDP and TCP framers. Everything here is linear in the input:
 * the `sip` package's own framing regex is quadratic on leading whitespace, so we find message
 * boundaries ourselves and hand `sip.parse` only a clean head.
 */

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/** Index of the first byte at or after `from` that is not CR or LF (RFC 3261 7.5). */
export function skipLeadingCrlf(buf: Buffer, from: number, to: number): number {
  let i = from;
  while (i < to && (buf[i] === 0x0d || buf[i] === 0x0a)) i++;
  return i;
}

/** Index of the CRLFCRLF that ends the head, searching [from, to); -1 when absent. */
export function findHeadEnd(buf: Buffer, from: number, to: number): number {
  const i = buf.indexOf(CRLFCRLF, from);
  return i >= 0 && i + 4 <= to ? i : -1;
}

/** The head as text. SIP heads are ASCII/UTF-8; latin1 keeps one char per byte for length checks. */
export function headText(buf: Buffer, from: number, to: number): string {
  return buf.toString('latin1', from, to);
}
