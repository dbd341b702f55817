import dgram from 'node:dgram';
import net from 'node:net';

let branchCounter = 0;

export interface MessageOptions {
  body: string;
  port: number;
  branch?: string;
  callId?: string;
  contentType?: string | null;
  extraHeaders?: string[];
  method?: string;
  transport?: 'UDP' | 'TCP' | 'TLS';
}

/** A MESSAGE as a seed-compatible meter would send it. */
export function buildMessage(o: MessageOptions): string {
  const method = o.method ?? 'MESSAGE';
  const branch = o.branch ?? `z9hG4bK-test-${process.pid}-${++branchCounter}`;
  const bytes = Buffer.byteLength(o.body, 'latin1');
  return [
    `${method} sip:ec@127.0.0.1:${o.port} SIP/2.0`,
    `Via: SIP/2.0/${o.transport ?? 'UDP'} 127.0.0.1:5999;branch=${branch};rport`,
    'Max-Forwards: 70',
    'From: <sip:meter@127.0.0.1>;tag=m1',
    `To: <sip:ec@127.0.0.1:${o.port}>`,
    `Call-ID: ${o.callId ?? `call-${branch}`}`,
    `CSeq: 1 ${method}`,
    ...(o.contentType === null ? [] : [`Content-Type: ${o.contentType ?? 'text/plain'}`]),
    ...(o.extraHeaders ?? []),
    `Content-Length: ${bytes}`,
    '',
    o.body,
  ].join('\r\n');
}

export interface ParsedResponse {
  status: number;
  reason: string;
  headers: Record<string, string>;
  raw: string;
}

export function parseResponse(raw: string): ParsedResponse {
  const [head] = raw.split('\r\n\r\n');
  const lines = head!.split('\r\n');
  const m = /^SIP\/2\.0 (\d{3}) (.*)$/.exec(lines[0]!);
  if (!m) throw new Error(`not a response: ${JSON.stringify(raw.slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(m[1]), reason: m[2]!, headers, raw };
}

/** Sends one datagram; resolves with the first response, or null after `waitMs` of silence. */
export async function udpRequest(port: number, data: Buffer | string, waitMs = 1500): Promise<ParsedResponse | null> {
  const sock = dgram.createSocket('udp4');
  try {
    return await new Promise<ParsedResponse | null>((resolve, reject) => {
      const timer = setTimeout(() => resolve(null), waitMs);
      sock.on('message', (msg) => {
        clearTimeout(timer);
        resolve(parseResponse(msg.toString('latin1')));
      });
      sock.on('error', reject);
      sock.send(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

/**
 * Proves that `data` gets no answer without waiting for a time: sends it, then `barrier` (a request
 * the server answers) from the same socket, and resolves with the responses that came before the
 * barrier's (matched by Call-ID). The server reads datagrams in order, and an answer to `data` would
 * have been sent before the barrier's (at the latest with it, when both wait for one commit).
 */
export async function udpBeforeBarrier(
  port: number,
  data: Buffer | string,
  barrier: string,
  waitMs = 10_000,
): Promise<{ before: ParsedResponse[]; barrier: ParsedResponse | null }> {
  const callId = /^Call-ID: (.*)$/m.exec(barrier)?.[1];
  const sock = dgram.createSocket('udp4');
  try {
    return await new Promise((resolve, reject) => {
      const before: ParsedResponse[] = [];
      const timer = setTimeout(() => resolve({ before, barrier: null }), waitMs);
      sock.on('message', (msg) => {
        const r = parseResponse(msg.toString('latin1'));
        if (r.headers['call-id'] !== callId) return void before.push(r);
        clearTimeout(timer);
        resolve({ before, barrier: r });
      });
      sock.on('error', reject);
      sock.send(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, port, '127.0.0.1');
      sock.send(Buffer.from(barrier, 'latin1'), port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

/** A UDP socket that can send several datagrams and collect every response. */
export class UdpPeer {
  readonly sock = dgram.createSocket('udp4');
  readonly responses: ParsedResponse[] = [];
  private waiters: (() => void)[] = [];
  constructor() {
    this.sock.on('message', (m) => {
      this.responses.push(parseResponse(m.toString('latin1')));
      for (const w of this.waiters.splice(0)) w();
    });
  }
  send(port: number, data: string): void {
    this.sock.send(Buffer.from(data, 'latin1'), port, '127.0.0.1');
  }
  async waitFor(n: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.responses.length < n && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  close(): void {
    this.sock.close();
  }
}

export interface TcpExchange {
  responses: ParsedResponse[];
  /** True when the server closed the connection. */
  closedByServer: boolean;
}

/**
 * Writes `data` on a new TCP connection (in `chunks` pieces if given) and collects responses
 * until `expect` arrived, the server closed, or `waitMs` passed.
 */
export async function tcpExchange(
  port: number,
  data: Buffer | string,
  expect: number,
  waitMs = 2000,
  chunks = 1,
  /** Called with the responses so far each time one arrives (a test waits on it instead of sleeping). */
  onResponse?: (responses: readonly ParsedResponse[]) => void,
): Promise<TcpExchange> {
  const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    const responses: ParsedResponse[] = [];
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ responses, closedByServer });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    sock.on('data', (d) => {
      text += d.toString('latin1');
      for (;;) {
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) break;
        const lenMatch = /content-length:\s*(\d+)/i.exec(text.slice(0, end));
        const total = end + 4 + Number(lenMatch?.[1] ?? 0);
        if (text.length < total) break;
        responses.push(parseResponse(text.slice(0, total)));
        onResponse?.(responses);
        text = text.slice(total);
      }
      if (responses.length >= expect) finish(false);
    });
    sock.on('end', () => finish(true));
    sock.on('error', (e) =>
      done ? undefined : (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? finish(true) : reject(e),
    );
    sock.on('connect', () => {
      void (async () => {
        const size = Math.ceil(buf.length / chunks);
        for (let i = 0; i < buf.length; i += size) {
          sock.write(buf.subarray(i, i + size));
          if (chunks > 1) await new Promise((r) => setTimeout(r, 5));
        }
      })();
    });
  });
}
