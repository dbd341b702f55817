import dgram from 'node:dgram';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { connectStream, type ClientTls } from './stream-socket.js';
import { parseHeadGeneral } from '../protocol/general-head.js';
import { findHeadEnd } from '../protocol/head-scan.js';

/** Largest response head we wait for over TCP; ours are a few hundred bytes. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface SenderOptions {
  host: string;
  port: number;
  /** auto: UDP unless the request exceeds 1300 bytes (RFC 3261 18.1.1), then TCP; tls: every request over TLS. */
  transport: 'auto' | 'udp' | 'tcp' | 'tls';
  /** With transport tls: how the server is verified (and the client certificate, if any). */
  tls?: ClientTls;
  /** RFC 3261 timers (ms): T1 RTT estimate, T2 cap of the non-INVITE retransmit interval. */
  t1Ms?: number;
  t2Ms?: number;
  from: string;
}

export interface SendResult {
  status: number;
  reason: string;
  headers: Record<string, unknown>;
  /** Times the request was (re)transmitted. */
  transmissions: number;
}

interface Pending {
  resolve: (r: SendResult) => void;
  transmissions: number;
  timers: NodeJS.Timeout[];
  /** The request bytes, kept to resend over a new TCP connection. */
  data: Buffer;
}

export const UDP_SIZE_LIMIT = 1300;

/**
 * A minimal SIP UAC for MESSAGE: non-INVITE client transactions (RFC 3261 17.1.2) over UDP with
 * Timer E retransmissions and Timer F timeout, or over one persistent TCP connection (no
 * retransmissions; a lost connection resends outstanding requests on a new one). A timeout
 * resolves as 408, like a transaction-layer timeout.
 */
export class SipSender {
  private udp: dgram.Socket | undefined;
  private tcp: net.Socket | undefined;
  private tcpBuf: Buffer = Buffer.alloc(0);
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private readonly tagBase = randomBytes(4).toString('hex');
  private closed = false;

  constructor(
    private readonly o: SenderOptions,
    private readonly log: Logger,
  ) {}

  private get t1(): number {
    return this.o.t1Ms ?? 500;
  }

  async start(): Promise<void> {
    if (this.o.transport !== 'tcp' && this.o.transport !== 'tls') {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '0.0.0.0', () => r()));
      udp.on('message', (m) => this.onResponse(m));
      udp.on('error', (e) => this.log.debug({ err: e.message }, 'UDP error'));
      this.udp = udp;
    }
  }

  /** The Request-URI of every MESSAGE (digest responses are computed over it). */
  get requestUri(): string {
    return `sip:ec@${this.o.host}:${this.o.port}`;
  }

  /** Sends one MESSAGE; resolves with the final response (or 408 after Timer F). */
  send(body: string, headers: Record<string, string>): Promise<SendResult> {
    const useTcp =
      this.o.transport === 'tcp' ||
      this.o.transport === 'tls' ||
      (this.o.transport === 'auto' && Buffer.byteLength(body) + 600 > UDP_SIZE_LIMIT);
    // Unpredictable: a branch someone could guess could be used to spoil the request's transaction.
    const branch = `z9hG4bK${this.tagBase}${(++this.seq).toString(36)}${randomBytes(4).toString('hex')}`;
    const proto = this.streamProto(useTcp);
    const local = useTcp ? '127.0.0.1' : `127.0.0.1:${this.udp!.address().port}`;
    const lines = [
      `MESSAGE ${this.requestUri} SIP/2.0`,
      `Via: SIP/2.0/${proto} ${local};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:${this.o.from}@ec-client>;tag=${this.tagBase}`,
      `To: <sip:ec@${this.o.host}:${this.o.port}>`,
      `Call-ID: ${branch}@ec-client`,
      `CSeq: ${this.seq} MESSAGE`,
      'Content-Type: text/plain',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    const data = Buffer.from(lines.join('\r\n'));
    return new Promise<SendResult>((resolve) => {
      const p: Pending = { resolve, transmissions: 0, timers: [], data };
      this.pending.set(branch, p);
      const finish = (r: SendResult) => {
        if (!this.pending.delete(branch)) return;
        for (const t of p.timers) clearTimeout(t);
        resolve({ ...r, transmissions: p.transmissions });
      };
      p.resolve = finish;
      // Timer F: 64*T1 for both transports.
      p.timers.push(
        setTimeout(
          () => finish({ status: 408, reason: 'Request Timeout (Timer F)', headers: {}, transmissions: 0 }),
          64 * this.t1,
        ),
      );
      if (useTcp) {
        this.writeTcp(data);
        p.transmissions++;
      } else {
        const transmit = (interval: number) => {
          if (!this.pending.has(branch) || this.closed) return;
          p.transmissions++;
          this.udp!.send(data, this.o.port, this.o.host);
          // Timer E: doubles up to T2.
          p.timers.push(setTimeout(() => transmit(Math.min(interval * 2, this.o.t2Ms ?? 4000)), interval));
        };
        transmit(this.t1);
      }
    });
  }

  /** The Via transport: UDP, or the stream's (TCP, or TLS when every request goes over TLS). */
  private streamProto(stream: boolean): 'UDP' | 'TCP' | 'TLS' {
    if (!stream) return 'UDP';
    return this.o.transport === 'tls' ? 'TLS' : 'TCP';
  }

  private writeTcp(data: Buffer): void {
    if (!this.tcp || this.tcp.destroyed) {
      const s = connectStream(this.o.host, this.o.port, this.o.transport === 'tls' ? (this.o.tls ?? {}) : undefined);
      s.setNoDelay(true);
      s.on('data', (d) => this.onTcpData(d));
      // An unverified server certificate shows up here (warn: the operator must see why nothing is acknowledged).
      s.on('error', (e) =>
        this.o.transport === 'tls'
          ? this.log.warn({ err: e.message, code: (e as NodeJS.ErrnoException).code }, 'TLS error')
          : this.log.debug({ err: e.message }, 'TCP error'),
      );
      s.on('close', () => {
        if (this.tcp !== s) return;
        this.tcp = undefined;
        this.tcpBuf = Buffer.alloc(0);
        // Resend what is outstanding on a new connection (the server's upsert is idempotent).
        if (!this.closed) setTimeout(() => this.resendTcp(), 200);
      });
      this.tcp = s;
    }
    this.tcp.write(data);
  }

  private resendTcp(): void {
    for (const p of this.pending.values()) {
      if (p.data.includes(`SIP/2.0/${this.streamProto(true)}`)) {
        p.transmissions++;
        this.writeTcp(p.data);
      }
    }
  }

  private onTcpData(d: Buffer): void {
    this.tcpBuf = this.tcpBuf.length ? Buffer.concat([this.tcpBuf, d]) : d;
    for (;;) {
      const end = findHeadEnd(this.tcpBuf, 0, this.tcpBuf.length);
      if (end < 0) {
        // A server that never ends a head gets no more of our memory than a response may take.
        if (this.tcpBuf.length > MAX_RESPONSE_BYTES) this.tcp?.destroy();
        return;
      }
      const m = /content-length\s*:\s*(\d+)/i.exec(this.tcpBuf.toString('latin1', 0, end));
      const total = end + 4 + Number(m?.[1] ?? 0);
      if (this.tcpBuf.length < total) return;
      this.onResponse(this.tcpBuf.subarray(0, total));
      this.tcpBuf = this.tcpBuf.subarray(total);
    }
  }

  private onResponse(buf: Buffer): void {
    // The head only, through the linear parser: a response is wire input like any other.
    const end = findHeadEnd(buf, 0, buf.length);
    const m = parseHeadGeneral(buf.toString('latin1', 0, end < 0 ? buf.length : end))?.message;
    const branch = m?.headers.via?.[0]?.params.branch;
    if (m?.status === undefined || !branch) return;
    const p = this.pending.get(branch);
    if (!p || m.status < 200) return;
    p.resolve({ status: m.status, reason: m.reason ?? '', headers: m.headers, transmissions: p.transmissions });
  }

  get outstanding(): number {
    return this.pending.size;
  }

  close(): void {
    this.closed = true;
    for (const p of [...this.pending.values()])
      p.resolve({ status: 408, reason: 'client closing', headers: {}, transmissions: p.transmissions });
    this.udp?.close();
    this.tcp?.destroy();
  }
}
