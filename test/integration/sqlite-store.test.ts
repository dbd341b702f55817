import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { storeContract } from '../contract/store-contract.js';

let dir = '';
let n = 0;
let devices = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ec-sqlite-contract-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

for (const writer of ['inline', 'thread'] as const) {
  storeContract(`sqlite (writer ${writer})`, {
    create: ({ same }) => {
      if (!same) n++;
      return new SqliteStore({ dir: join(dir, `s${n}`), synchronous: 'FULL', writer });
    },
    device: () => `dev-${++devices}`,
  });
}
