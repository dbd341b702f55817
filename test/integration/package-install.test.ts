import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runProcess } from '../helpers/run-process.js';
import { REPO, spawnServerCommand } from '../helpers/server-process.js';
import { buildMessage, udpRequest } from '../helpers/sip-client.js';

/**
 * SLOW (minutes: npm installs the runtime dependencies from the registry, and better-sqlite3 may
 * compile from source): the full tier. What an operator does for production: `npm pack`, then
 * install that tarball without dev dependencies in a fresh directory. The installed `ec-server`
 * must start without TypeScript and answer a MESSAGE with 200, and `ec-test` must find the batch.
 */
describe('package install: the packed tarball, without dev dependencies (slow)', function () {
  this.timeout(15 * 60_000);
  let dir: string;
  let tarball: string;
  let entries: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-package-'));
    // The tests run from dist/, so it is built; --ignore-scripts packs it as it is (prepack would
    // rebuild dist/ under the running tests).
    const packed = await runProcess('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: REPO,
    });
    expect(packed.code, packed.stderr).to.equal(0);
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(dir, info!.filename);
    entries = info!.files.map((f) => f.path);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('carries the built JavaScript and the launchers, not the tests or the TypeScript sources', () => {
    expect(entries).to.include.members([
      'bin/ec-server.js',
      'bin/ec-test.js',
      'bin/ec-client.js',
      'dist/src/cli/ec-server.js',
      'dist/src/store/sqlite-writer-worker.js',
      'config/config.properties',
      'package.json',
    ]);
    expect(entries.filter((f) => /^(dist\/test|test|src|bench)\//.test(f) || f.endsWith('.map'))).to.deep.equal([]);
  });

  it('installed with --omit=dev in a fresh directory, ec-server starts and answers a MESSAGE; ec-test finds it', async () => {
    const data = join(dir, 'data');
    // A fresh project directory: the tarball is its only dependency.
    writeFileSync(join(dir, 'package.json'), '{"private": true}');
    const install = await runProcess('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', tarball], {
      cwd: dir,
    });
    expect(install.code, install.stderr).to.equal(0);
    const modules = join(dir, 'node_modules');
    expect(existsSync(join(modules, 'ec-server', 'dist', 'src', 'cli', 'ec-server.js'))).to.equal(true);
    expect(existsSync(join(modules, 'typescript')), 'typescript must not be installed').to.equal(false);
    expect(existsSync(join(modules, 'mocha')), 'mocha must not be installed').to.equal(false);

    const server = await spawnServerCommand(
      join(modules, '.bin', 'ec-server'),
      ['--port', '0', '--data-dir', data, '--set', 'sync.port=0'],
      { cwd: dir, timeoutMs: 60_000 },
    );
    try {
      const body = 'pkgmeter|20260301100000|0,1.5;500000,2.5';
      const response = await udpRequest(server.port, buildMessage({ port: server.port, body }), 10_000);
      expect(response?.status, server.output()).to.equal(200);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect((await server.exited).code, server.output()).to.equal(0);

    const report = await runProcess(
      join(modules, '.bin', 'ec-test'),
      ['--data-dir', data, '-i', 'pkgmeter', '-d', '20260301100000', '--json'],
      { cwd: dir },
    );
    expect(report.stderr).to.equal('');
    expect(JSON.parse(report.stdout)).to.include({ batches: 1, samples: 2 });
  });
});
