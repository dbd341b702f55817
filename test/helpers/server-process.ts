import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { runProcess, type ProcessResult } from './run-process.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = (name: string) => join(REPO, 'bin', `${name}.js`);

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * How to launch it: `node <flags> bin/ec-server.js` as documented (default), the file itself
 * through its shebang as the installed `ec-server` command runs, or plain `node bin/ec-server.js`.
 */
export type LaunchMode = 'flags' | 'direct' | 'plain';

/** Starts bin/ec-server.js as a real process and waits for its "listening" log line. */
export async function spawnServer(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 15_000,
  mode: LaunchMode = 'flags',
): Promise<ServerProcess> {
  const [cmd, cmdArgs] =
    mode === 'direct'
      ? [BIN('ec-server'), args]
      : [process.execPath, [...(mode === 'flags' ? SERVER_NODE_FLAGS : []), BIN('ec-server'), ...args]];
  const child = spawn(cmd, cmdArgs, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), timeoutMs);
    const check = () => {
      const m = /"port":(\d+),"transports"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening:\n${out}`));
    });
  });
  return { child, port, output: () => out, exited };
}

/** Runs a bin to completion. */
export function runBin(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [BIN(name), ...args], { cwd: REPO, env: { ...process.env, ...env } });
}
