#!/usr/bin/env node
// @ts-check
// The least a Node.js UDP SIP server can do per MESSAGE: one dgram socket; per datagram, copy the
// Via, From, To, Call-ID and CSeq lines into a 200 OK (To gets a tag) and send it back. No
// validation, no transactions, no storage. The bench measures it as a third small-UDP target
// ("node-floor"): the part of the gap to Kamailio that is Node's per-datagram I/O and one event
// loop, before ec-server does any work of its own.
//
//   node bench/floor/udp-responder.mjs <port>
import dgram from 'node:dgram';

const port = Number(process.argv[2]);
// The socket options ec-server uses (src/transport/udp-transport.ts): a receive buffer that rides
// out bursts, and no dns.lookup per send.
const socket = dgram.createSocket({
  type: 'udp4',
  recvBufferSize: 8 * 1024 * 1024,
  lookup: (addr, _options, callback) => callback(null, addr, 4),
});
const WANTED = ['via:', 'v:', 'from:', 'f:', 'to:', 't:', 'call-id:', 'i:', 'cseq:'];

socket.on('message', (buf, rinfo) => {
  const end = buf.indexOf('\r\n\r\n');
  // latin1Slice: Buffer's undocumented fast path (what toString('latin1') calls after its checks).
  const head = /** @type {any} */ (buf).latin1Slice(0, end < 0 ? buf.length : end);
  const lines = head.split('\r\n');
  if (!lines[0].startsWith('MESSAGE ') && !lines[0].startsWith('OPTIONS ')) return;
  let out = 'SIP/2.0 200 OK\r\n';
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    const colon = l.indexOf(':');
    const name = l.slice(0, colon + 1).toLowerCase();
    if (!WANTED.includes(name)) continue;
    out += name === 'to:' || name === 't:' ? `${l};tag=floor\r\n` : `${l}\r\n`;
  }
  out += 'Content-Length: 0\r\n\r\n';
  socket.send(Buffer.from(out, 'latin1'), rinfo.port, rinfo.address);
});
socket.on('error', (e) => {
  console.error(e.message);
  process.exit(1);
});
socket.bind(port, '127.0.0.1', () => console.log(`node-floor responder on udp ${port}`));
process.on('SIGTERM', () => socket.close(() => process.exit(0)));
