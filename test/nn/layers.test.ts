// Module state that must follow the weights: the eval-mode caches of transformed or packed filters
// (Winograd's U, im2col's weights and Linear's packed for the SIMD GEMM).
import { describe, expect, it } from 'vitest';
import { BatchNorm2d, Conv2d, Linear } from '../../src/nn/layers.js';
import { batchNorm2d, batchNorm2dBackward } from '../../src/ops/batchnorm.js';
import { linearBackward } from '../../src/ops/linear.js';
import { conv2d, conv2dBackward } from '../../src/ops/conv2d.js';
import { SGD } from '../../src/train/sgd.js';
import { loadStateDict, stateDict } from '../../src/io/state_dict.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { type DType, type FloatArray, Tensor } from '../../src/tensor/tensor.js';
import type { Parameter } from '../../src/nn/module.js';
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

// Linear keeps W prepared for the GEMM in eval mode (resident from its second call), per weight
// version. Against y = x·Wᵀ + b in float64 from the weights as they are now: the float32 GEMM's K
// products and the bias add are within (K + 2)·u·Σ|x·w| + |b| (u = 2⁻²⁴), where stale weights would be
// off by the whole update. A batch of 2 under 5 out_features: the side where W is the prepared operand.
describe('Linear eval-mode cache: W prepared for the GEMM (wasm)', () => {
  const K = 7;
  const check = (l: Linear, x: ReturnType<typeof uniform>) => {
    const y = l.forward(x), w = l.weight.data.data, b = l.bias.data.data;
    let worst = 0, bound = 0;
    for (let n = 0; n < 2; n++) {
      for (let o = 0; o < 5; o++) {
        let ref = b[o], mag = Math.abs(b[o]);
        for (let k = 0; k < K; k++) {
          ref += x.data[n * K + k] * w[o * K + k];
          mag += Math.abs(x.data[n * K + k] * w[o * K + k]);
        }
        worst = Math.max(worst, Math.abs(y.data[n * 5 + o] - ref));
        bound = Math.max(bound, (K + 2) * 2 ** -24 * mag);
      }
    }
    expect(worst).toBeLessThanOrEqual(bound);
  };
  it('eval (twice) → SGD step → eval, loadStateDict, and an in-place edit with a version bump: each uses the weights as they are', () => {
    setBackend('wasm');
    const rng = new Rng(13);
    const l = new Linear(K, 5, { rng }).eval();
    const x = uniform([2, K], rng, -1, 1);
    check(l, x);
    check(l, x); // the second call keeps W resident
    l.train();
    l.forward(x);
    l.backward(uniform([2, 5], rng, -1, 1));
    new SGD(l.namedParameters().map(([, p]) => p), { lr: 0.5 }).step();
    l.eval();
    check(l, x);
    loadStateDict(l, stateDict(new Linear(K, 5, { rng: new Rng(14) })));
    check(l, x);
    l.weight.data.data[3] += 1;
    l.weight.version++;
    check(l, x);
  });
});

// One rule (ops' winogradApplies) decides where Winograd runs; 'winograd' asked of a module where it
// does not apply runs im2col, so the bits are exactly im2col's, forward and backward.
describe("Conv2d with algorithm 'winograd' where Winograd does not apply", () => {
  const CASES: [string, { stride?: number; padding?: number; dilation?: number }, number][] = [
    ['stride 2', { stride: 2, padding: 1 }, 3], ['dilation 2', { dilation: 2, padding: 2 }, 3], ['padding 3', { padding: 3 }, 3], ['1×1', {}, 1],
  ];
  for (const [what, opts, k] of CASES) {
    it(`${what}: runs im2col (the same bits, forward and backward), and says Winograd does not apply`, () => {
      const x = uniform([2, 4, 9, 9], new Rng(1), -1, 1);
      const dy = (c: Conv2d) => uniform(c.forward(x).shape, new Rng(2), -1, 1);
      const run = (algorithm: 'winograd' | 'im2col') => {
        const c = new Conv2d(4, 6, k, { ...opts, rng: new Rng(3) });
        c.algorithm = algorithm;
        const y = c.forward(x).data.slice();
        const dx = c.backward(dy(c)).data.slice();
        return { y, dx, dw: c.weight.grad.data.slice(), applies: c.winogradApplies, used: c.used?.algorithm };
      };
      const w = run('winograd'), i = run('im2col');
      expect([w.applies, w.used]).toEqual([false, 'im2col']);
      expect(w.y).toEqual(i.y);
      expect(w.dx).toEqual(i.dx);
      expect(w.dw).toEqual(i.dw);
    });
  }
  it('3×3, stride 1, padding 1: Winograd applies and runs', () => {
    const c = new Conv2d(4, 6, 3, { padding: 1 });
    c.algorithm = 'winograd';
    c.forward(uniform([1, 4, 8, 8], new Rng(1), -1, 1));
    expect([c.winogradApplies, c.used?.algorithm]).toEqual([true, 'winograd']);
  });
});

// Gradients accumulate as in PyTorch: grad += dW per backward, zero after zeroGrad. A conv and a
// linear layer write dW straight into a gradient that holds zero (no second array, no pass adding it
// to zeros), so the checks are against the functional op's dW, computed on its own: after zeroGrad
// the gradient is that dW bit for bit; a second backward adds in float32 (fl(dW₁ + dW₂)); a value
// written into the gradient after zeroGrad is added to; reading it after zeroGrad gives zeros; a
// backward that fails (a grad_output of the wrong shape) leaves a cleared gradient zero.
interface WeightLayer { weight: Parameter; forward(x: Tensor): Tensor; backward(dy: Tensor): Tensor; zeroGrad(): void }
function checkGradientWrites(layer: WeightLayer, x: [Tensor, Tensor], dy: [Tensor, Tensor], dW: (x: Tensor, dy: Tensor) => FloatArray, badDy: Tensor): void {
  const dW1 = dW(x[0], dy[0]), dW2 = dW(x[1], dy[1]);
  const grad = () => layer.weight.grad.data;
  const step = (i: 0 | 1) => { layer.forward(x[i]); layer.backward(dy[i]); };
  step(0);
  expect(Array.from(grad())).toEqual(Array.from(dW1));
  step(1);
  expect(Array.from(grad())).toEqual(Array.from(Float32Array.from(dW1, (v, i) => v + dW2[i])));
  layer.zeroGrad();
  expect(grad().every((v) => v === 0)).toBe(true);
  layer.zeroGrad();
  step(1);
  expect(Array.from(grad())).toEqual(Array.from(dW2));
  layer.zeroGrad();
  grad()[0] = 5; // written after zeroGrad: the next backward adds to it
  step(0);
  expect(grad()[0]).toBe(Math.fround(5 + dW1[0]));
  expect(Array.from(grad().subarray(1))).toEqual(Array.from(dW1.subarray(1), (v) => 0 + v));
  layer.zeroGrad();
  layer.forward(x[0]);
  expect(() => layer.backward(badDy)).toThrow('grad_output shape');
  expect(grad().every((v) => v === 0)).toBe(true);
}

describe('weight gradients: written after zeroGrad, added to otherwise', () => {
  it.each(['im2col', 'direct'] as const)('Conv2d (%s): dW₁, then fl(dW₁ + dW₂), zero again after zeroGrad, a written value kept', (algorithm) => {
    const rng = new Rng(21);
    const conv = new Conv2d(3, 4, 3, { padding: 1, rng });
    conv.algorithm = algorithm;
    const opts = { padding: 1, algorithm };
    checkGradientWrites(conv, [uniform([2, 3, 5, 5], rng, -1, 1), uniform([2, 3, 5, 5], rng, -1, 1)], [uniform([2, 4, 5, 5], rng, -1, 1), uniform([2, 4, 5, 5], rng, -1, 1)],
      (x, dy) => conv2dBackward(dy, x, conv.weight.data, opts, { dx: false, db: false }).dw!.data, uniform([2, 4, 4, 4], rng, -1, 1));
  });

  it('Linear: the same', () => {
    const rng = new Rng(8);
    const lin = new Linear(6, 4, { rng });
    checkGradientWrites(lin, [uniform([3, 6], rng, -1, 1), uniform([3, 6], rng, -1, 1)], [uniform([3, 4], rng, -1, 1), uniform([3, 4], rng, -1, 1)],
      (x, dy) => linearBackward(dy, x, lin.weight.data).dw.data, uniform([3, 5], rng, -1, 1));
    expect(() => linearBackward(uniform([3, 4], rng, -1, 1), uniform([3, 6], rng, -1, 1), lin.weight.data, new Float32Array(23))).toThrow('linear backward: dwInto holds 23 values, expected 24 float32');
  });
});

describe('BatchNorm2d keeps its statistics in two arrays of its own', () => {
  it('each forward writes them (no new arrays a step), and backward uses the last forward\'s: the bits of the op on fresh arrays', () => {
    const rng = new Rng(5);
    const bn = new BatchNorm2d(12).train(); // 12 channels: float64 arrays past V8's 64-byte in-heap limit
    const x1 = uniform([2, 12, 3, 3], rng, -2, 2), x2 = uniform([2, 12, 3, 3], rng, -1, 3), dy = uniform([2, 12, 3, 3], rng, -1, 1);
    bn.forward(x1);
    const first = bn.forwardRecord().mean;
    // the reference: the op on the running statistics after x1, into new arrays
    const p = { weight: bn.weight.data, bias: bn.bias.data, runningMean: bn.runningMean.clone(), runningVar: bn.runningVar.clone() };
    const ref = batchNorm2d(x2, p, { training: true });
    const y = bn.forward(x2);
    expect(bn.forwardRecord().mean).toBe(first);
    expect(Array.from(bn.forwardRecord().mean)).toEqual(Array.from(ref.mean));
    expect(Array.from(y.data)).toEqual(Array.from(ref.y.data));
    const dx = bn.backward(dy);
    const g = batchNorm2dBackward(dy, x2, bn.weight.data, ref, true);
    expect(Array.from(dx.data)).toEqual(Array.from(g.dx.data));
    expect(Array.from(bn.weight.grad.data)).toEqual(Array.from(g.dweight!.data));
  });
});
