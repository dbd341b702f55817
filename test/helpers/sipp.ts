import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess, type ProcessResult } from './run-process.js';

/** The scenario files live in the source tree (test/fixtures/sipp), not in dist/. */
export const SIPP_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/sipp');

/** Path of the sipp binary; throws a loud, actionable error when it is missing. */
export function sippPath(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v sipp'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('sipp is not installed: `apt-get install sip-tester` (.ci/run does this)');
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Writes an injection file (SEQUENTIAL, fields separated by ';'). */
export function writeInjection(file: string, rows: string[][]): void {
  writeFileSync(file, ['SEQUENTIAL', ...rows.map((r) => r.join(';'))].join('\n') + '\n');
}

/** Runs sipp to completion (bounded by timeoutS); resolves with its exit code and output. */
export function runSipp(args: string[], timeoutS = 120): Promise<ProcessResult> {
  return runProcess(sippPath(), [...args, '-nostdin', '-timeout', `${timeoutS}s`, '-timeout_error']);
}
