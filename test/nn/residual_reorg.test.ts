// Residual Reorg (the paper's Table 6): a RepVGG configuration's 3×3 layers as a ResNet.
import { describe, expect, it } from 'vitest';
import { BasicBlock, ResidualReorg } from '../../src/nn/residual_reorg.js';
import type { RepVGGConfig } from '../../src/nn/config.js';
import { conv2d } from '../../src/ops/conv2d.js';
import { batchNorm2d } from '../../src/ops/batchnorm.js';
import { relu } from '../../src/ops/relu.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { ConvBN } from '../../src/nn/repvgg.js';
import { maxAbs, maxAbsDiff, moduleGradErrors } from '../helpers.js';
import { randomizeBN } from '../reparam/helpers.js';

const CFG: RepVGGConfig = { num_blocks: [2, 4, 2, 1], width_multiplier: [0.0625, 0.0625, 0.0625, 0.0625], num_classes: 4, in_channels: 1 };

describe('ResidualReorg', () => {
  it("pairs stages 1–3 into basic blocks: RepVGG-B0's 4, 6, 16 layers become 2, 3, 8 blocks, the 3×3 count unchanged", () => {
    const b0 = new ResidualReorg({ num_blocks: [4, 6, 16, 1], width_multiplier: [0.0625, 0.0625, 0.0625, 0.0625], num_classes: 10 });
    expect(b0.stages.map((s) => s.length)).toEqual([2, 3, 8]);
    expect(b0.tail.length).toBe(1);
    expect(b0.convLayers()).toBe(1 + 4 + 6 + 16 + 1);
    // a projection shortcut (1×1 conv stride 2 + BN) where a block changes channels or size, as ResNet-18/34
    expect(b0.stages.map((s) => s.map((b) => b.shortcut !== null))).toEqual([[true, false], [true, false, false], [true, ...new Array<boolean>(7).fill(false)]]);
    expect(b0.stages[0][0].shortcut!.conv.weight.data.shape.slice(2)).toEqual([1, 1]);
    expect(() => new ResidualReorg({ ...CFG, num_blocks: [2, 3, 2, 1] })).toThrow('ResidualReorg: stage 2 has 3 layers; stages 1–3 need an even number');
  });

  // The wiring, against the functional ops composed here: y = ReLU(BN₂(W₂ ⊛ ReLU(BN₁(W₁ ⊛ x))) + s(x)),
  // eval mode, float64; the same operations in the same order, so equal to the last bit is expected
  // and 1e-15·max|y| allowed.
  it('a basic block computes ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x)), with and without projection', () => {
    for (const [cin, stride] of [[3, 1], [2, 2]] as const) {
      const rng = new Rng(cin);
      const block = new BasicBlock(cin, 3, stride, 'float64', rng);
      randomizeBN(block, 7);
      block.eval();
      const x = uniform([2, cin, 6, 6], rng, -1, 1, 'float64');
      const cb = (m: ConvBN, h: Tensor, k: number) => batchNorm2d(conv2d(h, m.conv.weight.data, null, { stride: k === 3 ? 1 : stride, padding: k === 3 ? 1 : 0, algorithm: 'direct' }),
        { weight: m.bn.weight.data, bias: m.bn.bias.data, runningMean: m.bn.runningMean, runningVar: m.bn.runningVar }, { training: false }).y;
      const h1 = relu(batchNorm2d(conv2d(x, block.conv1.conv.weight.data, null, { stride, padding: 1, algorithm: 'direct' }),
        { weight: block.conv1.bn.weight.data, bias: block.conv1.bn.bias.data, runningMean: block.conv1.bn.runningMean, runningVar: block.conv1.bn.runningVar }, { training: false }).y);
      const main = cb(block.conv2, h1, 3);
      const short = block.shortcut === null ? x : cb(block.shortcut, x, 1);
      const want = main.clone();
      for (let i = 0; i < want.size; i++) want.data[i] = Math.max(0, main.data[i] + short.data[i]);
      for (const m of [block.conv1.conv, block.conv2.conv, ...(block.shortcut ? [block.shortcut.conv] : [])]) m.algorithm = 'direct';
      const y = block.forward(x);
      expect(block.shortcut === null).toBe(stride === 1 && cin === 3);
      expect(maxAbsDiff(y, want)).toBeLessThanOrEqual(1e-15 * maxAbs(want));
    }
  });

  // Finite differences through the whole network in float64 (h = 1e-6, relative 1e-6, as
  // test/ops/gradcheck.test.ts derives), training mode: every stage, projections and the tail.
  it('backward = finite differences (training mode, float64)', () => {
    const rng = new Rng(11);
    const net = new ResidualReorg(CFG, { dtype: 'float64', seed: 12 });
    const x = uniform([3, 1, 16, 16], rng, -1, 1, 'float64');
    const r = uniform([3, 4], rng, -1, 1, 'float64');
    const { errors } = moduleGradErrors(net, x, r, rng, 10, 3);
    expect(errors.some(([n]) => n === 'stage2.0.shortcut.conv.weight')).toBe(true);
    for (const [name, e] of errors) expect(e, name).toBeLessThanOrEqual(1e-6);
  });
});
