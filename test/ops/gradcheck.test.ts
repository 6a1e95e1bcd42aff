// Every hand-written backward against central finite differences in float64.
// Central differences have truncation error O(h²·f''') and rounding error O(u₆₄·|f|/h); with
// h = 1e-6 on O(1) data both are ~1e-10 relative, so 1e-6 relative (the bound) is safe.
// We check a random projection L = Σ r ⊙ f(x) so one scalar covers every output.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { conv2d, conv2dBackward } from '../../src/ops/conv2d.js';
import { batchNorm2d, batchNorm2dBackward } from '../../src/ops/batchnorm.js';
import { relu, reluBackward } from '../../src/ops/relu.js';
import { globalAvgPool, globalAvgPoolBackward } from '../../src/ops/pool.js';
import { linear, linearBackward } from '../../src/ops/linear.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from '../../src/ops/loss.js';
import { gradError } from '../helpers.js';

function dot(a: Tensor, b: Tensor): number {
  let s = 0;
  for (let i = 0; i < a.size; i++) s += a.data[i] * b.data[i];
  return s;
}

const REL = 1e-6;

describe('backward = finite differences (float64)', () => {
  it('conv2d: dx, dw, db over random geometry: rectangular kernels, strides and dilations, asymmetric padding, every backward algorithm', () => {
    fc.assert(fc.property(
      fc.record({
        N: fc.integer({ min: 1, max: 2 }), groups: fc.integer({ min: 1, max: 2 }), Cg: fc.integer({ min: 1, max: 3 }), Fg: fc.integer({ min: 1, max: 3 }),
        kh: fc.integer({ min: 1, max: 3 }), kw: fc.integer({ min: 1, max: 3 }), sh: fc.integer({ min: 1, max: 2 }), sw: fc.integer({ min: 1, max: 2 }),
        dh: fc.integer({ min: 1, max: 2 }), dw: fc.integer({ min: 1, max: 2 }),
        pad: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
        H: fc.integer({ min: 5, max: 8 }), W: fc.integer({ min: 5, max: 8 }), seed: fc.integer(), algo: fc.constantFrom('direct' as const, 'im2col' as const, 'winograd' as const),
      }),
      (g) => {
        // Winograd dx applies to 3×3, stride 1, dilation 1; there it is forced, elsewhere im2col
        const wino = g.algo === 'winograd';
        const [kh, kw, sh, sw, dh, dw] = wino ? [3, 3, 1, 1, 1, 1] : [g.kh, g.kw, g.sh, g.sw, g.dh, g.dw];
        const rng = new Rng(g.seed);
        const x = uniform([g.N, g.Cg * g.groups, g.H, g.W], rng, -1, 1, 'float64');
        const w = uniform([g.Fg * g.groups, g.Cg, kh, kw], rng, -1, 1, 'float64');
        const b = uniform([g.Fg * g.groups], rng, -1, 1, 'float64');
        const [pt, pb, pl, pr] = g.pad;
        const opts = { stride: [sh, sw] as [number, number], dilation: [dh, dw] as [number, number], padding: [[pt, pb], [pl, pr]] as [[number, number], [number, number]], groups: g.groups };
        const y = conv2d(x, w, b, opts);
        const r = uniform(y.shape, rng, -1, 1, 'float64');
        const grads = conv2dBackward(r, x, w, { ...opts, algorithm: g.algo });
        const L = () => dot(conv2d(x, w, b, opts), r);
        expect(gradError(x, grads.dx!, L, rng)).toBeLessThanOrEqual(REL);
        expect(gradError(w, grads.dw!, L, rng)).toBeLessThanOrEqual(REL);
        expect(gradError(b, grads.db!, L, rng)).toBeLessThanOrEqual(REL);
      }), { numRuns: 60 });
  });

  it('batch norm, training (through the batch statistics) and eval', () => {
    fc.assert(fc.property(fc.integer(), fc.boolean(), fc.integer({ min: 1, max: 3 }), (seed, training, N) => {
      const rng = new Rng(seed);
      const x = uniform([N, 3, 3, 2], rng, -2, 2, 'float64');
      const weight = uniform([3], rng, 0.5, 1.5, 'float64');
      const bias = uniform([3], rng, -1, 1, 'float64');
      const stats = () => ({ runningMean: uniform([3], new Rng(1), -1, 1, 'float64'), runningVar: uniform([3], new Rng(2), 0.5, 2, 'float64') });
      const run = () => batchNorm2d(x, { weight, bias, ...stats() }, { training });
      const out = run();
      const r = uniform(x.shape, rng, -1, 1, 'float64');
      const g = batchNorm2dBackward(r, x, weight, out, training);
      const L = () => dot(run().y, r);
      expect(gradError(x, g.dx, L, rng)).toBeLessThanOrEqual(REL);
      expect(gradError(weight, g.dweight!, L, rng)).toBeLessThanOrEqual(REL);
      expect(gradError(bias, g.dbias!, L, rng)).toBeLessThanOrEqual(REL);
    }), { numRuns: 40 });
  });

  it('relu (away from the kink), global average pooling, linear, softmax cross-entropy', () => {
    fc.assert(fc.property(fc.integer(), (seed) => {
      const rng = new Rng(seed);
      // relu: keep |x| > 10·H so the finite difference never straddles 0
      const xr = uniform([2, 3, 2, 2], rng, -1, 1, 'float64');
      for (let i = 0; i < xr.size; i++) if (Math.abs(xr.data[i]) < 1e-4) xr.data[i] = 0.5;
      const rr = uniform(xr.shape, rng, -1, 1, 'float64');
      expect(gradError(xr, reluBackward(rr, relu(xr)), () => dot(relu(xr), rr), rng)).toBeLessThanOrEqual(REL);

      const xp = uniform([2, 3, 4, 5], rng, -1, 1, 'float64');
      const rp = uniform([2, 3], rng, -1, 1, 'float64');
      expect(gradError(xp, globalAvgPoolBackward(rp, xp.shape), () => dot(globalAvgPool(xp), rp), rng)).toBeLessThanOrEqual(REL);

      const xl = uniform([3, 4], rng, -1, 1, 'float64');
      const wl = uniform([5, 4], rng, -1, 1, 'float64');
      const bl = uniform([5], rng, -1, 1, 'float64');
      const rl = uniform([3, 5], rng, -1, 1, 'float64');
      const gl = linearBackward(rl, xl, wl);
      const Ll = () => dot(linear(xl, wl, bl), rl);
      expect(gradError(xl, gl.dx, Ll, rng)).toBeLessThanOrEqual(REL);
      expect(gradError(wl, gl.dw, Ll, rng)).toBeLessThanOrEqual(REL);
      expect(gradError(bl, gl.db, Ll, rng)).toBeLessThanOrEqual(REL);

      const z = uniform([4, 6], rng, -3, 3, 'float64');
      const labels = [0, 5, 2, 2];
      const dz = softmaxCrossEntropyBackward(softmaxCrossEntropy(z, labels).probs, labels);
      expect(gradError(z, dz, () => softmaxCrossEntropy(z, labels).loss, rng)).toBeLessThanOrEqual(REL);
    }), { numRuns: 40 });
  });
});
