import { expect } from 'chai';
import type { ReceivedBatch } from '../../src/domain/received-batch.js';
import { BatchStage } from '../../src/ingest/batch-stage.js';
import { makeBatch, receivedOf } from '../helpers/batches.js';

describe('batch stage (parsing and checks where a group is written)', () => {
  it('an unexpected error refuses only the batch it met, as a 500 naming it', () => {
    const good = (i: number) => receivedOf(makeBatch('s', 1_700_000_000 + i));
    // Not a string: parseBatchBody throws a TypeError, which no client input can cause (a stand-in for a bug).
    const broken = { ...good(1), body: null } as unknown as ReceivedBatch;
    const { batches, report } = new BatchStage().run([good(0), broken, good(2)]);
    expect(batches.map((b) => b.ec_time)).to.deep.equal([
      makeBatch('s', 1_700_000_000).ec_time,
      makeBatch('s', 1_700_000_002).ec_time,
    ]);
    expect(report.rejected).to.have.length(1);
    expect(report.rejected[0]![0]).to.equal(1);
    expect(report.rejected[0]![1]).to.equal('EC_BATCH_INTERNAL');
    expect(report.rejected[0]![2]).to.match(/null|undefined|endsWith/);
  });
});
