import { readFileSync } from 'node:fs';

/**
 * Bytes waiting in the kernel's receive queue of the UDP socket bound to local `port`, from Linux's
 * /proc/net/udp (udp6 for an IPv6 socket): the `rx_queue` column, the memory its datagrams hold
 * (the kernel's accounting, of the same kind as SO_RCVBUF, which it is compared with: a queue at
 * the socket's receive buffer size drops what comes next). Undefined where there is no such file
 * (not Linux) or no such socket.
 *
 * Why: when the event loop falls behind, datagrams wait there, a queue no bound of ours sees
 * (loop-busy.ts). Its length says at once whether the receiver is behind, which the loop's
 * utilization says only after the fact (100 % busy while catching up as well as while falling behind).
 *
 * Reads a file of one line per UDP socket of the host (a few on a server): tens of microseconds,
 * called once per 100-ms window.
 */
export function udpReceiveQueueBytes(port: number, family: 4 | 6): number | undefined {
  let text: string;
  try {
    text = readFileSync(family === 6 ? '/proc/net/udp6' : '/proc/net/udp', 'latin1');
  } catch {
    return undefined;
  }
  return receiveQueueOf(text, port);
}

/** The rx_queue of the sockets bound to `port` in a /proc/net/udp{,6} text (summed: SO_REUSEPORT). */
export function receiveQueueOf(text: string, port: number): number | undefined {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let total: number | undefined;
  // Lines: "  sl: local_address rem_address st tx_queue:rx_queue ...", addresses "HEXIP:HEXPORT".
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5 || !fields[1]!.endsWith(hexPort)) continue;
    const queues = fields[4]!.split(':');
    const rx = Number.parseInt(queues[1] ?? '', 16);
    if (Number.isFinite(rx)) total = (total ?? 0) + rx;
  }
  return total;
}
