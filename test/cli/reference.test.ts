// docs/cli.md's reference is generated from each command's --help (src/cli/reference.ts): stale
// (a usage text changed, a command added) fails here; `node scripts/cli-reference.mjs` rewrites it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REFERENCE_BEGIN, REFERENCE_END, cliReference } from '../../src/cli/reference.js';
import { COMMANDS, loadCommands } from '../../src/cli/commands/index.js';

describe('the CLI reference', () => {
  it('docs/cli.md holds exactly what every command\'s --help says (run `node scripts/cli-reference.mjs` after `npm run build` when this fails)', async () => {
    const text = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    const a = text.indexOf(REFERENCE_BEGIN), b = text.indexOf(REFERENCE_END);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(text.slice(a, b + REFERENCE_END.length)).toBe(await cliReference());
    for (const c of COMMANDS) expect(text).toContain(`### repvgg ${c.name}\n`);
  });

  // Commands are loaded by the name the listing gives them (src/cli/commands/index.ts): each must
  // load the command of that name, or `repvgg NAME` would run another one.
  it('each listed name loads the command of that name', async () => {
    const commands = await loadCommands();
    expect(commands.map((c) => c.spec.name)).toEqual(COMMANDS.map((c) => c.name));
  });
});
