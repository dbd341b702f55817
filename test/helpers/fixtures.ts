import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Fixtures stay in the source tree (test/fixtures); compiled tests run from dist/test. */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');

export function fixture(path: string): Buffer {
  return readFileSync(join(FIXTURES, path));
}
