// docs/cli.md's reference is generated from each command's --help (src/cli/reference.ts): stale
// (a usage text changed, a command added) fails here; `node scripts/cli-reference.mjs` rewrites it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REFERENCE_BEGIN, REFERENCE_END, cliReference } from '../../src/cli/reference.js';
import { COMMANDS } from '../../src/cli/commands/index.js';

describe('the CLI reference', () => {
  it('docs/cli.md holds exactly what every command\'s --help says (run `node scripts/cli-reference.mjs` after `npm run build` when this fails)', () => {
    const text = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    const a = text.indexOf(REFERENCE_BEGIN), b = text.indexOf(REFERENCE_END);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(text.slice(a, b + REFERENCE_END.length)).toBe(cliReference());
    for (const c of COMMANDS) expect(text).toContain(`### repvgg ${c.spec.name}\n`);
  });
});
