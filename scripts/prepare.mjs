#!/usr/bin/env node
// `npm install` / `npm ci` in a checkout runs this (npm's prepare). With the dev dependencies it
// builds dist/ (tsc). Without them (`npm ci --omit=dev`) there is no TypeScript: a dist/ already
// built is kept, and otherwise it says how to install for production instead of failing later
// with "Cannot find module dist/...". An install from the packed tarball never runs it (the
// tarball carries dist/src, built by prepack).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  tsc = undefined;
}
if (tsc) {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' });
} else if (!existsSync(new URL('../dist/src/cli/ec-server.js', import.meta.url))) {
  process.stderr.write(
    'ec-server: TypeScript is not installed (--omit=dev) and dist/ is not built.\n' +
      'For production, install the packed tarball (npm pack, then npm install -g ec-server-<version>.tgz),\n' +
      'or build once with the dev dependencies (npm ci && npm run build) before npm ci --omit=dev.\n',
  );
  process.exit(1);
}
