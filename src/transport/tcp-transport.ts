import net from 'node:net';
import type { Logger } from 'pino';
import type { Limits } from '../protocol/sip-request.js';
import { TcpFramer } from '../protocol/tcp-framer.js';
import type { Link, TransactionLayer } from '../protocol/transaction-layer.js';

export interface TcpOptions {
  idleTimeoutS: number;
  maxConnections: number;
  /** Requests in progress per connection before we stop reading from it (backpressure). */
  maxInflightPerConnection?: number;
}

/**
 * Owns the TCP listener and connections. Each connection has its own framer (bounded buffer);
 * pipelined requests are processed concurrently and answered as each completes. A connection
 * that can no longer be framed is answered (when possible) and closed once its earlier
 * requests have been answered.
 */
export class TcpTransport {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly layer: TransactionLayer,
    private readonly limits: Limits,
    private readonly options: TcpOptions,
    private readonly log: Logger,
  ) {}

  async listen(address: string, port: number): Promise<number> {
    const server = net.createServer({ noDelay: true }, (s) => this.onConnection(s));
    server.maxConnections = this.options.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.warn({ err: err.message }, 'TCP server error'));
    this.server = server;
    return (server.address() as net.AddressInfo).port;
  }

  private onConnection(socket: net.Socket): void {
    this.sockets.add(socket);
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const framer = new TcpFramer(this.limits);
    const mine = new Set<Promise<void>>();
    const maxInflight = this.options.maxInflightPerConnection ?? 1024;
    let closing = false;
    const link: Link = {
      transport: 'tcp',
      remote,
      send: (data) => {
        if (!socket.destroyed && socket.writable) socket.write(data);
      },
    };
    socket.setTimeout(this.options.idleTimeoutS * 1000, () => {
      this.log.debug({ remote }, 'TCP connection idle; closing');
      socket.destroy();
    });
    socket.on('error', (err) => this.log.debug({ err: err.message, remote }, 'TCP connection error'));
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('data', (chunk) => {
      if (closing) return;
      let out;
      try {
        out = framer.push(chunk);
      } catch (err) {
        // A bug must cost one connection, never the process.
        this.log.error({ err, remote }, 'TCP stream could not be framed; closing the connection');
        socket.destroy();
        return;
      }
      for (const decoded of out.messages) {
        let p: Promise<void> | undefined;
        try {
          p = this.layer.receive(decoded, link);
        } catch (err) {
          // A bug must cost one request, never the process.
          this.log.error({ err, remote }, 'TCP request handling failed');
        }
        if (!p) continue;
        mine.add(p);
        // The layer's promise never rejects: nothing to catch here.
        void p.then(() => {
          mine.delete(p);
          if (socket.isPaused() && !closing && mine.size < maxInflight / 2) socket.resume();
        });
      }
      if (out.close) {
        closing = true;
        socket.pause();
        void Promise.allSettled([...mine]).then(() => socket.end());
      } else if (mine.size >= maxInflight) {
        socket.pause();
      }
    });
  }

  /** Stops accepting, waits for requests in progress to be answered, then closes connections. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    await this.layer.idle();
    for (const s of this.sockets) s.end();
    setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 1000).unref();
    await closed;
  }
}
