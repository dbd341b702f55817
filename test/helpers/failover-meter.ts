import dgram from 'node:dgram';
import type { Journal } from '../../src/client/journal.js';
import type { Batch } from '../../src/domain/batch.js';
import { makeBatch, bodyOf } from './batches.js';
import { buildMessage, parseResponse } from './sip-client.js';

export interface FailoverMeterOptions {
  device: string;
  /** Epoch second of its first batch; batch i covers second start + i. */
  start: number;
  /** The receivers' SIP ports (all on 127.0.0.1), in the order tried. */
  ports: number[];
  /** Without an answer within this, the batch is sent again to the next receiver. */
  timeoutMs: number;
  /** Batches journaled but never sent (lost on the way): sync must bring them. */
  dropped: (i: number) => boolean;
  /** Batches in flight at once. */
  window: number;
}

/**
 * A meter as the issue describes it, kept to the test's needs (ec-client gains the same with its
 * server list): journals each batch, then sends it over UDP to the current receiver; a timeout or a
 * 503 moves it to the next receiver and the batch is sent again there, until it is answered 200.
 */
export class FailoverMeter {
  private readonly sock = dgram.createSocket('udp4');
  private current = 0;
  private next = 0;
  private limit = Infinity;
  private attempt = 0;
  /** Call-ID -> batch index of the attempt it names. */
  private readonly calls = new Map<string, number>();
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly inFlight = new Set<number>();
  private waiters: (() => void)[] = [];
  /** Epoch seconds of the batches answered 200. */
  readonly acked = new Set<number>();
  readonly stats = { sent: 0, ok: 0, unavailable: 0, timeouts: 0, switches: 0, dropped: 0 };
  /** Answers 503 by wall-clock ms, for the outage windows. */
  readonly unavailableAt: number[] = [];

  constructor(
    private readonly journal: Journal,
    private readonly o: FailoverMeterOptions,
  ) {
    this.sock.on('message', (m) => this.onAnswer(m));
  }

  get port(): number {
    return this.o.ports[this.current]!;
  }

  /** Batches generated so far (sent or dropped). */
  get generated(): number {
    return this.next;
  }

  start(): void {
    void this.fill();
  }

  ackedAtLeast(n: number): Promise<void> {
    return this.until(() => this.acked.size >= n);
  }

  /** Generates no new batch, and resolves once every batch sent has been answered 200. */
  async stop(): Promise<void> {
    this.limit = this.next;
    await this.until(() => this.inFlight.size === 0);
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.sock.close();
  }

  batch(i: number): Batch {
    return makeBatch(this.o.device, this.o.start + i, 5, 0, i);
  }

  private async fill(): Promise<void> {
    while (this.next < this.limit && this.inFlight.size < this.o.window) {
      const i = this.next++;
      this.inFlight.add(i);
      await this.journal.upsertBatches([this.batch(i)]);
      if (this.o.dropped(i)) {
        this.stats.dropped++;
        this.inFlight.delete(i);
        continue;
      }
      this.send(i);
    }
  }

  private send(i: number): void {
    const callId = `${this.o.device}-${i}-${++this.attempt}`;
    this.calls.set(callId, i);
    const port = this.port;
    this.stats.sent++;
    this.sock.send(
      Buffer.from(buildMessage({ port, body: bodyOf(this.batch(i)), callId }), 'latin1'),
      port,
      '127.0.0.1',
    );
    clearTimeout(this.timers.get(i));
    this.timers.set(
      i,
      setTimeout(() => {
        this.stats.timeouts++;
        this.failover(port);
        this.send(i);
      }, this.o.timeoutMs),
    );
  }

  /** Moves on from `port` (unless another batch already did). */
  private failover(port: number): void {
    if (this.port !== port) return;
    this.current = (this.current + 1) % this.o.ports.length;
    this.stats.switches++;
  }

  private onAnswer(m: Buffer): void {
    const r = parseResponse(m.toString('latin1'));
    const callId = r.headers['call-id'] ?? '';
    const i = this.calls.get(callId);
    if (i === undefined || !this.inFlight.has(i)) return;
    this.calls.delete(callId);
    if (r.status === 200) {
      clearTimeout(this.timers.get(i));
      this.timers.delete(i);
      this.inFlight.delete(i);
      this.acked.add(this.o.start + i);
      this.stats.ok++;
      for (const w of this.waiters.splice(0)) w();
      void this.fill();
      return;
    }
    if (r.status === 503) {
      this.stats.unavailable++;
      this.unavailableAt.push(Date.now());
      clearTimeout(this.timers.get(i));
      const from = this.port;
      this.timers.set(
        i,
        setTimeout(() => {
          this.failover(from);
          this.send(i);
        }, 200),
      );
    }
  }

  private until(done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (done() ? resolve() : this.waiters.push(check));
      check();
    });
  }
}
