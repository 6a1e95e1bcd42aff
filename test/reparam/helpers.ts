// Shared by the fuser tests: random BN statistics over a wide range, and the error-model magnitude.
import type { Module } from '../../src/nn/module.js';
import { BatchNorm2d, Conv2d } from '../../src/nn/layers.js';
import { LayerScale } from '../../src/nn/layer_scale.js';
import { setConvAlgorithm } from '../../src/nn/conv_algorithm.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { RepVGG } from '../../src/nn/repvgg.js';
import type { RepVGGConfig } from '../../src/nn/config.js';
import { convert } from '../../src/reparam/repvgg.js';
import { loadStateDict, stateDict } from '../../src/io/state_dict.js';
import { expect } from 'vitest';
import { maxAbs, maxAbsDiff } from '../helpers.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { SafeEntry } from '../../src/io/safetensors.js';
import { type FamilySpec, familyBlock } from '../../src/nn/families.js';
import type { BranchBlock } from '../../src/nn/branch_block.js';

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
  setConvAlgorithm(m, 'im2col');
  return m;
}

// Whole models: errors from earlier blocks propagate through later ones (each a Lipschitz map with
// constant ≤ Σ|s·W|), so we compare against the float64 fused model instead of a closed form: the
// float32 deploy and training-time models must both sit within 1e-4·max|logit| (float32 rounding of
// ~10 chained layers) of the float64 reference, and the float64 pair within 1e-12·max|logit|.
export function checkModel(cfg: RepVGGConfig, seed: number, size: number, N = 2, float32 = true): void {
  const m64 = RepVGG.fromConfig(cfg, { seed, dtype: 'float64' });
  randomizeBN(m64, seed + 1);
  for (const bn of m64.namedBuffers()) if (bn[0].endsWith('running_var') && bn[1].kind === 'tensor') {
    // keep σ² ≥ 1e-3 for whole models: tiny variances amplify by 1/σ per layer and make logits huge
    const v = bn[1].value.data;
    for (let i = 0; i < v.length; i++) v[i] = Math.max(v[i], 1e-3);
  }
  m64.eval();
  const x64 = uniform([N, cfg.in_channels ?? 3, size, size], new Rng(seed + 2), -1, 1, 'float64');
  const ref = m64.forward(x64);
  const d64 = convert(m64).forward(x64);
  expect(maxAbsDiff(d64, ref)).toBeLessThanOrEqual(1e-12 * maxAbs(ref));
  if (!float32) return;
  const m32 = RepVGG.fromConfig(cfg, { dtype: 'float32', init: false });
  loadStateDict(m32, stateDict(m64));
  m32.eval();
  const x32 = x64.to('float32');
  const t32 = m32.forward(x32);
  const d32 = convert(m32).forward(x32);
  expect(maxAbsDiff(t32, ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
  expect(maxAbsDiff(d32, ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
}


/**
 * An upper bound S on the magnitude of every term summed for each output: the same block in float64
 * on |x| with every weight, γ and β replaced by its absolute value and μ by −|μ| (so BN computes
 * (|z| + |μ|)·|γ|/√(σ²+ε) + |β|), no SE (its gate is in (0, 1)) and no activation (|act(z)| ≤ |z|).
 */
export function familyMagnitude(spec: FamilySpec, block: BranchBlock, x: Tensor): Tensor {
  const m = familyBlock({ ...spec, se: false, activation: 'none', dtype: 'float64' });
  const src = stateDict(block), abs = new Map<string, SafeEntry>();
  for (const key of stateDict(m).keys()) {
    const e = src.get(key)!;
    const data = e.dtype === 'I64' ? e.data : Float64Array.from(e.data as Float32Array, (v) => (key.endsWith('running_mean') ? -Math.abs(v) : Math.abs(v)));
    abs.set(key, { ...e, dtype: e.dtype === 'I64' ? 'I64' : 'F64', data } as SafeEntry);
  }
  loadStateDict(m, abs);
  // RepMixer's norm branch is subtracted (a LayerScale of sign −1): its magnitude adds
  for (const chain of m.branches) for (const st of chain) if (st instanceof LayerScale) Object.assign(st, { sign: 1 });
  return m.eval().forward(new Tensor(Float64Array.from(x.data, Math.abs), x.shape));
}

/** Rounded operations on the longest path to an output: every stage's terms (conv C/g·k², BN 3, pool k²), the branch sum, SE and activation. */
export function familyTerms(block: BranchBlock, x: Tensor): number {
  let n = block.branches.length + 8;
  for (const chain of block.branches) {
    for (const m of chain) n += m instanceof Conv2d ? m.weight.data.size / m.weight.data.shape[0] : 9 * 3;
  }
  if (block.se !== null) n += x.shape[2] * x.shape[3] + block.channels + 8; // the gate's pooled mean and 1×1 convs
  return n;
}

