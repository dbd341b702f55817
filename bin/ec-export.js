#!/usr/bin/env node
// @ts-check
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` / `npm run build`).
import { main } from '../dist/src/cli/ec-export.js';

main().catch((err) => {
  process.stderr.write(`ec-export: ${err?.stack ?? err}\n`);
  process.exit(2);
});
