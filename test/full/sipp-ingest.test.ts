import { sippPath } from '../helpers/sipp.js';
import { CALLS, sippIngest } from '../helpers/sipp-ingest.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * A real SIP peer (sipp) streams seed-format MESSAGEs at the server over UDP and over TCP.
 * Every one must be answered 200 and be in the store with the right derived fields.
 */
describe('sipp streams seed-format MESSAGEs (real SIP peer, sqlite store)', function () {
  this.timeout(180_000);
  let server: TestServer;

  before(async function () {
    sippPath(); // fails loudly, naming the package, when sipp is absent
    server = await startTestServer();
  });
  after(async () => {
    await server?.cleanup();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`${CALLS} MESSAGEs over ${transport.toUpperCase()}: all answered 200, stored with right derived fields`, () =>
      sippIngest(server, transport, `sipp-${transport}`));
  }
});
