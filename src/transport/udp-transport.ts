import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { decodeDatagram } from '../protocol/datagram-decoder.js';
import { udpReceiveQueueBytes } from './udp-backlog.js';
import type { Limits } from '../protocol/sip-request.js';
import type { TransactionLayer } from '../protocol/transaction-layer.js';

/**
 * Owns the UDP socket. Every datagram is framed by decodeDatagram and handed to the transaction
 * layer; responses go back to the datagram's source address and port (symmetric routing, as
 * RFC 3581 rport asks), which is where NATed meters can be reached.
 */
export class UdpTransport {
  private socket: dgram.Socket | undefined;
  /** The bound port, family and receive buffer (kernel accounting bytes), for receiveBacklog(). */
  private bound: { port: number; family: 4 | 6; bufferBytes: number } | undefined;
  /** Datagrams read since listen, and at the last receiveBacklog(): was there UDP traffic in between. */
  private datagrams = 0;
  private datagramsAtLastReading = 0;

  constructor(
    private readonly layer: TransactionLayer,
    private readonly limits: Limits,
    private readonly log: Logger,
  ) {}

  async listen(address: string, port: number): Promise<number> {
    const family = isIPv6(address) ? 6 : 4;
    const socket = dgram.createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: 8 * 1024 * 1024,
      // We only ever send to the IP address a datagram came from, of the socket's own family: skip
      // dns.lookup, which costs a deferred callback per response (~10% of the receive loop's time
      // under load), and isIPv6's long regex per response too.
      lookup: (addr, _options, callback) => (callback as (e: null, a: string, f: number) => void)(null, addr, family),
    });
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
    this.bound = { port: socket.address().port, family, bufferBytes: socket.getRecvBufferSize() };
    return this.bound.port;
  }

  /**
   * The share of the socket's receive buffer held by datagrams the kernel has queued and we have not
   * read yet (1 = full: the next ones are dropped), or undefined where it cannot be read (udp-backlog.ts)
   * or says nothing: no datagram came since the last call and none waits (a server whose load is all
   * TCP; loop-busy.ts then goes by the loop's utilization alone).
   */
  receiveBacklog(): number | undefined {
    const b = this.bound;
    if (!b || !this.socket) return undefined;
    const read = this.datagrams - this.datagramsAtLastReading;
    this.datagramsAtLastReading = this.datagrams;
    const bytes = udpReceiveQueueBytes(b.port, b.family);
    if (bytes === undefined || (bytes === 0 && read === 0)) return undefined;
    return bytes / b.bufferBytes;
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const socket = this.socket;
    if (!socket) return;
    this.datagrams++;
    try {
      // rinfo is already a fresh {address, port, ...} per datagram: it serves as the link's remote.
      // receive() answers at once or returns a promise that never rejects; the layer counts it as
      // in flight until answered (see close()).
      void this.layer.receive(decodeDatagram(msg, this.limits), new UdpLink(socket, rinfo));
    } catch (err) {
      // A bug must cost one datagram, never the process.
      this.log.error(
        { err, remote: { address: rinfo.address, port: rinfo.port } },
        'UDP datagram could not be handled',
      );
    }
  }

  /** Waits for requests in progress (their responses still go out), then closes the socket. */
  async close(): Promise<void> {
    await this.layer.idle();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((r) => socket.close(() => r()));
  }
}

/** The way back to one datagram's sender (a class, not a closure per datagram: this runs per request). */
class UdpLink {
  readonly transport = 'udp' as const;

  constructor(
    private readonly socket: dgram.Socket,
    readonly remote: { address: string; port: number },
  ) {}

  send(data: Buffer): void {
    // No callback: with one, Node defers a call per datagram even when the send completed at once.
    // A failed send is a lost response like any other UDP loss: the client retransmits and the
    // transaction cache answers again.
    this.socket.send(data, this.remote.port, this.remote.address);
  }
}
