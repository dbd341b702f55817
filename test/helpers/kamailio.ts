import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './sipp.js';

/** deploy/kamailio in the source tree (not in dist/). */
const DEPLOY_CFG = join(dirname(fileURLToPath(import.meta.url)), '../../../deploy/kamailio/kamailio.cfg');

/** The kamailio binary; a loud, actionable error when it is missing (the test fails, it does not skip). */
export function kamailioPath(): string {
  for (const p of ['/usr/sbin/kamailio', '/usr/local/sbin/kamailio']) {
    try {
      execFileSync(p, ['-v'], { stdio: 'ignore' });
      return p;
    } catch {
      /* next */
    }
  }
  throw new Error('kamailio is not installed: `apt-get install kamailio` (scripts/test-all.sh does this)');
}

export interface RunningKamailio {
  port: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * deploy/kamailio/kamailio.cfg in the foreground (-DD -E, as bench/lib/targets.mjs runs its baseline) on
 * a free port, with a dispatcher list naming `receivers`; resolves once it answers OPTIONS.
 */
export async function startKamailioFront(dir: string, receivers: { host: string; port: number }[]) {
  const bin = kamailioPath();
  const port = await freePort();
  const runDir = join(dir, `kamailio-${port}`);
  mkdirSync(runDir, { recursive: true });
  const list = join(runDir, 'receivers.list');
  writeFileSync(list, receivers.map((r) => `1 sip:${r.host}:${r.port}\n`).join(''));
  const args = ['-f', DEPLOY_CFG, '-DD', '-E', '-A', 'EC_ADDR=127.0.0.1', '-A', `EC_PORT=${port}`];
  args.push('-A', `EC_DISPATCHER_LIST="${list}"`, '-A', 'EC_WORKERS=2');
  args.push('-P', join(runDir, 'kamailio.pid'), '-Y', runDir, '-m', '64', '-M', '8');
  const child: ChildProcess = spawn(bin, args, { cwd: runDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const deadline = Date.now() + 20_000;
  while (!(await answersOptions(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`kamailio did not start on ${port}:\n${out.slice(-4000)}`);
    }
  }
  return {
    port,
    output: () => out,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  } satisfies RunningKamailio;
}

/** One OPTIONS over UDP: true when answered 200 within 500 ms. */
export function answersOptions(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    s.on('message', (m) => done(m.toString('latin1').startsWith('SIP/2.0 200')));
    s.bind(0, '127.0.0.1', () => {
      const local = s.address().port;
      const req = [
        `OPTIONS sip:ec@127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${Date.now().toString(36)}${local}`,
        'Max-Forwards: 70',
        `From: <sip:probe@127.0.0.1>;tag=${local}`,
        `To: <sip:ec@127.0.0.1:${port}>`,
        `Call-ID: probe-${Date.now()}-${local}`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      s.send(req, port, '127.0.0.1');
    });
  });
}
