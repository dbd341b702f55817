import net from 'node:net';

export type Frame = Record<string, unknown>;

/** A meter's empty journal: every request answered with empty lists. */
export function emptyAnswer(request: Frame): Frame {
  const field = request.type === 'digest' ? 'intervals' : request.type === 'summaries' ? 'summaries' : 'batches';
  return { type: request.type, [field]: [] };
}

/**
 * A sync peer of the test's making on a real socket, speaking the wire format by hand (one JSON
 * frame a line): records every frame the server sends and every request among them, and answers
 * each request with `answer(request)` (its id added). What it says first is the test's business.
 */
export class SyncPeer {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  readonly requests: Frame[] = [];
  /** The server closed its side; closed: the socket is closed. */
  ended = false;
  closed = false;
  private buf = '';
  private readonly connected: Promise<void>;

  constructor(
    port: number,
    private readonly answer: (request: Frame) => Frame = emptyAnswer,
    options: { allowHalfOpen?: boolean } = {},
  ) {
    this.socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
    this.connected = new Promise((r) => this.socket.once('connect', () => r()));
    this.socket.on('error', () => undefined);
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('data', (d) => {
      this.buf += d.toString();
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const f = JSON.parse(this.buf.slice(0, nl)) as Frame;
        this.buf = this.buf.slice(nl + 1);
        this.frames.push(f);
        if (typeof f.id === 'number') {
          this.requests.push(f);
          this.socket.write(JSON.stringify({ id: f.id, ...this.answer(f) }) + '\n');
        }
      }
    });
  }

  /** Sends a frame (or raw text, as is) once connected. */
  async write(f: Frame | string): Promise<void> {
    await this.connected;
    this.socket.write(typeof f === 'string' ? f : JSON.stringify(f) + '\n');
  }

  errorCodes(): unknown[] {
    return this.frames.filter((f) => f.type === 'error').map((f) => f.code);
  }
}
