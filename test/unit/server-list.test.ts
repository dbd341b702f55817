import { Resolver } from 'node:dns/promises';
import { expect } from 'chai';
import { orderSrv, parseServerSpec, resolveEndpoints } from '../../src/client/server-list.js';
import { ServerPool } from '../../src/client/server-pool.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('meter server lists: --server, DNS SRV (RFC 3263 / RFC 2782) and the failover pool', () => {
  it('parses ordered lists, bracketed IPv6, bare names (SRV) and bare addresses', () => {
    expect(parseServerSpec('a.example:5070, 10.0.0.2:5060,[::1]:5080')).to.deep.equal({
      kind: 'list',
      endpoints: [
        { host: 'a.example', port: 5070 },
        { host: '10.0.0.2', port: 5060 },
        { host: '::1', port: 5080 },
      ],
    });
    expect(parseServerSpec('meters.example')).to.deep.equal({ kind: 'srv', name: 'meters.example' });
    expect(parseServerSpec('10.0.0.9')).to.deep.equal({ kind: 'list', endpoints: [{ host: '10.0.0.9', port: 5060 }] });
    expect(parseServerSpec('a,b:5061')).to.deep.equal({
      kind: 'list',
      endpoints: [
        { host: 'a', port: 5060 },
        { host: 'b', port: 5061 },
      ],
    });
    for (const bad of ['', 'a:0', 'a:70000', 'a b:1', 'a:1:2', '[zz]:1'])
      expect(() => parseServerSpec(bad), bad).to.throw();
  });

  it('orders SRV records by priority, then by weight (a 3:1 weight is picked first ~3 times in 4)', () => {
    const records = [
      { name: 'c', priority: 20, weight: 0 },
      { name: 'a', priority: 10, weight: 75 },
      { name: 'b', priority: 10, weight: 25 },
    ];
    const random = seeded(3);
    let aFirst = 0;
    const N = 4000;
    for (let i = 0; i < N; i++) {
      const order = orderSrv(records, random).map((r) => r.name);
      expect(order[2]).to.equal('c');
      if (order[0] === 'a') aFirst++;
    }
    expect(aFirst / N).to.be.within(0.71, 0.79);
  });

  describe('with a real DNS server on 127.0.0.1', () => {
    let dns: TestDns;
    let resolver: Resolver;
    before(async () => {
      dns = await startTestDns({
        '_sip._udp.meters.test': [
          { priority: 20, weight: 0, port: 5062, target: 'backup.meters.test' },
          { priority: 10, weight: 10, port: 5060, target: 'rx1.meters.test' },
          { priority: 10, weight: 10, port: 5061, target: 'rx2.meters.test' },
        ],
        '_sip._tcp.meters.test': [{ priority: 1, weight: 0, port: 5070, target: 'tcp.meters.test' }],
        '_sip._udp.closed.test': [{ priority: 0, weight: 0, port: 0, target: '' }],
      });
      resolver = new Resolver({ timeout: 1000, tries: 1 });
      resolver.setServers([dns.address]);
    });
    after(() => dns.close());

    it('looks up _sip._udp / _sip._tcp and orders the answers', async () => {
      const udp = await resolveEndpoints({ kind: 'srv', name: 'meters.test' }, 'udp', { resolver, random: seeded(1) });
      expect(
        udp
          .slice(0, 2)
          .map((e) => e.host)
          .sort(),
      ).to.deep.equal(['rx1.meters.test', 'rx2.meters.test']);
      expect(udp[2]).to.deep.equal({ host: 'backup.meters.test', port: 5062 });
      expect(await resolveEndpoints({ kind: 'srv', name: 'meters.test' }, 'tcp', { resolver })).to.deep.equal([
        { host: 'tcp.meters.test', port: 5070 },
      ]);
      expect(dns.queries).to.include.members(['_sip._udp.meters.test', '_sip._tcp.meters.test']);
    });

    it('without SRV records, the name itself on the default port; a "." target means no service', async () => {
      expect(await resolveEndpoints({ kind: 'srv', name: 'plain.test' }, 'udp', { resolver })).to.deep.equal([
        { host: 'plain.test', port: 5060 },
      ]);
      expect(await resolveEndpoints({ kind: 'srv', name: 'closed.test' }, 'udp', { resolver })).to.deep.equal([]);
    });
  });

  it('the pool moves on after a failure, probes the preferred one after the backoff, and comes back', () => {
    const { a, b, pool, pick, clock } = twoServers();
    expect(pick()).to.equal(a);
    pool.failed(a);
    pool.failed(a); // a second request in flight to it says nothing new: the backoff does not double
    expect(pick()).to.equal(b);
    clock.now += 999;
    expect(pick()).to.equal(b);
    clock.now += 1;
    expect(pick(), 'the probe').to.equal(a);
    expect(pick(), 'the others keep away while it is out').to.equal(b);
    pool.failed(a);
    clock.now += 1999;
    expect(pick(), 'the backoff doubled').to.equal(b);
    clock.now += 1;
    expect(pick()).to.equal(a);
    pool.succeeded(a);
    expect(pick()).to.equal(a);
    expect(pool.switches).to.equal(4);
    // Everything down: wait for the soonest, honouring a Retry-After.
    pool.failed(a, 3000);
    pool.failed(b);
    expect(pick()).to.equal(100);
    clock.now += 100;
    expect(pick()).to.equal(b);
  });
  it('a new list from DNS: servers still listed keep their state, new ones healthy, gone ones dropped', () => {
    const { a, b, pool, pick, clock } = twoServers();
    expect(pick()).to.equal(a);
    pool.failed(a);
    const c = { host: 'c', port: 3 };
    // The lookup gives fresh objects: a server is known by host and port; a duplicate counts once.
    const removed = pool.replace([{ host: 'a', port: 1 }, c, { host: 'c', port: 3 }]);
    expect(removed).to.deep.equal([b]);
    expect(pool.endpoints, 'a keeps its object (and its backoff); c is new').to.deep.equal([a, c]);
    expect(pool.endpoints[0]).to.equal(a);
    expect(pick(), 'a is still avoided').to.equal(c);
    // Outcomes of requests still in flight to a server that left are ignored, not an error.
    pool.failed(b);
    pool.succeeded(b);
    clock.now += 1000;
    expect(pick(), 'the probe of a, as before the new list').to.equal(a);
    expect(() => pool.replace([])).to.throw(/at least one server/);
  });
});

/** A pool of servers a and b (backoff 1 s doubling to 4 s, 100 ms when all are down) on a clock the test moves. */
function twoServers() {
  const clock = { now: 1_000_000 };
  const a = { host: 'a', port: 1 };
  const b = { host: 'b', port: 2 };
  const pool = new ServerPool([a, b], { retryMs: 1000, maxRetryMs: 4000, quickRetryMs: 100, now: () => clock.now });
  const pick = () => {
    const p = pool.pick();
    return 'endpoint' in p ? p.endpoint : p.waitMs;
  };
  return { a, b, pool, pick, clock };
}
