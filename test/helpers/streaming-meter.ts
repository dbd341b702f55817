import dgram from 'node:dgram';
import { buildMessage, parseResponse } from './sip-client.js';

/**
 * A meter over real UDP: sends batches one after another, up to 4 unanswered at a time (its
 * window), each as soon as an answer frees a place. Counts the answers by status.
 */
export class StreamingMeter {
  private readonly sock = dgram.createSocket('udp4');
  readonly statuses: number[] = [];
  private sent = 0;
  /** The body of the i-th batch sent since the current sendAll/stream began at sent0. */
  private next: ((i: number) => string) | undefined;
  private sent0 = 0;
  /** Sends no further than this many batches in all. */
  private limit = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly port: number) {
    this.sock.on('message', (m) => {
      this.statuses.push(parseResponse(m.toString('latin1')).status);
      this.fill();
      for (const w of this.waiters.splice(0)) w();
    });
  }

  get okCount(): number {
    return this.statuses.filter((s) => s === 200).length;
  }

  /** Sends these bodies and resolves once all are answered. */
  async sendAll(bodies: string[]): Promise<void> {
    const start = this.statuses.length;
    this.next = (i) => bodies[i - this.sent0]!;
    this.sent0 = this.sent;
    this.limit = this.sent + bodies.length;
    this.fill();
    await this.until(() => this.statuses.length >= start + bodies.length);
  }

  /** Sends body(0), body(1)... until stop(). */
  stream(body: (i: number) => string): void {
    this.sent0 = this.sent;
    this.limit = Infinity;
    this.next = (i) => body(i - this.sent0);
    this.fill();
  }

  acked(n: number): Promise<void> {
    return this.until(() => this.okCount >= n);
  }

  /** Stops sending and waits for the answers still due. */
  async stop(): Promise<void> {
    this.limit = this.sent;
    await this.until(() => this.statuses.length >= this.sent);
  }

  close(): void {
    this.sock.close();
  }

  private fill(): void {
    while (this.next && this.sent < this.limit && this.sent - this.statuses.length < 4) {
      const body = this.next(this.sent++);
      this.sock.send(Buffer.from(buildMessage({ port: this.port, body }), 'latin1'), this.port, '127.0.0.1');
    }
  }

  private until(done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (done() ? resolve() : this.waiters.push(check));
      check();
    });
  }
}
