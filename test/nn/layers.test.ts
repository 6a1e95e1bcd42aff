// Module state that must follow the weights: the eval-mode caches of transformed or packed filters
// (Winograd's U, and im2col's weights packed for the SIMD GEMM).
import { describe, expect, it } from 'vitest';
import { Conv2d } from '../../src/nn/layers.js';
import { conv2d } from '../../src/ops/conv2d.js';
import { SGD } from '../../src/train/sgd.js';
import { loadStateDict, stateDict } from '../../src/io/state_dict.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { type DType } from '../../src/tensor/tensor.js';
import { setBackend } from '../../src/backend/backend.js';
import { absConv, maxAbsDiff } from '../helpers.js';

// Winograd in float64: it and the direct reference agree to ≤ 1e-12·Σ|x·w| (conv2d.test.ts).
// im2col's packed weights exist for float32 on 'wasm', whose float32 accumulation of K = 27 products
// plus the bias add is within (K + 2)·u·Σ|x·w|, u = 2⁻²⁴ (the bound conv2d.test.ts derives).
// Stale filters would be off by the whole weight update (here ~0.1 of the output's size).
const CACHES: { what: string; dtype: DType; algorithm: 'winograd' | 'im2col'; rel: number }[] = [
  { what: 'Winograd filters', dtype: 'float64', algorithm: 'winograd', rel: 1e-12 },
  { what: "im2col's packed weights (wasm)", dtype: 'float32', algorithm: 'im2col', rel: 29 * 2 ** -24 },
];

describe.each(CACHES)('Conv2d eval-mode cache: $what', ({ dtype, algorithm, rel }) => {
  const bound = (c: Conv2d, x: ReturnType<typeof uniform>) => rel * Math.max(...absConv(x, c.weight.data, c.bias!.data, { padding: 1 }).data);
  const direct = (c: Conv2d, x: ReturnType<typeof uniform>) => conv2d(x, c.weight.data, c.bias!.data, { padding: 1, algorithm: 'direct' });
  const make = (rng: Rng) => {
    setBackend('wasm');
    const c = new Conv2d(3, 4, 3, { padding: 1, dtype, rng });
    c.algorithm = algorithm;
    return c;
  };

  it('eval → SGD step → eval uses the new weights', () => {
    const rng = new Rng(9);
    const c = make(rng);
    const x = uniform([1, 3, 8, 8], rng, -1, 1, dtype);
    c.eval().forward(x); // fills the cache
    c.train();
    c.forward(x);
    c.backward(uniform([1, 4, 8, 8], rng, -1, 1, dtype));
    new SGD(c.namedParameters().map(([, p]) => p), { lr: 0.5 }).step();
    const y = c.eval().forward(x);
    expect(maxAbsDiff(y, direct(c, x))).toBeLessThanOrEqual(bound(c, x));
  });

  it('loadStateDict replaces the cached filters too', () => {
    const rng = new Rng(10);
    const c = make(rng);
    const x = uniform([1, 3, 8, 8], rng, -1, 1, dtype);
    c.eval().forward(x);
    loadStateDict(c, stateDict(new Conv2d(3, 4, 3, { padding: 1, dtype, rng: new Rng(11) })));
    expect(maxAbsDiff(c.forward(x), direct(c, x))).toBeLessThanOrEqual(bound(c, x));
  });

  it('an in-place edit with a version bump is seen', () => {
    const rng = new Rng(12);
    const c = make(rng);
    const x = uniform([1, 3, 8, 8], rng, -1, 1, dtype);
    c.eval().forward(x);
    c.weight.data.data[0] += 1; // as an optimizer does: edit in place, then bump the version
    c.weight.version++;
    expect(maxAbsDiff(c.forward(x), direct(c, x))).toBeLessThanOrEqual(bound(c, x));
  });
});
