import { expect } from 'chai';
import pino from 'pino';
import { Writable } from 'node:stream';
import { buildMessage, udpRequest } from '../helpers/sip-client.js';
import { startTestServer } from '../helpers/test-server.js';

/**
 * The safe default (docs/security.md): a server listening beyond loopback requires credentials
 * unless security.allow_anonymous=true says otherwise, and then it warns at every start. The
 * sockets are bound on 0.0.0.0, but every request goes to 127.0.0.1.
 */
describe('authentication by default beyond loopback', function () {
  this.timeout(30_000);

  async function withServer(overrides: Record<string, string>, f: (port: number, logs: string) => Promise<void>) {
    let logs = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs += chunk.toString();
        done();
      },
    });
    const server = await startTestServer(overrides, {}, pino({ level: 'warn' }, sink));
    try {
      await f(server.port, logs);
    } finally {
      await server.cleanup();
    }
  }
  const message = (port: number) => buildMessage({ port, body: 'anon-1|20260101000000|0,1.5' });

  it('loopback (the README quick start): anonymous MESSAGEs are accepted', () =>
    withServer({}, async (port) => {
      expect((await udpRequest(port, message(port)))?.status).to.equal(200);
    }));

  it('listening on 0.0.0.0: a MESSAGE without credentials gets 401', () =>
    withServer({ 'sip.listen_addr': '0.0.0.0' }, async (port, logs) => {
      const r = await udpRequest(port, message(port));
      expect([r?.status, r?.reason]).to.deep.equal([401, 'Unauthorized: credentials required']);
      expect(logs).to.not.match(/SECURITY/);
    }));

  it('listening on 0.0.0.0 with security.allow_anonymous=true: accepted, and a loud warning at start', () =>
    withServer({ 'sip.listen_addr': '0.0.0.0', 'security.allow_anonymous': 'true' }, async (port, logs) => {
      expect((await udpRequest(port, message(port)))?.status).to.equal(200);
      expect(logs).to.match(/SECURITY: listening on 0\.0\.0\.0 with security\.allow_anonymous=true/);
    }));
});
