import type { ReceivedBatch } from '../domain/received-batch.js';
import { readLatin1, writeLatin1 } from '../latin1.js';

/**
 * Received batches (unparsed bodies plus their integrity headers) packed into one buffer for the
 * writer thread, which parses them there (batch-stage.ts). The buffer owns its memory, so
 * postMessage can transfer it instead of copying, at less than half the event loop's cost of a
 * structured clone of the batch objects (docs/performance.md, Figures behind the code). Every text is
 * latin1, as decoded from the wire.
 * Layout per batch, little-endian: body (u32 length + bytes), count, checksum, seq (each u32
 * length + 1, 0 when absent, + bytes), insert_time (f64).
 */
export function packReceived(batches: readonly ReceivedBatch[]): Buffer {
  let size = 0;
  for (const b of batches)
    size += 24 + b.body.length + (b.count?.length ?? 0) + (b.checksum?.length ?? 0) + (b.seq?.length ?? 0);
  const buf = Buffer.allocUnsafeSlow(size);
  let at = 0;
  const text = (s: string): void => {
    buf.writeUInt32LE(s.length, at);
    at += 4 + writeLatin1(buf, s, at + 4);
  };
  const optional = (s: string | undefined): void => {
    buf.writeUInt32LE(s === undefined ? 0 : s.length + 1, at);
    at += 4;
    if (s !== undefined) at += writeLatin1(buf, s, at);
  };
  for (const b of batches) {
    text(b.body);
    optional(b.count);
    optional(b.checksum);
    optional(b.seq);
    buf.writeDoubleLE(b.insert_time, at);
    at += 8;
  }
  return buf;
}

/** The batches packReceived wrote, in order. Throws on bytes it did not write. */
export function unpackReceived(buf: Buffer): ReceivedBatch[] {
  const out: ReceivedBatch[] = [];
  let at = 0;
  const take = (n: number): string => {
    if (at + n > buf.length)
      throw new Error(`packed received batches: field of ${n} bytes at ${at} overruns ${buf.length}`);
    const s = readLatin1(buf, at, at + n);
    at += n;
    return s;
  };
  const u32 = (): number => {
    if (at + 4 > buf.length) throw new Error(`packed received batches: truncated at ${at}`);
    const v = buf.readUInt32LE(at);
    at += 4;
    return v;
  };
  const optional = (): string | undefined => {
    const n = u32();
    return n === 0 ? undefined : take(n - 1);
  };
  while (at < buf.length) {
    const body = take(u32());
    const count = optional();
    const checksum = optional();
    const seq = optional();
    if (at + 8 > buf.length) throw new Error(`packed received batches: truncated at ${at}`);
    const insert_time = buf.readDoubleLE(at);
    at += 8;
    out.push({ body, count, checksum, seq, insert_time });
  }
  return out;
}
