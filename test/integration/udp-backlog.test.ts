import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import pino from 'pino';
import type { TransactionLayer } from '../../src/protocol/transaction-layer.js';
import { receiveQueueOf, udpReceiveQueueBytes } from '../../src/transport/udp-backlog.js';
import { UdpTransport } from '../../src/transport/udp-transport.js';

/** A /proc/net/udp as Linux 6.x prints it: our socket on port 0x13C4 (5060) with 0x2400 bytes queued. */
const PROC_NET_UDP = [
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
  '  123: 0100007F:13C4 00000000:0000 07 00000000:00002400 00:00000000 00000000     0        0 81234 2 0 0',
  '  456: 0100007F:B3C4 00000000:0000 07 00000000:00000100 00:00000000 00000000 0 0 81235 2 0000000000000000 0',
  '',
].join('\n');

describe('UDP receive queue from /proc/net/udp (transport/udp-backlog.ts)', () => {
  it('reads the rx_queue of the socket bound to the port, and nothing for another port', () => {
    expect(receiveQueueOf(PROC_NET_UDP, 5060)).to.equal(0x2400);
    expect(receiveQueueOf(PROC_NET_UDP, 0xb3c4)).to.equal(0x100);
    expect(receiveQueueOf(PROC_NET_UDP, 5061)).to.equal(undefined);
    expect(receiveQueueOf('', 5060)).to.equal(undefined);
  });

  it('a real socket: datagrams sent while the event loop is blocked show as queued, then drain', async function () {
    if (!existsSync('/proc/net/udp')) this.skip(); // not Linux: the rule then goes by utilization alone
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    let received = 0;
    socket.on('message', () => received++);
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    const port = socket.address().port;
    try {
      expect(udpReceiveQueueBytes(port, 4), 'an idle socket').to.equal(0);
      // spawnSync blocks this event loop while another process sends 100 datagrams: none is read meanwhile.
      const sender = spawnSync(
        process.execPath,
        [
          '-e',
          `const s = require('node:dgram').createSocket('udp4'); let n = 0;
           const next = () => n++ < 100 ? s.send(Buffer.alloc(400, 65), ${port}, '127.0.0.1', next) : s.close();
           next();`,
        ],
        { timeout: 10_000 },
      );
      expect(sender.status, String(sender.stderr)).to.equal(0);
      const queued = udpReceiveQueueBytes(port, 4)!;
      expect(received).to.equal(0);
      expect(queued, 'the kernel holds them for us: at least their payload').to.be.at.least(100 * 400);
      expect(queued).to.be.at.most(socket.getRecvBufferSize());
      const until = Date.now() + 5000;
      while (received < 100 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(received).to.equal(100);
      expect(udpReceiveQueueBytes(port, 4), 'read: the queue is empty again').to.equal(0);
    } finally {
      socket.close();
    }
  });

  it("the transport's reading: nothing to tell without UDP traffic, else the queue's share", async function () {
    if (!existsSync('/proc/net/udp')) this.skip();
    // The transaction layer is not what is measured here: one that takes every datagram and answers nothing.
    let taken = 0;
    const layer = { receive: () => void taken++, idle: async () => {} } as unknown as TransactionLayer;
    const udp = new UdpTransport(layer, { maxHeaderBytes: 8192, maxBodyBytes: 65536 }, pino({ level: 'silent' }));
    const port = await udp.listen('127.0.0.1', 0);
    const sender = dgram.createSocket('udp4');
    try {
      expect(udp.receiveBacklog(), 'no datagram yet: the loop rule goes by utilization (TCP-only load)').to.equal(
        undefined,
      );
      const head = 'OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\n\r\n';
      await new Promise<void>((r) => sender.send(head, port, '127.0.0.1', () => r()));
      const until = Date.now() + 5000;
      while (taken < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      expect(taken).to.equal(1);
      expect(udp.receiveBacklog(), 'a datagram came and was read: nothing waits').to.equal(0);
      expect(udp.receiveBacklog(), 'none since: nothing to tell again').to.equal(undefined);
    } finally {
      sender.close();
      await udp.close();
    }
  });
});
