import type { Socket } from 'node:net';
import { isErrorCode, SyncProtocolError, type SyncErrorCode } from '../errors.js';
import { FrameTooLarge, LineFramer } from './line-framer.js';
import { peerText } from './peer-text.js';
import { decodeFrame, encodeFrame, MAX_FRAME_BYTES, type SyncMessage, type SyncRequest } from './sync-protocol.js';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** How long an aborting connection waits for its error frame to be sent before it is destroyed anyway. */
const ABORT_FLUSH_MS = 1000;

interface Pending {
  resolve: (m: SyncMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One end of a sync connection: frames in and out, request/response matching by id, timeouts,
 * byte counters. A bad or oversized frame closes the connection with an error frame first.
 */
export class SyncConnection {
  private readonly framer = new LineFramer(MAX_FRAME_BYTES);
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedError: Error | undefined;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    readonly socket: Socket,
    private readonly onMessage: (m: SyncMessage) => void,
    private readonly requestTimeoutMs = 30_000,
  ) {
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  send(m: SyncMessage): void {
    if (this.closed) return;
    const frame = encodeFrame(m);
    this.bytesOut += Buffer.byteLength(frame);
    this.socket.write(frame);
  }

  /** Sends a request and resolves with the response carrying the same id. */
  request<T extends SyncMessage>(m: WithoutId<SyncRequest>): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new SyncProtocolError('EC_SYNC_TIMEOUT', `no answer to ${m.type} #${id} within ${this.requestTimeoutMs} ms`),
        );
      }, this.requestTimeoutMs);
      this.pending.set(id, { resolve: resolve as (m: SyncMessage) => void, reject, timer });
      this.send({ ...m, id });
    });
  }

  /**
   * Sends an error frame and closes: destroys the socket once the frame is handed to the kernel
   * (or after ABORT_FLUSH_MS if the peer does not read). Not end(): that would wait for the peer to
   * end its side too, and a peer that never does kept the socket and its buffers.
   */
  abort(code: SyncErrorCode, message: string): void {
    if (this.closed) return;
    const frame = encodeFrame({ type: 'error', code, message });
    this.bytesOut += Buffer.byteLength(frame);
    this.fail(new SyncProtocolError(code, message));
    const socket = this.socket;
    socket.pause();
    const timer = setTimeout(() => socket.destroy(), ABORT_FLUSH_MS).unref();
    socket.write(frame, () => {
      clearTimeout(timer);
      socket.destroy();
    });
  }

  close(): void {
    this.socket.end();
    this.fail(new Error('connection closed'));
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.bytesIn += chunk.length;
    let lines: string[];
    try {
      lines = this.framer.push(chunk);
    } catch (e) {
      if (e instanceof FrameTooLarge) return this.abort('EC_SYNC_FRAME_TOO_LARGE', e.message);
      throw e;
    }
    for (const line of lines) {
      if (this.closed) return;
      let m: SyncMessage;
      try {
        m = decodeFrame(line);
      } catch (e) {
        return this.abort(e instanceof SyncProtocolError ? e.code : 'EC_SYNC_BAD_FRAME', (e as Error).message);
      }
      const id = (m as { id?: unknown }).id;
      const waiting = typeof id === 'number' ? this.pending.get(id) : undefined;
      if (waiting) {
        this.pending.delete(id as number);
        clearTimeout(waiting.timer);
        // The peer's own words end up in logs and reports: cut to PEER_TEXT_MAX.
        if (m.type === 'error') waiting.reject(peerError(peerText(m.code), peerText(m.message)));
        else waiting.resolve(m);
        continue;
      }
      this.onMessage(m);
    }
  }

  private fail(e: Error): void {
    this.closedError ??= e;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(this.closedError);
      this.pending.delete(id);
    }
  }
}

/** The peer's error frame as an error: its code when catalogued, else EC_SYNC_CLIENT_FAILED naming it. */
function peerError(code: string, message: string): SyncProtocolError {
  if (isErrorCode(code) && code.startsWith('EC_SYNC_')) return new SyncProtocolError(code as SyncErrorCode, message);
  return new SyncProtocolError('EC_SYNC_CLIENT_FAILED', `${String(code).slice(0, 40)}: ${message}`);
}
