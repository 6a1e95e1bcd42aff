// The deploy model computes the training-time model's eval function.
//
// Error model (float32, u = 2⁻²⁴). Per output, write each branch b as s_b·(W_b ⊛ x − μ_b) + β_b with
// s_b = γ_b/√(σ_b²+ε). The training-time path rounds a K-term conv (K = C/g·9), a BN scale and shift,
// and a 3-term sum: ≤ (K + 8) roundings; the deploy path rounds the fused kernel once and a K-term
// conv plus bias: ≤ (K + 3). Both are within γ_n·S of the exact value with
//   S = Σ_b ( |s_b|·Σ|W_b|·|x| + |s_b·μ_b| + |β_b| ),
// so |y_train − y_deploy| ≤ (2K + 12)·u·S. Whole models: each block's bound plus the propagation of
// its input error; we use the same form per logit with S from the last layers and a model-level
// factor (see below). float64: ≤ 1e-12 relative to S.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RepVGG, RepVGGBlock } from '../../src/nn/repvgg.js';
import { type BlockSpec, type RepVGGConfig } from '../../src/nn/config.js';
import { convert, fuseRepVGGBlock } from '../../src/reparam/repvgg.js';
import { fuseLinearBranches } from '../../src/reparam/fuse.js';
import { deployBlock as deployFamilyBlock } from '../../src/reparam/branches.js';
import { repvggSEBlock } from '../../src/nn/families.js';
import { conv2d } from '../../src/ops/conv2d.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { U32, absTensor, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';
import { checkModel, pinIm2col, randomizeBN, worstRatio } from './helpers.js';
import { loadStateDict, stateDict } from '../../src/io/state_dict.js';
import type { SafeEntry } from '../../src/io/safetensors.js';

function branchMagnitude(block: RepVGGBlock, x: Tensor): Tensor {
  // S = Σ_b conv(|x|, |s_b·W_b|) + |s_b·μ_b| + |β_b|, in float64
  const { stride, groups } = block.spec;
  const ax = absTensor(x);
  let S: Tensor | null = null;
  const add = (w: Tensor, pad: number, bn: { weight: { data: Tensor }; bias: { data: Tensor }; runningMean: Tensor; runningVar: Tensor; eps: number }) => {
    const F = bn.weight.data.size;
    const per = w.size / F;
    const aw = new Float64Array(w.size);
    const ab = new Float64Array(F);
    for (let f = 0; f < F; f++) {
      const s = Math.abs(bn.weight.data.data[f] / Math.sqrt(bn.runningVar.data[f] + bn.eps));
      for (let i = 0; i < per; i++) aw[f * per + i] = Math.abs(w.data[f * per + i]) * s;
      ab[f] = Math.abs(bn.runningMean.data[f]) * s + Math.abs(bn.bias.data.data[f]);
    }
    const y = conv2d(ax, new Tensor(aw, w.shape), new Tensor(ab, [F]), { stride, padding: pad, groups, algorithm: 'direct' });
    if (S === null) S = y;
    else for (let i = 0; i < S.size; i++) S.data[i] += y.data[i];
  };
  add(block.rbrDense!.conv.weight.data, 1, block.rbrDense!.bn);
  if (block.rbr1x1 !== null) add(block.rbr1x1.conv.weight.data, 0, block.rbr1x1.bn);
  if (block.rbrIdentity !== null) {
    const C = block.spec.inChannels, Cg = C / groups;
    const id = new Float64Array(C * Cg);
    for (let i = 0; i < C; i++) id[i * Cg + (i % Cg)] = 1;
    add(new Tensor(id, [C, Cg, 1, 1]), 0, block.rbrIdentity);
  }
  return S!;
}

function deployBlock(block: RepVGGBlock, dtype: 'float32' | 'float64'): RepVGGBlock {
  const d = new RepVGGBlock(block.spec, { deploy: true, dtype });
  const f = fuseRepVGGBlock(block);
  d.rbrReparam!.weight.data.data.set(f.kernel.data);
  d.rbrReparam!.bias!.data.data.set(f.bias.data);
  return d.eval();
}

const blockArb = fc.record({
  Cg: fc.integer({ min: 1, max: 6 }),
  groups: fc.constantFrom(1, 2, 4),
  same: fc.boolean(),
  Fg: fc.integer({ min: 1, max: 6 }),
  stride: fc.constantFrom(1, 2),
  N: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 9 }),
  W: fc.integer({ min: 1, max: 9 }),
  pointwise: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

// the block a drawn case describes: the identity branch wherever it can be (in = out, stride 1)
function blockSpec(g: typeof blockArb extends fc.Arbitrary<infer T> ? T : never): BlockSpec {
  const cin = g.Cg * g.groups;
  const cout = g.same ? cin : g.Fg * g.groups;
  return { inChannels: cin, outChannels: cout, stride: g.stride, groups: g.groups, identity: cin === cout && g.stride === 1, pointwise: g.pointwise };
}

describe('fused block = training-time block in eval mode', () => {
  it('property: channels, groups 1/2/4, stride 1/2, 1×1 and odd sizes, wide BN statistics (float32 and float64)', () => {
    fc.assert(fc.property(blockArb, (g) => {
      const spec = blockSpec(g), cin = spec.inChannels;
      for (const dtype of ['float32', 'float64'] as const) {
        const block = new RepVGGBlock(spec, { dtype, seed: g.seed });
        randomizeBN(block, g.seed + 1);
        pinIm2col(block).eval();
        const x = uniform([g.N, cin, g.H, g.W], new Rng(g.seed + 2), -1, 1, dtype);
        const yTrain = block.forward(x);
        const yDeploy = pinIm2col(deployBlock(block, dtype)).forward(x);
        const S = branchMagnitude(block, x);
        const K = g.Cg * 9;
        if (dtype === 'float32') {
          expect(worstRatio(yTrain, yDeploy, (i) => (2 * K + 12) * U32 * S.data[i] + 1e-30)).toBeLessThanOrEqual(1);
        } else {
          expect(maxAbsDiff(yTrain, yDeploy)).toBeLessThanOrEqual(1e-12 * maxAbs(S));
        }
      }
    }), { numRuns: 150 });
  });

  it('refuses a BatchNorm in training mode, naming it', () => {
    const block = new RepVGGBlock({ inChannels: 2, outChannels: 2, stride: 1, groups: 1, identity: true, pointwise: true });
    expect(() => fuseRepVGGBlock(block, 'stage1.0')).toThrow('stage1.0.rbr_dense.bn: a BatchNorm in training mode cannot be fused');
    const model = RepVGG.fromConfig({ num_blocks: [1, 1, 1, 1], width_multiplier: [0.0625, 0.0625, 0.0625, 0.0625], num_classes: 3 });
    expect(() => convert(model)).toThrow('call model.eval() first');
  });
});

describe('fused model = training-time model', () => {
  it('property: random small configurations with groups', () => {
    fc.assert(fc.property(
      fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 })),
      fc.constantFrom(0.0625, 0.125), fc.constantFrom(1, 2, 4), fc.integer({ min: 5, max: 23 }), fc.integer({ min: 0, max: 1 << 30 }),
      (nb, wm, g, size, seed) => {
        const groups: Record<string, number> = { 2: g, 4: g };
        checkModel({ num_blocks: nb, width_multiplier: [wm, wm, wm, wm], override_groups_map: groups, num_classes: 7, in_channels: 3 }, seed, size);
      }), { numRuns: 25 });
  });

  it('convert leaves its argument untouched and returns an eval-mode deploy model', () => {
    const model = RepVGG.fromConfig({ num_blocks: [1, 2, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], num_classes: 4 }, { seed: 5 }).eval();
    randomizeBN(model, 9);
    const before = [...stateDict(model)].map(([k, e]) => [k, Array.from(e.data as Float32Array)]);
    const deploy = convert(model);
    expect([...stateDict(model)].map(([k, e]) => [k, Array.from(e.data as Float32Array)])).toEqual(before);
    expect(deploy.deploy).toBe(true);
    // inference reuses two activation buffers: repeated calls give identical, independent logits
    const x = uniform([2, 3, 20, 20], new Rng(1), -1, 1);
    const y1 = deploy.forward(x), y2 = deploy.forward(x);
    expect(y1.data).not.toBe(y2.data);
    expect(Array.from(y2.data)).toEqual(Array.from(y1.data));
    const small = uniform([1, 3, 9, 9], new Rng(2), -1, 1);
    const ref = model.forward(small); // randomizeBN's tiny variances make logits large: compare relatively
    expect(maxAbsDiff(deploy.forward(small), ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
    expect(deploy.training).toBe(false);
    expect([...stateDict(deploy).keys()].slice(0, 3)).toEqual(['stage0.rbr_reparam.weight', 'stage0.rbr_reparam.bias', 'stage1.0.rbr_reparam.weight']);
  });
});

describe('golden deploy weights from PyTorch (model with groups 2 and 4)', () => {
  it('matches the public switch_to_deploy fusion', () => {
    const fx = loadTorchFixture('repvgg_small');
    const cfg = fx.meta.config as RepVGGConfig;
    for (const [dtype, s] of [['float32', ''], ['float64', '@f64']] as const) {
      const model = RepVGG.fromConfig(cfg, { dtype });
      const st = new Map<string, SafeEntry>();
      for (const key of stateDict(model).keys()) st.set(key, fx.raw('state.' + key));
      loadStateDict(model, st);
      const deploy = convert(model.eval());
      for (const [key, p] of deploy.namedParameters()) {
        if (key.startsWith('linear')) continue;
        const ref = fx.t(`deploy.${key}${s}`);
        // PyTorch fuses in the model's dtype: float32 products and 3-term sums, ≤ 4 roundings of
        // O(|ref|) values; float64 likewise at 2⁻⁵³.
        expect(maxAbsDiff(p.data, ref)).toBeLessThanOrEqual((dtype === 'float32' ? 4 * U32 : 1e-15) * 4 * Math.max(1, maxAbs(ref)));
      }
      const y = deploy.forward(fx.t('input').to(dtype));
      const ref = fx.t('eval.output' + s);
      expect(maxAbsDiff(y, ref)).toBeLessThanOrEqual((dtype === 'float32' ? 1e-4 : 1e-10) * maxAbs(ref));
    }
  });
});

// fuseRepVGGBlock is the readable five-step example (the page and `explain` walk it); convert uses
// the one fuser (src/reparam/fuse.ts). Both do the same float64 operations in the same order:
// fold each BN, centre the 1×1, the identity as a kernel, sum dense + 1×1 + identity.
describe('the worked example and the one fuser', () => {
  it('property: fuseRepVGGBlock gives the bits of fuseLinearBranches on the same block', () => {
    fc.assert(fc.property(blockArb, (g) => {
      const spec = blockSpec(g);
      const block = new RepVGGBlock(spec, { dtype: 'float32', seed: g.seed });
      randomizeBN(block, g.seed + 1);
      block.eval();
      const a = fuseRepVGGBlock(block), b = fuseLinearBranches(block.linearBranches());
      expect(Array.from(a.kernel.data)).toEqual(Array.from(b.kernel.data));
      expect(Array.from(a.bias.data)).toEqual(Array.from(b.bias.data));
    }), { numRuns: 60 });
  });
});

// RepVGG-D2se's deploy block keeps its SE between the fused conv and the ReLU: a deploy RepVGGBlock
// with SE must run conv + bias → SE → ReLU (not the plain block's conv-with-ReLU epilogue), the
// operations of the families' FusedBlock, so the same bits.
describe('a deploy RepVGG block with SE', () => {
  it('runs conv → SE → ReLU: the bits of the fused family block', () => {
    const train = repvggSEBlock(16, 16, { seed: 3 });
    randomizeBN(train, 4);
    const fused = deployFamilyBlock(train.eval(), 'rbr_reparam');
    const block = new RepVGGBlock(train.spec, { deploy: true, se: true, init: false });
    loadStateDict(block, stateDict(fused));
    block.eval();
    const x = uniform([2, 16, 6, 6], new Rng(5), -1, 1);
    expect(Array.from(block.forward(x).data)).toEqual(Array.from(fused.forward(x).data));
  });
});
