import { expect } from 'chai';
import { PENDING, TransactionCache } from '../../src/protocol/transaction-cache.js';

describe('transaction cache (UDP retransmissions)', () => {
  it('absorbs retransmissions while pending and replays the final response', () => {
    const c = new TransactionCache(10, 32_000);
    c.lookupOrBegin('a');
    expect(c.lookupOrBegin('a')).to.equal(PENDING);
    c.complete('a', Buffer.from('200'));
    expect(c.lookupOrBegin('a')!.toString()).to.equal('200');
  });

  it('forgets after Timer J (32 s)', () => {
    let now = 0;
    const c = new TransactionCache(10, 32_000, () => now);
    c.lookupOrBegin('a');
    c.complete('a', Buffer.from('x'));
    now = 32_001;
    expect(c.lookupOrBegin('a')).to.equal(undefined);
  });

  it('never holds more than its byte bound (plus a response per generation), evicting the oldest', () => {
    const c = new TransactionCache(1_000_000, 32_000, () => 0, 100_000);
    const response = Buffer.alloc(4000, 0x41);
    for (let i = 0; i < 1000; i++) {
      c.lookupOrBegin(`k${i}`);
      c.complete(`k${i}`, response);
      expect(c.bytes).to.be.at.most(100_000 + 2 * 4200);
    }
    expect(c.size).to.be.lessThan(30);
    expect(c.lookupOrBegin('k999')).to.equal(response);
    expect(c.lookupOrBegin('k0')).to.equal(undefined);
  });

  it('never holds more than its capacity, evicting the oldest', () => {
    let now = 0;
    const c = new TransactionCache(100, 32_000, () => now);
    for (let i = 0; i < 10_000; i++) {
      now = i;
      c.lookupOrBegin(`k${i}`);
      c.complete(`k${i}`, Buffer.from('x'));
      expect(c.size).to.be.at.most(100);
    }
    expect(c.lookupOrBegin('k0')).to.equal(undefined);
    expect(c.lookupOrBegin('k9999')).to.not.equal(undefined);
  });

  it('keeps the newest half of its capacity however many came before', () => {
    let now = 0;
    const c = new TransactionCache(1000, 32_000, () => now);
    for (let i = 0; i < 50_000; i++) {
      now = i / 10;
      c.lookupOrBegin(`k${i}`);
      c.complete(`k${i}`, Buffer.from(String(i)));
    }
    for (let i = 50_000 - 500; i < 50_000; i++) expect(c.lookupOrBegin(`k${i}`)!.toString()).to.equal(String(i));
    expect(c.size).to.be.at.most(1000);
  });

  it('a retransmission still finds a pending entry that began in the previous generation', () => {
    let now = 0;
    const c = new TransactionCache(4, 32_000, () => now);
    c.lookupOrBegin('old');
    c.lookupOrBegin('b');
    c.lookupOrBegin('c'); // rotates: 'old' and 'b' are now the previous generation
    expect(c.lookupOrBegin('old')).to.equal(PENDING);
    c.complete('old', Buffer.from('200'));
    expect(c.lookupOrBegin('old')!.toString()).to.equal('200');
    now = 32_001;
    expect(c.lookupOrBegin('old')).to.equal(undefined);
  });

  it('lookupOrBegin: begins what is unknown or expired, answers what is live (one clock read)', () => {
    let now = 0;
    const c = new TransactionCache(4, 32_000, () => now);
    expect(c.lookupOrBegin('a')).to.equal(undefined);
    expect(c.lookupOrBegin('a'), 'a retransmission while pending').to.equal(PENDING);
    c.complete('a', Buffer.from('200'));
    expect(c.lookupOrBegin('a')!.toString()).to.equal('200');
    c.lookupOrBegin('b');
    c.lookupOrBegin('c'); // rotates: 'a' and 'b' are the previous generation
    expect(c.lookupOrBegin('a')!.toString(), 'found in the previous generation').to.equal('200');
    now = 32_001;
    expect(c.lookupOrBegin('a'), 'expired: a new transaction').to.equal(undefined);
    expect(c.lookupOrBegin('a')).to.equal(PENDING);
    expect(c.size).to.be.at.most(4);
  });
});
