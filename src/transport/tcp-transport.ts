import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Limits } from '../protocol/sip-request.js';
import { TcpFramer } from '../protocol/tcp-framer.js';
import type { Link, TransactionLayer } from '../protocol/transaction-layer.js';
import { ConnectionsPerSource } from './connections-per-source.js';

export interface TcpOptions {
  idleTimeoutS: number;
  maxConnections: number;
  /** Concurrent connections from one remote address; 0 = no cap but maxConnections. */
  maxConnectionsPerSource?: number;
  /** Seconds from a request's first byte to its last before the connection is closed. */
  requestTimeoutS?: number;
  /** Response bytes waiting to be sent (the peer does not read) beyond which we stop reading. */
  maxUnsentBytes?: number;
  /** Requests in progress per connection before we stop reading from it (backpressure). */
  maxInflightPerConnection?: number;
  /** Serve TLS instead of plain TCP: the same framing and bounds, behind a handshake with a deadline. */
  tls?: TlsServing;
}

/** A TLS listener's settings (built from config by config/tls-options.ts). */
export interface TlsServing {
  options: tls.TlsOptions;
  handshakeTimeoutMs: number;
  /** Why an established connection must be closed (a client certificate that did not verify), or undefined. */
  refuse(socket: tls.TLSSocket): string | undefined;
}

/** Per connection: its framer and what it costs in memory. */
interface Conn {
  socket: net.Socket;
  framer: TcpFramer;
}

/**
 * Owns the TCP (or TLS) listener and connections. Each connection has its own framer (bounded buffer);
 * pipelined requests are processed concurrently and answered as each completes. A connection
 * that can no longer be framed is answered (when possible) and closed once its earlier
 * requests have been answered.
 *
 * Bounds per connection, so that no peer can hold more than its share: a request must complete
 * within requestTimeoutS of its first byte (the idle timer alone is reset by any byte: one byte a
 * minute would hold a slot and up to a whole partial body forever); reading stops while more
 * than maxUnsentBytes of responses wait for a peer that does not read them (else pipelined
 * requests queue responses without limit); and one address may hold maxConnectionsPerSource.
 *
 * Over TLS the same holds for the decrypted stream; the per-address cap counts connections from their first TCP
 * byte, and a handshake must complete within its own deadline, so that no one holds a slot without speaking TLS.
 */
export class TcpTransport {
  private server: net.Server | undefined;
  private readonly conns = new Set<Conn>();
  private readonly perSource: ConnectionsPerSource;
  /** How often each bound acted (for the stopped line and tests). */
  readonly stats = { refusedPerSource: 0, requestTimeouts: 0, unsentPauses: 0, handshakeFailures: 0 };
  /** The Link label, metrics and logs: tcp or tls. */
  readonly transport: 'tcp' | 'tls';
  /** Every accepted TCP connection, TLS handshakes in progress included (closed with the transport). */
  private readonly raw = new Set<net.Socket>();
  /**
   * TLS connections whose handshake has not completed, by remote address and port: one that closes while still
   * here failed (timeout, bad handshake, refused certificate, peer gone) and is counted once.
   */
  private readonly handshaking = new Map<string, net.Socket>();

  constructor(
    private readonly layer: TransactionLayer,
    private readonly limits: Limits,
    private readonly options: TcpOptions,
    private readonly log: Logger,
  ) {
    this.perSource = new ConnectionsPerSource(options.maxConnectionsPerSource ?? 0);
    this.transport = options.tls ? 'tls' : 'tcp';
  }

  async listen(address: string, port: number): Promise<number> {
    const t = this.options.tls;
    const server: net.Server = t
      ? tls.createServer({ ...t.options, noDelay: true, handshakeTimeout: t.handshakeTimeoutMs })
      : net.createServer({ noDelay: true });
    // Registered before 'secureConnection' can fire (and, over plain TCP, before onConnection below).
    server.on('connection', (s: net.Socket) => this.admit(s));
    if (t) {
      server.on('secureConnection', (s: tls.TLSSocket) => this.onSecureConnection(s, t));
      server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
        this.log.debug({ err: err.message, remote: s.remoteAddress }, 'TLS handshake failed');
        // Node reports a handshake timeout here but leaves the socket open: closing it is ours to do.
        s.destroy();
      });
    } else {
      server.on('connection', (s: net.Socket) => this.onConnection(s));
    }
    server.maxConnections = this.options.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.warn({ err: err.message }, `${this.transport.toUpperCase()} server error`));
    this.server = server;
    return (server.address() as net.AddressInfo).port;
  }

  /** TLS: new connections use these certificate settings; established ones keep theirs (certificate rotation). */
  setSecureContext(options: tls.TlsOptions): void {
    if (this.server instanceof tls.Server) this.server.setSecureContext(options);
  }

  /** Open connections. */
  get connections(): number {
    return this.conns.size;
  }

  /** Bytes held for connections: partial requests read plus responses not yet sent. */
  get bufferedBytes(): number {
    let n = 0;
    for (const c of this.conns) n += c.framer.buffered + c.socket.writableLength;
    return n;
  }

  /** Every TCP connection, before any byte is read (and before any TLS handshake): the per-address cap. */
  private admit(socket: net.Socket): void {
    const address = socket.remoteAddress ?? '';
    if (!this.perSource.tryAdd(address)) {
      // Nothing was read, so there is no request to answer: the connection is simply refused.
      this.stats.refusedPerSource++;
      this.log.debug(
        { remote: address },
        `${this.transport.toUpperCase()} connection refused: too many from this address`,
      );
      socket.destroy();
      return;
    }
    this.raw.add(socket);
    const key = remoteKey(socket);
    if (this.options.tls) this.handshaking.set(key, socket);
    socket.on('close', () => {
      this.raw.delete(socket);
      this.perSource.remove(address);
      if (this.handshaking.get(key) !== socket) return;
      this.handshaking.delete(key);
      this.stats.handshakeFailures++;
    });
  }

  private onSecureConnection(socket: tls.TLSSocket, t: TlsServing): void {
    this.handshaking.delete(remoteKey(socket));
    const why = t.refuse(socket);
    if (why === undefined) return this.onConnection(socket);
    this.stats.handshakeFailures++;
    this.log.debug({ remote: socket.remoteAddress, why }, 'TLS connection refused');
    socket.destroy();
  }

  private onConnection(socket: net.Socket): void {
    if (socket.destroyed) return; // refused by admit()
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const conn: Conn = { socket, framer: new TcpFramer(this.limits) };
    this.conns.add(conn);
    const { framer } = conn;
    const mine = new Set<Promise<void>>();
    const maxInflight = this.options.maxInflightPerConnection ?? 1024;
    const maxUnsent = this.options.maxUnsentBytes ?? Infinity;
    let closing = false;
    const deadline = new RequestDeadline((this.options.requestTimeoutS ?? 60) * 1000, () => {
      this.stats.requestTimeouts++;
      this.log.debug({ remote, buffered: framer.buffered }, 'TCP request not completed in time; closing');
      socket.destroy();
    });
    /**
     * While we do not read, the peer cannot complete its request: the deadline stops, and starts
     * afresh when reading resumes (a peer that does not read is closed by the idle timeout).
     */
    const stopReading = () => {
      socket.pause();
      deadline.clear();
    };
    /** Reading stops while any of these holds; resumes once none does. */
    const mustWait = () =>
      closing ||
      mine.size >= maxInflight ||
      (socket.isPaused() && mine.size >= maxInflight / 2) ||
      socket.writableLength > maxUnsent;
    const resumeIfAllowed = () => {
      if (!socket.isPaused() || socket.destroyed || mustWait()) return;
      socket.resume();
      deadline.update(framer.midMessage, false);
    };
    const link: Link = {
      transport: this.transport,
      remote,
      send: (data) => {
        if (socket.destroyed || !socket.writable) return;
        socket.write(data);
        if (socket.writableLength > maxUnsent && !socket.isPaused()) {
          this.stats.unsentPauses++;
          stopReading();
        }
      },
    };
    socket.on('drain', resumeIfAllowed);
    socket.setTimeout(this.options.idleTimeoutS * 1000, () => {
      this.log.debug({ remote }, 'TCP connection idle; closing');
      socket.destroy();
    });
    socket.on('error', (err) => this.log.debug({ err: err.message, remote }, 'TCP connection error'));
    socket.on('close', () => {
      deadline.clear();
      this.conns.delete(conn);
    });
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
      deadline.update(framer.midMessage, out.messages.length > 0);
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
          resumeIfAllowed();
        });
      }
      if (out.close) {
        closing = true;
        stopReading();
        void Promise.allSettled([...mine]).then(() => socket.end());
      } else if (mustWait()) {
        stopReading();
      }
    });
  }

  /** Stops accepting, waits for requests in progress to be answered, then closes connections. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    await this.layer.idle();
    for (const c of this.conns) c.socket.end();
    setTimeout(() => {
      for (const c of this.conns) c.socket.destroy();
      for (const s of this.raw) s.destroy(); // handshakes still in progress
    }, 1000).unref();
    await closed;
  }
}

/** A connection's remote address and port: the same for a TLS socket and the TCP socket it wraps. */
function remoteKey(s: net.Socket): string {
  return `${s.remoteAddress}|${s.remotePort}`;
}

/**
 * The time limit of the request being read on one connection: it starts with the request's first
 * byte and restarts with each new request, so it measures one request, never the connection.
 */
class RequestDeadline {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly expire: () => void,
  ) {}

  /**
   * After a read: `midMessage` whether a request is incomplete now, `completed` whether one or
   * more finished in this read (so that an incomplete one now is a new request).
   */
  update(midMessage: boolean, completed: boolean): void {
    if (!midMessage) return this.clear();
    if (!this.timer) this.timer = setTimeout(this.expire, this.ms).unref();
    else if (completed) this.timer.refresh();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
