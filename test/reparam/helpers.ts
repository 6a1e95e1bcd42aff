// Shared by the fuser tests: random BN statistics over a wide range, and the error-model magnitude.
import type { Module } from '../../src/nn/module.js';
import { BatchNorm2d, Conv2d } from '../../src/nn/layers.js';
import { Rng } from '../../src/tensor/rng.js';
import type { Tensor } from '../../src/tensor/tensor.js';

/** Visit every BatchNorm2d below m. */
export function batchNorms(m: Module): BatchNorm2d[] {
  const out: BatchNorm2d[] = m instanceof BatchNorm2d ? [m] : [];
  for (const [, c] of m.children()) out.push(...batchNorms(c));
  return out;
}

/**
 * Random eval statistics: γ ~ U(0.5, 1.5) or near zero (|γ| < 1e-4), β, μ ~ U(−1, 1),
 * σ² log-uniform in [1e-8, 1e4] (s = γ/√(σ²+ε) from ~3e2·γ down to ~1e-2·γ).
 */
export function randomizeBN(m: Module, seed: number): void {
  const rng = new Rng(seed);
  for (const bn of batchNorms(m)) {
    for (let c = 0; c < bn.weight.data.size; c++) {
      bn.weight.data.data[c] = rng.next() < 0.15 ? (rng.next() * 2 - 1) * 1e-4 : 0.5 + rng.next();
      bn.bias.data.data[c] = rng.next() * 2 - 1;
      bn.runningMean.data[c] = rng.next() * 2 - 1;
      bn.runningVar.data[c] = 10 ** (-8 + 12 * rng.next());
    }
  }
}

/** max |a − b| / bound, elementwise bound given by S. */
export function worstRatio(a: Tensor, b: Tensor, bound: (i: number) => number): number {
  let r = 0;
  for (let i = 0; i < a.size; i++) r = Math.max(r, Math.abs(a.data[i] - b.data[i]) / bound(i));
  return r;
}

/**
 * Pin every Conv2d below m to im2col. The elementwise bounds in these tests are derived for
 * summation-order algorithms; 'auto' may pick Winograd, whose (larger) bound is tested in
 * test/ops/conv2d.test.ts.
 */
export function pinIm2col<T extends Module>(m: T): T {
  if (m instanceof Conv2d) m.algorithm = 'im2col';
  for (const [, c] of m.children()) pinIm2col(c);
  return m;
}
