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
export function spawnServer(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 15_000,
  mode: LaunchMode = 'flags',
): Promise<ServerProcess> {
  const [cmd, cmdArgs] =
    mode === 'direct'
      ? [BIN('ec-server'), args]
      : [process.execPath, [...(mode === 'flags' ? SERVER_NODE_FLAGS : []), BIN('ec-server'), ...args]];
  return spawnServerCommand(cmd, cmdArgs, { cwd: REPO, env, timeoutMs });
}

/** Starts any ec-server command (e.g. an installed package's) and waits for its "listening" log line. */
export async function spawnServerCommand(
  cmd: string,
  cmdArgs: string[],
  { cwd, env = {}, timeoutMs = 15_000 }: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<ServerProcess> {
  const child = spawn(cmd, cmdArgs, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Resolves with the first match of `pattern` in the server's output (already there, or when it comes). */
export function waitForOutput(server: ServerProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(server.output());
      if (!m) return;
      server.child.stdout!.off('data', check);
      resolve(m);
    };
    server.child.stdout!.on('data', check);
    void server.exited.then(() => reject(new Error(`server exited before ${pattern}:\n${server.output()}`)));
    check();
  });
}

/** Runs a bin to completion. */
export function runBin(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [BIN(name), ...args], { cwd: REPO, env: { ...process.env, ...env } });
}

/** A bin running in the background: everything it writes (stdout and stderr), and its exit code once it exits. */
export interface RunningBin {
  output(): string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

export function startBin(name: string, args: string[]): RunningBin {
  const child = spawn(process.execPath, [BIN(name), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { output: () => out, exited, kill: (signal = 'SIGTERM') => child.kill(signal) };
}
