import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { SERVER_NODE_FLAGS, semiSpaceMbInEffect } from '../../src/cli/node-flags.js';
import { REPO } from '../helpers/server-process.js';

/** The V8 flags must be given to node itself, so every place that launches the server repeats them. */
describe('node flags of ec-server', () => {
  const flags = SERVER_NODE_FLAGS.join(' ');

  it('the shebang of bin/ec-server.js carries them (the installed ec-server command)', () => {
    const first = readFileSync(join(REPO, 'bin/ec-server.js'), 'utf8').split('\n')[0];
    expect(first).to.equal(`#!/usr/bin/env -S node ${flags}`);
  });

  it('npm start carries them', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).to.match(new RegExp(`^node ${flags} bin/ec-server\\.js `));
  });

  it('the pm2 file passes them as node_args', () => {
    const eco = createRequire(import.meta.url)(join(REPO, 'ecosystem.config.cjs')) as {
      apps: { node_args?: string }[];
    };
    expect(eco.apps[0]!.node_args).to.equal(flags);
  });

  it('the nohup line in docs/operations.md carries them; the systemd unit runs the installed command (shebang)', () => {
    const ops = readFileSync(join(REPO, 'docs/operations.md'), 'utf8');
    expect(ops).to.include(`nohup node ${flags} bin/ec-server.js`);
    const unit = readFileSync(join(REPO, 'deploy/ec-server.service'), 'utf8');
    expect(unit).to.match(/^ExecStart=\/\S+\/bin\/ec-server /m);
  });

  it('reads the semi-space size in effect from node arguments and NODE_OPTIONS (the later wins)', () => {
    expect(semiSpaceMbInEffect([], '')).to.equal(undefined);
    expect(semiSpaceMbInEffect(['--max-semi-space-size=64'], '')).to.equal(64);
    expect(semiSpaceMbInEffect([], '--max_semi_space_size=32 --trace-warnings')).to.equal(32);
    expect(semiSpaceMbInEffect(['--max-semi-space-size=64'], '--max-semi-space-size=16')).to.equal(64);
    expect(semiSpaceMbInEffect(['--max-semi-space-size'], '')).to.equal(undefined);
  });
});
