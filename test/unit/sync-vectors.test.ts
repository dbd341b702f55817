import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Journal } from '../../src/client/journal.js';
import { ha1 } from '../../src/domain/device-credential.js';
import { digestLine } from '../../src/domain/interval-digest.js';
import { parseBatchBody } from '../../src/domain/batch-body.js';
import type { ConsumptionStore } from '../../src/store/consumption-store.js';
import { helloProof, proofMatches } from '../../src/sync/sync-protocol.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { FIXTURES } from '../helpers/fixtures.js';

/** docs/sync-protocol.md's vectors, checked against the meter's journal and the server's store. */
describe('sync protocol test vectors', () => {
  const doc = readFileSync(join(FIXTURES, '../../docs/sync-protocol.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### Test vectors'), doc.indexOf('## Reconciliation'));
  const blocks = [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1]!.trim().split('\n'));
  const bodies = blocks[0]!;
  const lines = blocks[1]!;
  const table = [
    ...section.matchAll(/^\| (minute|period)[^|]*\| (\d+) \| (\d+) \| (\d+) \| `([0-9a-f]{32})` \|$/gm),
  ].map((m) => ({
    kind: m[1]!,
    start: Number(m[2]),
    batches: Number(m[3]),
    samples: Number(m[4]),
    digest: m[5]!,
  }));
  const batches = bodies.map((b) => ({ ...parseBatchBody(b), batch_seq: null, insert_time: 0 }));
  const from = 1473433200;

  it('the document holds the vectors', () => {
    expect(bodies).to.have.length(3);
    expect(table).to.have.length(3);
  });

  it('digest lines', () => {
    expect(batches.map(digestLine)).to.deep.equal(lines);
  });

  const dir = mkdtempSync(join(tmpdir(), 'ec-vectors-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const sides: [string, () => ConsumptionStore][] = [
    ['client journal (ec-client)', () => new Journal(join(dir, 'client'))],
    ['server store (ec-server)', () => new SqliteStore({ dir: join(dir, 'server'), synchronous: 'FULL' })],
  ];
  for (const [name, make] of sides) {
    it(`interval digests: ${name}`, async () => {
      const store = make();
      await store.open();
      await store.upsertBatches(batches);
      const minutes = await store.intervalSummaries({ device_id: '00aabbccddef', from, to: from + 600 }, 60);
      const period = await store.intervalSummaries({ device_id: '00aabbccddef', from, to: from + 600 }, 600);
      await store.close();
      expect(minutes).to.deep.equal(table.filter((t) => t.kind === 'minute').map(({ kind: _k, ...t }) => t));
      expect(period).to.deep.equal(table.filter((t) => t.kind === 'period').map(({ kind: _k, ...t }) => t));
    });
  }

  it('hello proof (Authentication): what the meter sends and what the server accepts', () => {
    const auth = doc.slice(doc.indexOf('## Authentication'), doc.indexOf('## Limits'));
    const row =
      /^\| `([^`]+)` \| `([^`]+)` \| `([^`]+)` \| `([^`]+)` \| `([0-9a-f]{64})` \| `([0-9a-f]{64})` \|$/m.exec(auth);
    expect(row, 'the proof vector row').to.not.equal(null);
    const [, device, realm, secret, nonce, ha1Hex, proof] = row! as unknown as string[];
    expect(ha1('SHA-256', device!, realm!, secret!)).to.equal(ha1Hex);
    expect(helloProof(ha1Hex!, nonce!, device!)).to.equal(proof);
    expect(proofMatches(proof, ha1Hex!, nonce!, device!)).to.equal(true);
    // Another nonce, device or key, or a proof that is not 64 lowercase hex: no match.
    expect(proofMatches(proof, ha1Hex!, nonce!.replace(/^q/, 'r'), device!)).to.equal(false);
    expect(proofMatches(proof, ha1Hex!, nonce!, '00aabbccdde0')).to.equal(false);
    expect(proofMatches(proof, ha1('SHA-256', device!, realm!, 'guess'), nonce!, device!)).to.equal(false);
    expect(proofMatches(proof!.toUpperCase(), ha1Hex!, nonce!, device!)).to.equal(false);
    expect(proofMatches(undefined, ha1Hex!, nonce!, device!)).to.equal(false);
  });
});
