#!/usr/bin/env node
// @ts-check
// Rewrites the key table of docs/configuration.md from src/config/config-keys.ts (run after
// `npm run build`): `npm run docs:config`. test/unit/config.test.ts fails when they disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import { CONFIG_KEYS } from '../dist/src/config/config-keys.js';

const file = new URL('../docs/configuration.md', import.meta.url);
const doc = readFileSync(file, 'utf8');
const marker = '## Keys\n';
let out = '';
let section = '';
for (const k of CONFIG_KEYS) {
  if (k.section !== section) {
    section = k.section;
    out += `\n### [${section}]\n\n| key | default | meaning |\n|---|---|---|\n`;
  }
  const kind =
    k.kind.type === 'enum'
      ? ` One of: ${k.kind.values.join(', ')}.`
      : k.kind.type === 'int'
        ? ` Integer ${k.kind.min}..${k.kind.max}${k.kind.words ? `, or ${k.kind.words.join(', ')}` : ''}.`
        : '';
  const def = k.default === '' ? '(empty)' : '`' + k.default + '`';
  out += `| \`${k.key}\` | ${def} | ${k.doc.replaceAll('|', '\\|')}${kind} |\n`;
}
writeFileSync(file, doc.slice(0, doc.indexOf(marker) + marker.length) + out);
