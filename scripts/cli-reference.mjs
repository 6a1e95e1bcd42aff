#!/usr/bin/env node
// Rewrites the generated part of docs/cli.md from each command's --help (after `npm run build`).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { REFERENCE_BEGIN, REFERENCE_END, cliReference } from '../dist/cli/reference.js';

const file = fileURLToPath(new URL('../docs/cli.md', import.meta.url));
const text = readFileSync(file, 'utf8');
const a = text.indexOf(REFERENCE_BEGIN), b = text.indexOf(REFERENCE_END);
if (a < 0 || b < a) throw new Error(`docs/cli.md: the generated part's markers are missing`);
writeFileSync(file, text.slice(0, a) + (await cliReference()) + text.slice(b + REFERENCE_END.length));
console.log('wrote docs/cli.md');
