#!/usr/bin/env -S node --max-semi-space-size=64
// @ts-check
// The V8 flag on the first line is explained in src/cli/node-flags.ts (run directly, it applies).
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` / `npm run build`).
import { main } from '../dist/src/cli/ec-server.js';

main().catch((err) => {
  process.stderr.write(`ec-server: ${err?.stack ?? err}\n`);
  process.exit(1);
});
