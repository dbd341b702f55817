import type { Logger } from 'pino';
import { batchEpochSecond, type Batch } from '../domain/batch.js';
import type { Journal } from './journal.js';
import { corrupt, generateBatches, type GeneratorOptions } from './readings.js';
import { DigestSession } from './digest-session.js';
import { FailoverSender } from './failover-sender.js';
import { SipSender } from './sip-sender.js';

export type Source =
  | ({ kind: 'generate'; devices: string[]; start: number; seconds: number; realtime: boolean } & GeneratorOptions)
  | { kind: 'batches'; batches: Batch[] };

export interface MeterOptions {
  source: Source;
  /** Fraction of batches journaled but never sent (as if the network lost them). */
  loss: number;
  /** Fraction sent with altered values and a checksum header over the altered values. */
  corrupt: number;
  /** Requests in flight at once. */
  window: number;
  /** Attempts per batch on 408/503/lost connection, across the servers, before giving up (sync repairs it). */
  maxAttempts: number;
  /** Device secrets (`ec-server device add`): requests of these devices use digest authentication. */
  secrets?: ReadonlyMap<string, string>;
  retentionS: number;
  /** Random source for fault injection (seeded in tests). */
  random?: () => number;
  onProgress?: (s: MeterStats) => void;
  /** Called for every batch lost or corrupted on purpose (tests measure repair cost with it). */
  onFault?: (kind: 'lost' | 'corrupted', original: Batch) => void;
}

export interface MeterStats {
  generated: number;
  sent: number;
  acked: number;
  failed: number;
  lost: number;
  corrupted: number;
  retried: number;
  transmissions: number;
  /** Times the meter changed server (failed over, or came back to a preferred one). */
  switches: number;
}

/**
 * A well-behaved meter: journal first, then send with integrity headers, retry on 408/503 or a lost
 * connection (honouring Retry-After, on the next of its servers when it has several), and keep a
 * bounded number of requests in flight.
 */
export class MeterClient {
  readonly stats: MeterStats = {
    generated: 0,
    sent: 0,
    acked: 0,
    failed: 0,
    lost: 0,
    corrupted: 0,
    retried: 0,
    transmissions: 0,
    switches: 0,
  };
  private readonly seq = new Map<string, number>();
  private readonly sessions = new Map<string, DigestSession>();
  /** Deliveries in flight, with the epoch second of their batch (the watermark stays at or before it). */
  private inFlight = new Map<Promise<void>, number>();
  private stopped = false;
  private readonly sender: FailoverSender;
  /** The watermark (see final()); the next group's lowest second is journaled only after it is set lower. */
  private watermark: number;
  /** What the watermark becomes once the group being journaled is (set by groups() as it yields). */
  private watermarkAfterGroup = Infinity;

  constructor(
    private readonly journal: Journal,
    sender: SipSender | FailoverSender,
    private readonly o: MeterOptions,
    private readonly log: Logger,
  ) {
    this.sender = sender instanceof SipSender ? FailoverSender.of(sender) : sender;
    const s = o.source;
    this.watermark = s.kind === 'generate' ? s.start : lowestSecond(s.batches, 0);
  }

  /**
   * The epoch second before which this meter will journal (or send) nothing more (Infinity once it is
   * done): a replay of a past hour holds it at the lowest second it has still to journal or has in flight,
   * so that sync does not record periods the replay is still filling (docs/sync-protocol.md, watermark).
   */
  final(): number {
    // A batch still on its way is a write to come too: a late corrupted copy must not land in a recorded period.
    let low = this.stopped ? Infinity : this.watermark;
    for (const second of this.inFlight.values()) low = Math.min(low, second);
    return low;
  }

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<MeterStats> {
    for await (const group of this.groups()) {
      if (this.stopped) break;
      for (const b of group) b.batch_seq = this.nextSeq(b.device_id);
      // Journal BEFORE sending: whatever happens on the wire, sync can still recover it.
      await this.journal.upsertBatches(group);
      this.watermark = this.watermarkAfterGroup;
      this.stats.generated += group.length;
      for (const b of group) {
        const r = this.o.random ?? Math.random;
        if (r() < this.o.loss) {
          this.stats.lost++;
          this.o.onFault?.('lost', b);
          continue;
        }
        let wire = b;
        if (r() < this.o.corrupt) {
          wire = corrupt(b);
          this.stats.corrupted++;
          this.o.onFault?.('corrupted', b);
        }
        while (this.inFlight.size >= this.o.window) await Promise.race(this.inFlight.keys());
        const p = this.deliver(wire).finally(() => this.inFlight.delete(p));
        this.inFlight.set(p, batchEpochSecond(b));
      }
      this.o.onProgress?.(this.stats);
    }
    this.watermark = Infinity;
    await Promise.all(this.inFlight.keys());
    return this.stats;
  }

  private async *groups(): AsyncGenerator<Batch[]> {
    const s = this.o.source;
    if (s.kind === 'batches') {
      // A replay's batches may come in any order: the watermark stays at the lowest second still to come.
      const suffixLowest = new Array<number>(s.batches.length + 1).fill(Infinity);
      for (let i = s.batches.length - 1; i >= 0; i--)
        suffixLowest[i] = Math.min(suffixLowest[i + 1]!, batchEpochSecond(s.batches[i]!));
      for (let i = 0; i < s.batches.length; i += 100) {
        this.watermarkAfterGroup = suffixLowest[Math.min(i + 100, s.batches.length)]!;
        yield s.batches.slice(i, i + 100);
      }
      return;
    }
    for (let t = s.start; s.seconds === 0 || t < s.start + s.seconds; t++) {
      if (s.realtime) {
        // A second's readings are complete when it has passed.
        const wait = (t + 1) * 1000 - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if ((t - s.start) % 60 === 59) this.journal.prune(t - this.o.retentionS);
      this.watermarkAfterGroup = t + 1;
      yield s.devices.flatMap((d) => generateBatches(d, t, s));
      if (this.stopped) return;
    }
  }

  /** The device's digest session when it has a secret (one session per device: its nonce is reused). */
  private sessionOf(device: string): DigestSession | undefined {
    const secret = this.o.secrets?.get(device);
    if (secret === undefined) return undefined;
    let session = this.sessions.get(device);
    if (!session) this.sessions.set(device, (session = new DigestSession(device, secret)));
    return session;
  }

  private nextSeq(device: string): number {
    const n = (this.seq.get(device) ?? 0) + 1;
    this.seq.set(device, n);
    return n;
  }

  private async deliver(b: Batch): Promise<void> {
    const body = `${b.device_id}|${b.ec_date}${b.ec_time}|${b.ec_consumption_values}`;
    const headers = {
      'X-EC-Count': String(b.values_count),
      'X-EC-Checksum': b.values_checksum,
      'X-EC-Seq': String(b.batch_seq),
    };
    this.stats.sent++;
    const session = this.sessionOf(b.device_id);
    let challenges = 0;
    for (let attempt = 1; ; attempt++) {
      const route = await this.sender.route(() => this.stopped);
      const authorization = session?.authorize('MESSAGE', route.sender.requestUri, body);
      const r = await route.sender.send(body, authorization ? { ...headers, Authorization: authorization } : headers);
      // A challenge (first request, stale nonce, server restart): answer it and send again at once.
      if (r.status === 401 && session && challenges++ < 2 && session.accept(challengesOf(r.headers))) {
        attempt--;
        continue;
      }
      this.stats.transmissions += r.transmissions;
      // One line per answered attempt (trace level): which receiver said what, for tests and field diagnosis.
      const server = `${route.endpoint.host}:${route.endpoint.port}`;
      this.log.trace({ device: b.device_id, second: batchEpochSecond(b), status: r.status, server }, 'answer');
      const retryable = this.sender.report(route, r);
      this.stats.switches = this.sender.pool.switches;
      if (r.status === 200) {
        this.stats.acked++;
        return;
      }
      if (!retryable || attempt >= this.o.maxAttempts || this.stopped) {
        this.stats.failed++;
        this.log.warn(
          { device: b.device_id, second: b.ec_date + b.ec_time, status: r.status, reason: r.reason },
          'batch not accepted; sync will repair it',
        );
        return;
      }
      // The next attempt goes wherever the pool says, after the Retry-After or pause it imposes.
      this.stats.retried++;
      if (r.status !== 503)
        this.log.debug({ server: route.endpoint, status: r.status, reason: r.reason }, 'server failed');
    }
  }
}

function challengesOf(headers: Record<string, unknown>): string[] {
  const v = headers['www-authenticate'];
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
}

/** The lowest epoch second of batches[from..] (Infinity when none). */
function lowestSecond(batches: readonly Batch[], from: number): number {
  let low = Infinity;
  for (let i = from; i < batches.length; i++) low = Math.min(low, batchEpochSecond(batches[i]!));
  return low;
}
