// Layers point down: a folder of src/ imports (values, not types) only from itself and the folders
// below it, so the architecture stays what docs/internals.md says. The one exception is named.
import { readFileSync, readdirSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));
/** bottom to top; of the files directly in src/, version.ts (a constant) is below everything and the
 * entry points (index.ts) above */
const LAYERS = ['version.js', 'tensor', 'backend', 'ops', 'nn', 'io', 'reparam', 'train', 'onnx', 'cli', 'index.js'];
/** the worker imports the kernels it runs, to register them (src/backend/worker.ts says so) */
const ALLOWED = new Set(['backend/worker.ts -> ops', 'backend/worker.ts -> train']);
const IMPORT = /^(?:import|export)\s+(type\s+)?(?:[^;'"]*?\sfrom\s+)?'(\.[^']+)'/gms;

/** src-relative path → its layer ('cli/main.ts' → 'cli', 'index.ts' → 'index.js') */
const layerOf = (path: string) => (path.includes('/') ? path.split('/')[0] : path.replace(/\.ts$/, '.js'));

/** The value imports (not `import type`: erased, no runtime arrow) that point to a higher layer. */
function upwardImports(files: [path: string, text: string][]): string[] {
  const up: string[] = [];
  for (const [path, text] of files) {
    const from = LAYERS.indexOf(layerOf(path));
    if (from < 0) throw new Error(`${path}: a folder the layering does not know; add it to LAYERS`);
    for (const m of text.matchAll(IMPORT)) {
      if (m[1] !== undefined) continue;
      const target = posix.normalize(posix.join(posix.dirname(path), m[2]));
      const to = LAYERS.indexOf(layerOf(target));
      if (to < 0) throw new Error(`${path} imports '${m[2]}', outside the known layers`);
      if (to > from && !ALLOWED.has(`${path} -> ${LAYERS[to]}`)) up.push(`${path} -> ${LAYERS[to]}`);
    }
  }
  return up;
}

/** The kernels' implementations (the SIMD module, the reference GEMM, its packing): only src/backend
 * may import them, types included; everything above goes through the interface (backend/gemm.ts). */
const IMPLEMENTATIONS = /^backend\/(wasm\/|gemm_ref\.ts$|gemm_pack\.ts$)/;

/** Imports of a kernel implementation from outside src/backend. */
function implementationImports(files: [path: string, text: string][]): string[] {
  const out: string[] = [];
  for (const [path, text] of files) {
    if (path.startsWith('backend/')) continue;
    for (const m of text.matchAll(IMPORT)) {
      const target = posix.normalize(posix.join(posix.dirname(path), m[2])).replace(/\.js$/, '.ts');
      if (IMPLEMENTATIONS.test(target)) out.push(`${path} -> ${target}`);
    }
  }
  return out;
}

function sources(dir: string): [string, string][] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e): [string, string][] => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [[relative(SRC, p).split(sep).join('/'), readFileSync(p, 'utf8')]] : [];
  });
}

describe('layering', () => {
  it(`src/ imports only downwards: ${LAYERS.join(' → ')}`, () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(100);
    expect(upwardImports(files)).toEqual([]);
  });

  it('above src/backend, the kernels are reached through their interface (backend/gemm.ts), never an implementation', () => {
    expect(implementationImports(sources(SRC))).toEqual([]);
    // and the guard sees one, type imports included
    expect(implementationImports([['ops/x.ts', "import type { Panels } from '../backend/wasm/instance.js';"], ['nn/y.ts', "import { gemmJs } from '../backend/gemm_ref.js';"], ['backend/gemm.ts', "import { gemmSimd } from './wasm/gemm_simd.js';"]]))
      .toEqual(['ops/x.ts -> backend/wasm/instance.ts', 'nn/y.ts -> backend/gemm_ref.ts']);
  });

  it('the guard catches an upward value import, and lets a type import and the named exception pass', () => {
    expect(upwardImports([['nn/dbb_layers.ts', "import { identityKernel } from '../reparam/kernels.js';"]])).toEqual(['nn/dbb_layers.ts -> reparam']);
    expect(upwardImports([['backend/wasm/gemm_simd.ts', "import {\n  packA,\n  packB,\n} from '../../ops/gemm_pack.js';"]])).toEqual(['backend/wasm/gemm_simd.ts -> ops']);
    expect(upwardImports([['ops/x.ts', "export { y } from '../nn/layers.js';"]])).toEqual(['ops/x.ts -> nn']);
    expect(upwardImports([['ops/x.ts', "import '../nn/layers.js';"]])).toEqual(['ops/x.ts -> nn']);
    expect(upwardImports([['io/x.ts', "import type { Module } from '../train/fit.js';"], ['backend/worker.ts', "import '../ops/conv2d_im2col.js';"]])).toEqual([]);
  });
});
