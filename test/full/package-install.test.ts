import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runProcess } from '../helpers/run-process.js';
import { REPO, spawnServerCommand } from '../helpers/server-process.js';
import { buildMessage, udpRequest } from '../helpers/sip-client.js';

/**
 * SLOW (minutes: npm installs the runtime dependencies from the registry, and better-sqlite3 may
 * compile from source): the full tier. What an operator does for production: `npm pack`, then
 * install that tarball globally without dev dependencies (here into a fresh prefix). The installed `ec-server`
 * must start without TypeScript and answer a MESSAGE with 200, and `ec-test` must find the batch.
 */
describe('package install: the packed tarball, without dev dependencies (slow)', function () {
  this.timeout(15 * 60_000);
  let dir = '';
  let tarball: string;
  let entries: string[];

  before(async function () {
    // The full tier (scripts/test-all.sh sets it): npm test stays a quick loop, and says so.
    if (process.env.EC_SLOW_TESTS !== '1') {
      console.warn('    package install test NOT RUN (slow: set EC_SLOW_TESTS=1, as npm run test:full does)');
      return this.skip();
    }
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
  after(() => void (dir && rmSync(dir, { recursive: true, force: true })));

  it('carries the built JavaScript and the launchers, not the tests or the TypeScript sources', () => {
    expect(entries).to.include.members([
      'bin/ec-server.js',
      'bin/ec-test.js',
      'bin/ec-client.js',
      'bin/ec-export.js',
      'dist/src/cli/ec-server.js',
      'dist/src/ingest/sink-thread-worker.js',
      'config/config.properties',
      'deploy/ec-server.service',
      'deploy/ec-server.logrotate',
      'docs/operations.md',
      'dist/src/http/dashboard.js',
      'dist/src/web/device-page.js',
      'web/index.html',
      'web/device.html',
      'web/dashboard.css',
      'CHANGELOG.md',
      'README.md',
      'package.json',
    ]);
    expect(entries.filter((f) => /^(dist\/test|test|src|bench)\//.test(f) || f.endsWith('.map'))).to.deep.equal([]);
  });

  it(
    'installed globally with --omit=dev into a fresh prefix, ec-server starts and answers a MESSAGE; ec-test ' +
      'finds it',
    async () => {
      const data = join(dir, 'data');
      // docs/operations.md: npm install -g --omit=dev ./ec-server-<version>.tgz, here into a prefix of
      // its own (bin/ and lib/node_modules/ below it) instead of /usr/local.
      const prefix = join(dir, 'prefix');
      const install = await runProcess(
        'npm',
        ['install', '-g', '--prefix', prefix, '--omit=dev', '--no-audit', '--no-fund', tarball],
        { cwd: dir },
      );
      expect(install.code, install.stderr).to.equal(0);
      const modules = join(prefix, 'lib', 'node_modules');
      const bin = (name: string) => join(prefix, 'bin', name);
      expect(existsSync(join(modules, 'ec-server', 'dist', 'src', 'cli', 'ec-server.js'))).to.equal(true);
      for (const dev of ['typescript', 'mocha', 'chai', 'prettier'])
        expect(existsSync(join(modules, 'ec-server', 'node_modules', dev)), `${dev} must not be installed`).to.equal(
          false,
        );
      expect(existsSync(join(modules, 'ec-server', 'node_modules', 'better-sqlite3'))).to.equal(true);

      const server = await spawnServerCommand(
        bin('ec-server'), // through its shebang, as the installed command runs
        ['--port', '0', '--data-dir', data, '--set', 'sync.port=0', '--set', 'http.port=0'],
        { cwd: dir, timeoutMs: 60_000 },
      );
      try {
        const body = 'pkgmeter|20260301100000|0,1.5;500000,2.5';
        const response = await udpRequest(server.port, buildMessage({ port: server.port, body }), 10_000);
        expect(response?.status, server.output()).to.equal(200);
        // The dashboard's pages, scripts and uPlot come from the installed package and its dependencies.
        const httpPort = /"port":(\d+),"tokens":\d+,"msg":"serving /.exec(server.output())?.[1];
        expect(httpPort, server.output()).to.be.a('string');
        for (const path of ['/dashboard/', '/dashboard/device-page.js', '/dashboard/vendor/uplot.js']) {
          const r = await fetch(`http://127.0.0.1:${httpPort}${path}`);
          expect(r.status, path).to.equal(200);
        }
      } finally {
        server.child.kill('SIGTERM');
      }
      expect((await server.exited).code, server.output()).to.equal(0);

      const report = await runProcess(
        bin('ec-test'),
        ['--data-dir', data, '-i', 'pkgmeter', '-d', '20260301100000', '--json'],
        { cwd: dir },
      );
      expect(report.stderr).to.equal('');
      expect(JSON.parse(report.stdout)).to.include({ batches: 1, samples: 2 });
    },
  );
});
