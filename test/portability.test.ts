// The library must run in browsers: no Node-only API outside the CLI (src/cli) and file I/O helpers.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));
const NODE_ONLY = /from ['"]node:|require\(|\bprocess\.|\bBuffer\b|__dirname/;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

describe('portability', () => {
  it('no Node-only API in src/ outside src/cli', () => {
    const offenders = walk(SRC)
      .filter((p) => !p.includes(`${join('src', 'cli')}`) && p.endsWith('.ts'))
      .filter((p) => NODE_ONLY.test(readFileSync(p, 'utf8')));
    expect(offenders).toEqual([]);
  });
});
