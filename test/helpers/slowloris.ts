import net from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Slowloris peers for the flood test, in a process of their own (run at low priority, as an attacker
 * on another host would not share the server's CPU): `node slowloris.js PORT SOURCE COUNT`. Each
 * connection sends the start of a MESSAGE (half of them also declare a 1 MiB body and send 256 KiB
 * of it at once), then one byte every 200 ms, and reconnects 1 s after the server cuts it. On
 * SIGTERM it prints {"connections":N,"cut":M} and exits.
 */
export class Slowloris {
  private stopped = false;
  private readonly sockets = new Set<net.Socket>();
  private timer: NodeJS.Timeout | undefined;
  connections = 0;
  cut = 0;

  constructor(
    private readonly port: number,
    private readonly source: string,
  ) {}

  start(n: number): void {
    for (let i = 0; i < n; i++) this.open(i);
    // One byte a tick to every open connection (a slowloris resets idle timers this way).
    this.timer = setInterval(() => {
      for (const s of this.sockets) if (s.writable) s.write('a');
    }, 200);
  }

  private open(i: number): void {
    if (this.stopped) return;
    const s = net.connect({ port: this.port, host: '127.0.0.1', localAddress: this.source });
    this.connections++;
    s.on('connect', () => {
      this.sockets.add(s);
      const head =
        `MESSAGE sip:ec@127.0.0.1:${this.port} SIP/2.0\r\nVia: SIP/2.0/TCP ${this.source};branch=z9hG4bK-sl-${i}\r\n` +
        `From: <sip:x@${this.source}>;tag=${i}\r\nTo: <sip:ec@127.0.0.1>\r\nCall-ID: sl-${i}\r\nCSeq: 1 MESSAGE\r\n`;
      s.write(i % 2 === 0 ? head : `${head}Content-Length: 1048576\r\n\r\n${'x'.repeat(256 * 1024)}`);
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.sockets.delete(s)) this.cut++;
      if (!this.stopped) setTimeout(() => this.open(i), 1000);
    });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const s of this.sockets) s.destroy();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [port, source, count] = process.argv.slice(2);
  const peers = new Slowloris(Number(port), source!);
  peers.start(Number(count));
  process.on('SIGTERM', () => {
    peers.stop();
    process.stdout.write(JSON.stringify({ connections: peers.connections, cut: peers.cut }) + '\n');
    process.exit(0);
  });
}
