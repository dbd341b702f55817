import { expect } from 'chai';
import pino from 'pino';
import { Journal } from '../../src/client/journal.js';
import { MeterClient } from '../../src/client/meter-client.js';
import type { SipSender } from '../../src/client/sip-sender.js';
import { batchEpochSecond } from '../../src/domain/batch.js';
import { makeBatch } from '../helpers/batches.js';

/**
 * The meter's watermark (docs/sync-protocol.md#watermark) over a replayed CSV whose batches are not in
 * time order: it never passes a second that is still to be journaled or in flight, and is Infinity once
 * the replay is done.
 */
describe('meter watermark (MeterClient.final)', () => {
  it('a replay out of order: never past what is still to come; Infinity when done', async () => {
    const T = Date.UTC(2026, 3, 1) / 1000;
    const seconds = Array.from({ length: 450 }, (_, i) => T + 100 + i);
    seconds[320] = T + 5; // one early second late in the file
    const batches = seconds.map((s, i) => makeBatch('csv-meter', s, 3, 0, i));
    const journal = new Journal(':memory:');
    await journal.open();
    // The SIP peer is not what is tested here: every request is answered 200 at once.
    const sender = {
      requestUri: 'sip:ec@127.0.0.1',
      send: async () => ({ status: 200, reason: 'OK', headers: {}, transmissions: 1 }),
    } as unknown as SipSender;
    const observed: [number, number][] = [];
    const meter: MeterClient = new MeterClient(
      journal,
      sender,
      {
        source: { kind: 'batches', batches },
        loss: 0,
        corrupt: 0,
        window: 8,
        maxAttempts: 1,
        retentionS: 86_400 * 365 * 10,
        onProgress: () => {
          const journaled = meter.stats.generated;
          const stillToCome = Math.min(...seconds.slice(journaled));
          observed.push([meter.final(), stillToCome]);
        },
      },
      pino({ level: 'silent' }),
    );
    expect(meter.final()).to.equal(T + 5);
    await meter.run();
    expect(observed).to.have.length(5);
    for (const [final, stillToCome] of observed) expect(final).to.be.at.most(stillToCome);
    // Held at T + 5 until the group holding it is journaled (the 4th), then it moves on.
    expect(observed.map(([f]) => f).slice(0, 3)).to.deep.equal([T + 5, T + 5, T + 5]);
    // After the 4th group T + 500 comes next, unless a batch of that group (T + 492 on) is still in flight.
    expect(observed[3]![0])
      .to.be.at.least(T + 492)
      .and.at.most(T + 500);
    expect(meter.final()).to.equal(Infinity);
    expect((await journal.readBatches({ device_id: 'csv-meter', from: T, to: T + 600 })).length).to.equal(450);
    expect(batchEpochSecond(batches[320]!)).to.equal(T + 5);
    await journal.close();
  });
});
