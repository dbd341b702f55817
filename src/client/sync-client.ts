import type { Logger } from 'pino';
import { batchKeyString, compactToEpochSecond, type BatchKey } from '../domain/batch.js';
import { ha1 } from '../domain/device-credential.js';
import type { ConsumptionStore } from '../store/consumption-store.js';
import { peerText } from '../sync/peer-text.js';
import { SyncConnection } from '../sync/sync-connection.js';
import { connectStream, type ClientTls } from './stream-socket.js';
import {
  helloProof,
  SYNC_PROTOCOL_VERSION,
  type Challenge,
  type SyncMessage,
  type SyncRequest,
  type WireBatch,
} from '../sync/sync-protocol.js';

export interface SyncClientOptions {
  host: string;
  port: number;
  devices: string[];
  retentionS: number;
  /** Reconnect after a lost connection (a real meter always does). */
  reconnect?: boolean;
  /** Device -> secret (`ec-server device add`): the hello proves each one it has (docs/sync-protocol.md). */
  secrets?: ReadonlyMap<string, string>;
  /**
   * The watermark: the epoch second before which nothing more will be journaled, for any of the devices
   * (a meter replaying a past hour keeps it before what it still journals: MeterClient.final). Sent with the
   * hello and every digest answer; the server records a period only when it ends at or before it. Default:
   * the clock (nothing journals into the past).
   */
  final?: () => number;
  /** Connect over TLS (the server has sync.tls=true), verifying the server certificate. */
  tls?: ClientTls;
}

export interface SyncClientStats {
  connects: number;
  requests: number;
  /** Batches resent to the server because sync asked for them. */
  batchesResent: number;
  /** Bytes of the batch answers (what repairs cost on the wire). */
  batchBytes: number;
  bytesOut: number;
  bytesIn: number;
}

/**
 * The meter side of the sync protocol: connects out (meters sit behind NAT), says hello with its
 * device ids, then answers the server's digest/summaries/batches requests from its journal.
 */
export class SyncClient {
  private conn: SyncConnection | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  readonly stats: SyncClientStats = {
    connects: 0,
    requests: 0,
    batchesResent: 0,
    batchBytes: 0,
    bytesOut: 0,
    bytesIn: 0,
  };
  private welcomed: (() => void) | undefined;
  private serverError: Error | undefined;
  /** Connections whose hello is sent (one hello per connection, whatever the server sends). */
  private readonly helloSent = new WeakSet<SyncConnection>();

  constructor(
    private readonly journal: ConsumptionStore,
    private readonly o: SyncClientOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Connects and resolves once the server has welcomed us (the hello answers the server's challenge);
   * rejects when the connection closes before that, with the server's error frame if it sent one
   * (with `reconnect`, the next attempts go on in the background).
   */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connectStream(this.o.host, this.o.port, this.o.tls);
      socket.setNoDelay(true);
      const conn = new SyncConnection(socket, (m) => void this.onMessage(conn, m));
      this.welcomed = resolve;
      this.serverError = undefined;
      let socketError: Error | undefined;
      socket.once('connect', () => this.stats.connects++);
      socket.once('error', (e) => (socketError = e));
      socket.on('close', () => {
        reject(this.serverError ?? socketError ?? new Error('sync connection closed before the welcome'));
        this.stats.bytesIn += conn.bytesIn;
        this.stats.bytesOut += conn.bytesOut;
        if (this.conn === conn) this.conn = undefined;
        if (!this.stopped && this.o.reconnect) {
          this.retry = setTimeout(() => void this.connect().catch(() => undefined), 1000);
        }
      });
      this.conn = conn;
    });
  }

  private async onMessage(conn: SyncConnection, m: SyncMessage): Promise<void> {
    if (m.type === 'challenge') {
      if (!this.helloSent.has(conn)) this.sendHello(conn, m);
      return;
    }
    if (m.type === 'welcome') {
      this.welcomed?.();
      return;
    }
    if (m.type === 'error') {
      this.serverError = new Error(`sync server: ${peerText(m.code)}: ${peerText(m.message)}`);
      this.log.warn({ code: m.code, message: m.message }, 'sync server reported an error');
      return;
    }
    if (!('id' in m) || typeof m.id !== 'number') return;
    this.stats.requests++;
    try {
      conn.send(await this.answer(m as SyncRequest));
    } catch (e) {
      conn.send({ type: 'error', id: m.id, code: 'EC_SYNC_CLIENT_FAILED', message: (e as Error).message });
    }
  }

  /** The hello, with a proof for every device we hold the secret of, over this connection's nonce. */
  private sendHello(conn: SyncConnection, c: Challenge): void {
    this.helloSent.add(conn);
    const proofs: Record<string, string> = {};
    if (typeof c.nonce === 'string' && typeof c.realm === 'string') {
      for (const d of this.o.devices) {
        const secret = this.o.secrets?.get(d);
        if (secret !== undefined) proofs[d] = helloProof(ha1('SHA-256', d, c.realm, secret), c.nonce, d);
      }
    }
    conn.send({
      type: 'hello',
      version: SYNC_PROTOCOL_VERSION,
      devices: this.o.devices,
      retention_s: this.o.retentionS,
      client: 'ec-client',
      final: this.final(),
      ...(Object.keys(proofs).length ? { proofs } : {}),
    });
  }

  private async answer(r: SyncRequest): Promise<SyncMessage> {
    if (!this.o.devices.includes(r.device)) throw new Error(`device ${r.device} is not journaled here`);
    switch (r.type) {
      case 'digest': {
        // Taken before reading: what is journaled after the read lies at or after this watermark.
        const final = this.final();
        return {
          id: r.id,
          type: 'digest',
          intervals: await this.journal.intervalSummaries({ device_id: r.device, from: r.from, to: r.to }, r.interval),
          final,
        };
      }
      case 'summaries': {
        const list = await this.journal.readSummaries({ device_id: r.device, from: r.from, to: r.to });
        return {
          id: r.id,
          type: 'summaries',
          summaries: list.map(({ ec_date, ec_time, start_us, end_us, values_count, values_checksum }) => ({
            ec_date,
            ec_time,
            start_us,
            end_us,
            values_count,
            values_checksum,
          })),
        };
      }
      case 'batches': {
        const batches = await this.readKeys(r.device, r.keys);
        this.stats.batchesResent += batches.length;
        this.stats.batchBytes += Buffer.byteLength(JSON.stringify(batches));
        return { id: r.id, type: 'batches', batches };
      }
      default:
        throw new Error(`unknown request ${(r as { type: string }).type}`);
    }
  }

  /** The watermark now, a whole epoch second never past the clock. */
  private final(): number {
    const clock = Math.floor(Date.now() / 1000);
    return Math.min(clock, Math.floor(this.o.final?.() ?? clock));
  }

  private async readKeys(device: string, keys: BatchKey[]): Promise<WireBatch[]> {
    const wanted = new Set(keys.map((k) => batchKeyString({ ...k, device_id: device })));
    const seconds = new Set(keys.map((k) => `${k.ec_date}${k.ec_time}`));
    const out: WireBatch[] = [];
    for (const s of seconds) {
      const sec = compactToEpochSecond(s);
      for (const b of await this.journal.readBatches({ device_id: device, from: sec, to: sec + 1 })) {
        if (!wanted.has(batchKeyString(b))) continue;
        const { insert_time: _ignored, ...wire } = b;
        out.push(wire);
      }
    }
    return out;
  }

  close(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.conn?.close();
  }
}
