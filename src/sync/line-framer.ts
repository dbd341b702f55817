import { SyncProtocolError } from '../errors.js';

/**
 * Newline-delimited frames with a size limit: memory per connection is bounded by maxBytes
 * whatever the peer sends. Used by both ends of the sync protocol (docs/sync-protocol.md).
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  /** Complete lines in this chunk; throws FrameTooLarge when a line exceeds the limit. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let from = 0;
    for (let nl = chunk.indexOf(0x0a, from); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      const piece = chunk.subarray(from, nl);
      if (this.size + piece.length > this.maxBytes) throw new FrameTooLarge(this.size + piece.length, this.maxBytes);
      this.parts.push(piece);
      lines.push(Buffer.concat(this.parts).toString('utf8'));
      this.parts = [];
      this.size = 0;
      from = nl + 1;
    }
    const rest = chunk.subarray(from);
    if (rest.length > 0) {
      if (this.size + rest.length > this.maxBytes) throw new FrameTooLarge(this.size + rest.length, this.maxBytes);
      this.parts.push(rest);
      this.size += rest.length;
    }
    return lines;
  }
}

export class FrameTooLarge extends SyncProtocolError {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super('EC_SYNC_FRAME_TOO_LARGE', `frame of more than ${limit} bytes (${bytes} so far)`);
  }
}
