import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { decodeDatagram } from '../protocol/datagram-decoder.js';
import type { Limits } from '../protocol/sip-request.js';
import type { TransactionLayer } from '../protocol/transaction-layer.js';

/**
 * Owns the UDP socket. Every datagram is framed by decodeDatagram and handed to the transaction
 * layer; responses go back to the datagram's source address and port (symmetric routing, as
 * RFC 3581 rport asks), which is where NATed meters can be reached.
 */
export class UdpTransport {
  private socket: dgram.Socket | undefined;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly layer: TransactionLayer,
    private readonly limits: Limits,
    private readonly log: Logger,
  ) {}

  async listen(address: string, port: number): Promise<number> {
    const socket = dgram.createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4', recvBufferSize: 8 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // After bind, socket errors (e.g. ICMP-induced send failures) are logged, never thrown.
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'UDP socket error'));
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    this.socket = socket;
    return socket.address().port;
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const socket = this.socket;
    if (!socket) return;
    const remote = { address: rinfo.address, port: rinfo.port };
    const link = {
      transport: 'udp' as const,
      remote,
      send: (data: Buffer) =>
        socket.send(data, rinfo.port, rinfo.address, (err) => {
          if (err) this.log.debug({ err: err.message, remote }, 'UDP send failed');
        }),
    };
    let decoded;
    try {
      decoded = decodeDatagram(msg, this.limits);
    } catch (err) {
      // A bug must cost one datagram, never the process.
      this.log.error({ err, remote }, 'UDP datagram could not be decoded');
      return;
    }
    const p = this.layer.receive(decoded, link).catch((err) => {
      this.log.error({ err }, 'UDP request handling failed');
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Waits for requests in progress (their responses still go out), then closes the socket. */
  async close(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((r) => socket.close(() => r()));
  }
}
