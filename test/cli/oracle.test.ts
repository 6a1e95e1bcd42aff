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

/** PyTorch's conv2d definition as loops, independent of src/ops: y[n,f,i,j] = b[f] + Σ x[n, g·Cg + c, i·s − p + a·d, …]·w[f, c, a, e]. */
function naiveConv(x: Tensor, w: Tensor, b: Tensor, o: Conv2dOptions): Tensor {
  const [N, C, H, W] = x.shape, [F, Cg, kh, kw] = w.shape;
  const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);
  const [sh, sw] = pair(o.stride as number | [number, number] | undefined, 1), [dh, dw] = pair(o.dilation as number | [number, number] | undefined, 1);
  const p = o.padding ?? 0;
  // 'same' (stride 1): total d·(k − 1), the odd one at the bottom/right, as PyTorch
  const same = (k: number, d: number): [number, number] => [Math.floor((d * (k - 1)) / 2), d * (k - 1) - Math.floor((d * (k - 1)) / 2)];
  const [[pt, pb], [pl, pr]] = p === 'same' ? [same(kh, dh), same(kw, dw)] : p === 'valid' ? [[0, 0], [0, 0]]
    : typeof p === 'number' ? [[p, p], [p, p]] : Array.isArray(p[0]) ? p as [[number, number], [number, number]]
      : [[p[0] as number, p[0] as number], [p[1] as number, p[1] as number]];
  const Ho = Math.floor((H + pt + pb - dh * (kh - 1) - 1) / sh) + 1, Wo = Math.floor((W + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const Fg = F / (C / Cg);
  const y = new Float64Array(N * F * Ho * Wo);
  for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    let s = b.data[f];
    for (let c = 0; c < Cg; c++) for (let a = 0; a < kh; a++) for (let e = 0; e < kw; e++) {
      const yy = i * sh - pt + a * dh, xx = j * sw - pl + e * dw;
      if (yy >= 0 && yy < H && xx >= 0 && xx < W) s += x.data[((n * C + Math.floor(f / Fg) * Cg + c) * H + yy) * W + xx] * w.data[((f * Cg + c) * kh + a) * kw + e];
    }
    y[((n * F + f) * Ho + i) * Wo + j] = s;
  }
  return new Tensor(y, [N, F, Ho, Wo]);
}

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
      // and our file's y is the convolution of its own x, w, b, by a naive loop written here
      const t = (k: string) => tensorOf(mine.get(k)!, k);
      expect(maxAbsDiff(naiveConv(t('x'), t('w'), t('b'), c.options!), t('y'))).toBeLessThanOrEqual(1e-12 * (1 + maxAbs(t('y'))) * 50);
    }
  });
});
