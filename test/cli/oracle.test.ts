import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './run.js';
import { serializeNpy } from '../../src/io/npy.js';
import { parseSafetensors, tensorOf } from '../../src/io/safetensors.js';
import { compareArrays, ulpDistance } from '../../src/io/compare.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { conv2d, type Conv2dOptions } from '../../src/ops/conv2d.js';
import { fixturePath, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'repvgg-oracle-'));

describe('ULP and allclose metrics', () => {
  it('counts units in the last place', () => {
    expect(ulpDistance(1, 1 + 2 ** -23, 'float32')).toBe(1);
    expect(ulpDistance(-0, 0, 'float32')).toBe(0);
    expect(ulpDistance(-(2 ** -149), 2 ** -149, 'float32')).toBe(2);
    expect(ulpDistance(1, 1 + 2 ** -52, 'float64')).toBe(1);
    const c = compareArrays(new Float64Array([1, 2, 0]), new Float64Array([1, 2.00001, 1e-9]), 1e-5, 1e-8);
    expect(c.failures).toBe(0);
    expect(c.maxAbs).toBeCloseTo(1e-5, 12);
    expect(compareArrays(new Float64Array([1]), new Float64Array([NaN]), 1, 1).failures).toBe(1);
  });
});

describe('repvgg verify', () => {
  it('passes within tolerance, fails past it with the worst element, and refuses shape mismatches', async () => {
    const dir = tmp();
    const ref = new Tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const near = new Tensor(new Float32Array([1, 2, 3, 4 + 4e-5]), [2, 2]);
    writeFileSync(join(dir, 'ref.npy'), serializeNpy(ref));
    writeFileSync(join(dir, 'near.npy'), serializeNpy(near));
    writeFileSync(join(dir, 'flat.npy'), serializeNpy(ref.reshape([4])));
    const ok = await cli('verify', join(dir, 'ref.npy'), join(dir, 'near.npy'), '--rtol', '1e-4');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/max abs 4\.\d+e-5 .* max ULP \(float32\) 84/);
    const bad = await cli('verify', join(dir, 'ref.npy'), join(dir, 'near.npy'), '--rtol', '1e-6', '--atol', '0');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('FAIL: 1 of 4 elements exceed atol 0 + rtol 0.000001·|ref|; worst at flat index 3');
    const shape = await cli('verify', join(dir, 'ref.npy'), join(dir, 'flat.npy'));
    expect(shape.code).toBe(1);
    expect(shape.err).toContain('shape mismatch');
  });
});

const manifest = JSON.parse(readFileSync(fixturePath('manifest.json'), 'utf8')) as { cases: { name: string; file: string; keys: Record<string, [string, number[]]>; tolerance: { reason: string } }[] };

describe('fixtures manifest', () => {
  it('describes every PyTorch fixture file, with keys, dtypes and shapes that match the files', () => {
    const files = readdirSync(fixturePath('torch')).filter((f) => f !== 'io_dtypes.safetensors');
    expect(manifest.cases.map((c) => c.file.replace('torch/', '')).sort()).toEqual(files.sort());
    for (const c of manifest.cases) {
      const st = parseSafetensors(new Uint8Array(readFileSync(fixturePath(c.file)))).tensors;
      expect([...st.keys()].sort()).toEqual(Object.keys(c.keys).sort());
      for (const [k, [dtype, shape]] of Object.entries(c.keys)) {
        expect(st.get(k)!.dtype).toBe(dtype);
        expect(st.get(k)!.shape).toEqual(shape);
      }
      expect(c.tolerance.reason.length).toBeGreaterThan(10);
    }
  });
});

describe('repvgg fixtures (this engine, float64)', () => {
  it('regenerates every case; its conv cases agree with PyTorch\'s on PyTorch\'s geometry', async () => {
    const dir = tmp();
    const r = await cli('fixtures', '--out', dir);
    expect(r.code).toBe(0);
    const ours = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { cases: { name: string; options?: Conv2dOptions }[] };
    expect(ours.cases.map((c) => c.name).sort()).toEqual(manifest.cases.map((c) => c.name).sort());
    // Same options produce the same output shapes as PyTorch's cases, and running our conv on
    // PyTorch's inputs with *our manifest's* options reproduces PyTorch's float64 output.
    for (const c of ours.cases.filter((c) => c.name.startsWith('conv2d_'))) {
      const fx = loadTorchFixture(c.name);
      const mine = parseSafetensors(new Uint8Array(readFileSync(join(dir, `${c.name}.safetensors`)))).tensors;
      expect(mine.get('y')!.shape).toEqual(fx.raw('y').shape);
      const y = conv2d(fx.t('x').to('float64'), fx.t('w').to('float64'), fx.t('b').to('float64'), c.options!);
      expect(maxAbsDiff(y, fx.t('y@f64'))).toBeLessThanOrEqual(1e-12 * (1 + maxAbs(fx.t('y@f64'))) * 50);
      // and the file is self-consistent: y = conv2d(x, w, b) in float64
      const t = (k: string) => tensorOf(mine.get(k)!, k);
      expect(maxAbsDiff(conv2d(t('x'), t('w'), t('b'), c.options!), t('y'))).toBeLessThanOrEqual(1e-12 * (1 + maxAbs(t('y'))) * 50);
    }
  });
});
