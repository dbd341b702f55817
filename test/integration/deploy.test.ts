import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { SERVER_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { runProcess } from '../helpers/run-process.js';
import { BIN, REPO } from '../helpers/server-process.js';

const DEPLOY = join(REPO, 'deploy');
const onPath = async (command: string) => (await runProcess('sh', ['-c', `command -v ${command}`])).code === 0;
/** `npm run test:full` (EC_REQUIRE_DEPLOY_TOOLS=1) installs both tools: one missing fails there, never skips. */
function missingTool(command: string): void {
  if (process.env.EC_REQUIRE_DEPLOY_TOOLS === '1')
    throw new Error(`${command} is required (EC_REQUIRE_DEPLOY_TOOLS=1)`);
}

/** The file's text; '' while the shell has not created it yet (a throw in the poll would be uncaught). */
const textOf = (file: string) => (existsSync(file) ? readFileSync(file, 'latin1') : '');

/** Resolves once `file` holds text matching `pattern` (checked whenever the file changes). */
function fileMatches(file: string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`${file} never matched ${pattern}:\n${textOf(file)}`));
    }, timeoutMs);
    const poll = setInterval(() => {
      const text = textOf(file);
      if (!pattern.test(text)) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve(text);
    }, 20);
  });
}

/** The files in deploy/: the systemd unit and the log rotation of the nohup recipe. */
describe('deploy/', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ec-deploy-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'the systemd unit: own user, its state directory is the store, exit 2 not restarted, sandboxed; ' +
      'systemd-analyze verify passes',
    async function () {
      const unit = readFileSync(join(DEPLOY, 'ec-server.service'), 'utf8');
      const directive = (name: string) => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);
      expect(directive('User')).to.deep.equal(['ec-server']);
      expect(readFileSync(join(DEPLOY, 'ec-server.sysusers'), 'utf8')).to.match(/^u ec-server - /m);
      expect(directive('StateDirectory')).to.deep.equal(['ec-server']);
      expect(directive('ExecStart')[0]).to.include('--data-dir /var/lib/ec-server');
      expect(directive('RestartPreventExitStatus')).to.deep.equal(['2']);
      expect(directive('ProtectSystem')).to.deep.equal(['strict']);
      expect(directive('NoNewPrivileges')).to.deep.equal(['yes']);
      expect(directive('MemoryDenyWriteExecute'), 'V8 needs writable code pages').to.deep.equal([]);
      if (!(await onPath('systemd-analyze'))) {
        missingTool('systemd-analyze');
        console.warn('    systemd-analyze not installed: the unit was NOT verified by systemd');
        return this.skip();
      }
      // The unit as installed, but with a command that exists here (verify checks it is executable).
      const copy = join(dir, 'ec-server.service');
      writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      const verify = await runProcess('systemd-analyze', ['verify', copy]);
      expect(verify.stderr).to.equal('');
      expect(verify.code).to.equal(0);
    },
  );

  it(
    'logrotate with copytruncate rotates the log of a running nohup ec-server, which keeps writing to the new ' +
      'file @full', // a nohup ec-server process: the full tier
    async function () {
      if (!(await onPath('logrotate'))) {
        missingTool('logrotate');
        console.warn('    logrotate not installed: log rotation NOT tested');
        return this.skip();
      }
      const log = join(dir, 'ec-server.log');
      const args = [
        ...SERVER_NODE_FLAGS,
        BIN('ec-server'),
        '--port',
        '0',
        '--set',
        'sync.port=0',
        '--set',
        'http.port=0',
      ];
      const quoted = [process.execPath, ...args, '--data-dir', join(dir, 'data')].map((a) => `'${a}'`).join(' ');
      // docs/operations.md's recipe: nohup, appending stdout and stderr to the log.
      const server = spawn('sh', ['-c', `exec nohup ${quoted} >> '${log}' 2>&1`], { cwd: dir, stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => server.on('exit', (code) => r(code)));
      try {
        await fileMatches(log, /"msg":"listening for SIP/);
        const conf = join(dir, 'logrotate.conf');
        writeFileSync(
          conf,
          readFileSync(join(DEPLOY, 'ec-server.logrotate'), 'utf8').replace(/^\/opt\/ec-server\/ec-server\.log/m, log),
        );
        const rotate = await runProcess('logrotate', ['--force', '--state', join(dir, 'state'), conf]);
        expect(rotate.code, rotate.stderr).to.equal(0);
        expect(readFileSync(`${log}.1`, 'latin1')).to.match(/"msg":"listening for SIP/);
        server.kill('SIGHUP'); // logged and ignored: a line written after the rotation
        const after = await fileMatches(log, /SIGHUP ignored/);
        expect(after.startsWith('{"level"'), 'no hole of NULs before the first new line').to.equal(true);
        expect(after).not.to.match(/listening for SIP/);
      } finally {
        server.kill('SIGTERM');
      }
      expect(await exited).to.equal(0);
    },
  );
});
