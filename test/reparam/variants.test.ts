// The paper's other re-parameterizations: each fuses to one 3×3 conv computing the block's eval
// function (bound as in repvgg.test.ts, with S the block run on |x| with |parameters|, i.e. the
// magnitude of every term the float computation rounds), and each has a correct backward.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VARIANTS, type VariantName, variantBlock } from '../../src/nn/variants.js';
import type { BranchBlock } from '../../src/nn/branch_block.js';
import { BatchNorm2d } from '../../src/nn/layers.js';
import { fuseBranchBlock } from '../../src/reparam/branches.js';
import { conv2d } from '../../src/ops/conv2d.js';
import { relu } from '../../src/ops/relu.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { U32, absTensor, maxAbs, maxAbsDiff, moduleGradErrors } from '../helpers.js';
import { batchNorms, pinIm2col, randomizeBN, worstRatio } from './helpers.js';

const FUSABLE = VARIANTS.filter((v) => v !== '+ReLU in branch');
const GROUPED = new Set<VariantName>(['RepVGG', 'Identity w/o BN', 'Post-addition BN', 'ACB']);

/** S: the block evaluated on |x| with |W|, |a|, |b|, |γ|, |β| and μ → −|μ| (BN then adds |μ·s|). */
function magnitude(block: BranchBlock, name: VariantName, groups: number, x: Tensor): Tensor {
  const abs = variantBlock(name, block.channels, { dtype: 'float64', groups, inChannels: block.inChannels, stride: block.stride });
  const src = new Map(block.namedParameters());
  for (const [k, p] of abs.namedParameters()) for (let i = 0; i < p.data.size; i++) p.data.data[i] = Math.abs(src.get(k)!.data.data[i]);
  const srcBN = batchNorms(block);
  batchNorms(abs).forEach((bn: BatchNorm2d, i) => {
    for (let c = 0; c < bn.runningMean.size; c++) {
      bn.runningMean.data[c] = -Math.abs(srcBN[i].runningMean.data[c]);
      bn.runningVar.data[c] = srcBN[i].runningVar.data[c];
    }
  });
  return abs.eval().forward(absTensor(x));
}

describe('each variant fuses to one 3×3 conv', () => {
  for (const name of FUSABLE) {
    it(`${name}: property over channels, groups, batch, odd and 1×1 sizes, wide BN statistics, and a stage's first block (stride 2, more channels)`, () => {
      fc.assert(fc.property(
        fc.integer({ min: 1, max: 4 }), fc.constantFrom(1, 2), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 1 << 30 }), fc.boolean(),
        (cg, g, N, H, W, seed, down) => {
          const groups = GROUPED.has(name) ? g : 1;
          const C = cg * groups, Cin = down ? (cg + 1) * groups : C, stride = down ? 2 : 1;
          for (const dtype of ['float32', 'float64'] as const) {
            const block = variantBlock(name, C, { dtype, seed, groups, inChannels: Cin, stride });
            randomizeBN(block, seed + 1);
            pinIm2col(block).eval();
            const x = uniform([N, Cin, H, W], new Rng(seed + 2), -1, 1, dtype);
            const y = block.forward(x);
            const f = fuseBranchBlock(block);
            const yf = relu(conv2d(x, f.kernel.to(dtype), f.bias.to(dtype), { padding: 1, stride, groups, algorithm: 'im2col' }));
            const S = magnitude(block, name, groups, x);
            const K = (Cin / groups) * 9;
            if (dtype === 'float32') expect(worstRatio(y, yf, (i) => (2 * K + 16) * U32 * S.data[i] + 1e-30)).toBeLessThanOrEqual(1);
            else expect(maxAbsDiff(y, yf)).toBeLessThanOrEqual(1e-12 * maxAbs(S));
          }
        }), { numRuns: 40 });
    });
  }

  it('+ReLU in branch is refused: the branch is nonlinear', () => {
    const block = variantBlock('+ReLU in branch', 2).eval();
    expect(() => fuseBranchBlock(block)).toThrow("branch0.2: a ReLU inside a branch makes it nonlinear ('+ReLU in branch')");
  });
  it('a BN in training mode is refused', () => {
    expect(() => fuseBranchBlock(variantBlock('ACB', 2))).toThrow('branch0.1: a BatchNorm in training mode cannot be fused');
  });
  it('DiracNet: Ŵ = diag(a)·I + diag(b)·W_norm has unit-norm filters plus a at the centre', () => {
    const block = variantBlock('DiracNet', 3, { dtype: 'float64', seed: 4 });
    const dirac = block.branches[0][0] as import('../../src/nn/variants.js').DiracConv2d;
    dirac.a!.data.data.set([2, 3, 4]);
    dirac.b!.data.data.set([0.5, 1, 1]);
    const k = dirac.effectiveKernel();
    let ss = 0;
    for (let i = 0; i < 27; i++) ss += (k.data[i] - (i === 4 ? 2 : 0)) ** 2;
    expect(Math.sqrt(ss)).toBeCloseTo(0.5, 14);
    expect(k.data[27 + 9 + 4] - dirac.weight.data.data[27 + 9 + 4] / Math.hypot(...dirac.weight.data.data.subarray(27, 54))).toBeCloseTo(3, 14);
  });
  it("DiracNet on a stage's first block (stride 2, same or more channels): no identity to add, Ŵ = diag(b)·W_norm", () => {
    for (const cin of [2, 3]) {
      const block = variantBlock('DiracNet', 3, { dtype: 'float64', seed: 4, inChannels: cin, stride: 2 });
      const dirac = block.branches[0][0] as import('../../src/nn/variants.js').DiracConv2d;
      expect(dirac.a).toBeNull();
      expect(dirac.namedParameters().map(([n]) => n)).toEqual(['weight', 'b']);
      dirac.b!.data.data.set([0.5, 2, 1]);
      const k = dirac.effectiveKernel();
      const per = cin * 9;
      for (let f = 0; f < 3; f++) expect(Math.hypot(...k.data.subarray(f * per, (f + 1) * per))).toBeCloseTo([0.5, 2, 1][f], 14);
    }
  });
});

// Finite differences in float64, as test/ops/gradcheck.test.ts (h = 1e-6, relative 1e-6).
describe('variant backward = finite differences (training mode, float64)', () => {
  for (const [name, down] of VARIANTS.flatMap((v) => [[v, false], [v, true]] as const)) {
    it(`${name}${down ? ', a stage\'s first block (2 → 3 channels, stride 2)' : ''}`, () => {
      const rng = new Rng(7);
      const block = variantBlock(name, 3, { dtype: 'float64', seed: 3, ...(down ? { inChannels: 2, stride: 2 } : {}) });
      const x = uniform([2, down ? 2 : 3, 4, 5], rng, -1, 1, 'float64');
      const r = uniform(down ? [2, 3, 2, 3] : [2, 3, 4, 5], rng, -1, 1, 'float64');
      for (const [name, e] of moduleGradErrors(block, x, r, rng, 10, 10).errors) expect(e, name).toBeLessThanOrEqual(1e-6);
    });
  }
});
