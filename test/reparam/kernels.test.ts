// Each algebraic step on its own, in float64 (exact up to a few roundings: ≤ 1e-12 relative).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { dilateKernel, fuseConvBN, identityKernel, mergeSequential1x1kxk, padKernel, sumBranches, undilateKernel, withZeroBias } from '../../src/reparam/kernels.js';
import { conv2d } from '../../src/ops/conv2d.js';
import { batchNorm2d } from '../../src/ops/batchnorm.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { maxAbs, maxAbsDiff } from '../helpers.js';

describe('reparam steps', () => {
  it('identityKernel: conv with it is the identity, for any groups', () => {
    for (const [C, g] of [[4, 1], [4, 2], [6, 3], [5, 5]]) {
      const x = uniform([2, C, 3, 4], new Rng(C * g), -1, 1, 'float64');
      expect(maxAbsDiff(conv2d(x, identityKernel(C, g, 'float64'), null, { padding: 1, groups: g, algorithm: 'direct' }), x)).toBe(0);
    }
  });
  it('padKernel: a centred 1×1, 1×3 or 3×1 kernel computes the same conv at 3×3', () => {
    for (const [kh, kw] of [[1, 1], [1, 3], [3, 1], [3, 3]]) {
      const rng = new Rng(kh * 10 + kw);
      const x = uniform([1, 2, 5, 4], rng, -1, 1, 'float64');
      const w = uniform([3, 2, kh, kw], rng, -1, 1, 'float64');
      // the direct reference both times ('auto' could time Winograd for the 3×3, whose roundings differ):
      // the padded kernel only adds exact zero products to the same sums, so ≤ 1e-15 is generous
      const y = conv2d(x, w, null, { padding: [(kh - 1) / 2, (kw - 1) / 2], algorithm: 'direct' });
      expect(maxAbsDiff(conv2d(x, padKernel(w, 3), null, { padding: 1, algorithm: 'direct' }), y)).toBeLessThanOrEqual(1e-15);
    }
    expect(() => padKernel(uniform([1, 1, 2, 2], new Rng(0)), 3)).toThrow('cannot centre a 2×2 kernel');
  });
  it('dilateKernel: a conv with dilation r is the plain conv of its kernel with r − 1 zeros between taps; undilateKernel gives it back', () => {
    for (const [k, r] of [[3, 2], [3, 3], [5, 2], [2, 3]]) {
      const rng = new Rng(k * 10 + r);
      const x = uniform([1, 2, 13, 12], rng, -1, 1, 'float64');
      const w = uniform([3, 2, k, k], rng, -1, 1, 'float64');
      const p = Math.floor(r * (k - 1) / 2);
      const wide = dilateKernel(w, r);
      expect(wide.shape).toEqual([3, 2, r * (k - 1) + 1, r * (k - 1) + 1]);
      // the same products in the same order, exact zeros between them: as padKernel's, ≤ 1e-15
      const y = conv2d(x, w, null, { padding: p, dilation: r, algorithm: 'direct' });
      expect(maxAbsDiff(conv2d(x, wide, null, { padding: p, algorithm: 'direct' }), y)).toBeLessThanOrEqual(1e-15);
      expect([...undilateKernel(wide, r)!.data]).toEqual([...w.data]);
    }
    const w = dilateKernel(uniform([1, 1, 3, 3], new Rng(5), 1, 2, 'float64'), 2);
    expect(undilateKernel(w, 3)).toBeNull(); // a 5×5 kernel has no lattice of step 3
    w.data[1] = 0.5; // a tap between the lattice's
    expect(undilateKernel(w, 2)).toBeNull();
  });
  it('fuseConvBN: BN(conv(x)) = conv(x, W\') + b\' in eval mode', () => {
    const rng = new Rng(3);
    const x = uniform([2, 3, 5, 5], rng, -1, 1, 'float64');
    const w = uniform([4, 3, 3, 3], rng, -1, 1, 'float64');
    const bn = { gamma: uniform([4], rng, 0.5, 1.5, 'float64'), beta: uniform([4], rng, -1, 1, 'float64'), mean: uniform([4], rng, -1, 1, 'float64'), variance: uniform([4], rng, 0.1, 2, 'float64'), eps: 1e-5 };
    const ref = batchNorm2d(conv2d(x, w, null, { padding: 1 }), { weight: bn.gamma, bias: bn.beta, runningMean: bn.mean, runningVar: bn.variance }, { training: false }).y;
    const f = fuseConvBN(withZeroBias(w), bn, 'float64');
    expect(maxAbsDiff(conv2d(x, f.kernel, f.bias, { padding: 1 }), ref)).toBeLessThanOrEqual(1e-12 * maxAbs(ref));
  });
  it('fuseConvBN honours the incoming conv bias and the BN\'s own eps (closed form, eps = 1e-3 as YOLOv6/v7)', () => {
    const rng = new Rng(4);
    const w = uniform([3, 2, 3, 3], rng, -1, 1, 'float64');
    const b = uniform([3], rng, -1, 1, 'float64');
    const bn = { gamma: uniform([3], rng, 0.5, 1.5, 'float64'), beta: uniform([3], rng, -1, 1, 'float64'), mean: uniform([3], rng, -1, 1, 'float64'), variance: uniform([3], rng, 1e-4, 1e-2, 'float64'), eps: 1e-3 };
    const f = fuseConvBN({ kernel: w, bias: b }, bn, 'float64');
    for (let o = 0; o < 3; o++) {
      // K' = K·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε); σ² ~ 1e-3 makes ε matter at the 20–50% level
      const s = bn.gamma.data[o] / Math.sqrt(bn.variance.data[o] + 1e-3);
      for (let i = 0; i < 18; i++) expect(f.kernel.data[o * 18 + i]).toBeCloseTo(w.data[o * 18 + i] * s, 14);
      expect(f.bias.data[o]).toBeCloseTo(bn.beta.data[o] + (b.data[o] - bn.mean.data[o]) * s, 14);
    }
    // and as a function: BN(conv(x) + b) with the same eps
    const x = uniform([2, 2, 5, 5], rng, -1, 1, 'float64');
    const ref = batchNorm2d(conv2d(x, w, b, { padding: 1 }), { weight: bn.gamma, bias: bn.beta, runningMean: bn.mean, runningVar: bn.variance }, { training: false, eps: 1e-3 }).y;
    expect(maxAbsDiff(conv2d(x, f.kernel, f.bias, { padding: 1 }), ref)).toBeLessThanOrEqual(1e-12 * maxAbs(ref));
  });
  it('in place (the fuser\'s own intermediates): fuseConvBN and sumBranches write the same closed forms into their input\'s arrays', () => {
    const rng = new Rng(6);
    const w = uniform([3, 2, 3, 3], rng, -1, 1, 'float64'), b = uniform([3], rng, -1, 1, 'float64');
    const bn = { gamma: uniform([3], rng, 0.5, 1.5, 'float64'), beta: uniform([3], rng, -1, 1, 'float64'), mean: uniform([3], rng, -1, 1, 'float64'), variance: uniform([3], rng, 0.1, 2, 'float64'), eps: 1e-5 };
    const w0 = Float64Array.from(w.data), b0 = Float64Array.from(b.data);
    const f = fuseConvBN({ kernel: w, bias: b }, bn, 'float64', true);
    expect(f.kernel.data).toBe(w.data);
    expect(f.bias.data).toBe(b.data);
    for (let o = 0; o < 3; o++) {
      const sc = bn.gamma.data[o] / Math.sqrt(bn.variance.data[o] + 1e-5);
      for (let i = 0; i < 18; i++) expect(f.kernel.data[o * 18 + i]).toBe(w0[o * 18 + i] * sc); // one product: exact to the bit
      expect(f.bias.data[o]).toBe(bn.beta.data[o] + (b0[o] - bn.mean.data[o]) * sc);
    }
    const parts = [0, 1, 2].map((i) => ({ kernel: uniform([2, 2, 3, 3], new Rng(10 + i), -1, 1, 'float64'), bias: uniform([2], new Rng(20 + i), -1, 1, 'float64') }));
    const want = parts[0].kernel.data.map((v, i) => v + parts[1].kernel.data[i] + parts[2].kernel.data[i]); // ((k0 + k1) + k2), as 0 + k0 + k1 + k2
    const sum = sumBranches(parts, 'float64', true);
    expect(sum.kernel.data).toBe(parts[0].kernel.data);
    expect(sum.kernel.data).toEqual(want);
    expect(() => sumBranches([withZeroBias(uniform([2, 2, 1, 1], rng))], 'float64', true)).toThrow('in place needs the first branch in float64');
  });

  it('sumBranches refuses unpadded kernels of different sizes', () => {
    const a = withZeroBias(uniform([2, 2, 3, 3], new Rng(1)));
    const b = withZeroBias(uniform([2, 2, 1, 1], new Rng(2)));
    expect(() => sumBranches([a, b])).toThrow('kernel shape [2, 2, 1, 1] differs from [2, 2, 3, 3]; pad it first');
  });
  it('mergeSequential1x1kxk: conv_k(conv_1x1(x) + b1) + b2 = one k×k conv (unpadded), property', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (C, D, E, k, seed) => {
      const rng = new Rng(seed);
      const x = uniform([2, C, k + 3, k + 2], rng, -1, 1, 'float64');
      const first = { kernel: uniform([D, C, 1, 1], rng, -1, 1, 'float64'), bias: uniform([D], rng, -1, 1, 'float64') };
      const second = { kernel: uniform([E, D, k, k], rng, -1, 1, 'float64'), bias: uniform([E], rng, -1, 1, 'float64') };
      const ref = conv2d(conv2d(x, first.kernel, first.bias), second.kernel, second.bias);
      const m = mergeSequential1x1kxk(first, second, 'float64');
      expect(maxAbsDiff(conv2d(x, m.kernel, m.bias), ref)).toBeLessThanOrEqual(1e-12 * (1 + maxAbs(ref)) * D * k * k);
    }), { numRuns: 60 });
  });
});
