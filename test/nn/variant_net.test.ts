// Whole networks of the paper's Table 6 blocks (the ablation's fig7): the RepVGG layout with every
// block replaced, including the stride-2 first blocks that change the channel count.
import { describe, expect, it } from 'vitest';
import { VariantNet } from '../../src/nn/variant_net.js';
import { DiracConv2d, VARIANTS } from '../../src/nn/variants.js';
import { setConvAlgorithm } from '../../src/nn/conv_algorithm.js';
import { dbbBlock } from '../../src/nn/families.js';
import { IdentityConv1x1 } from '../../src/nn/dbb_layers.js';
import type { Module } from '../../src/nn/module.js';
import { planFromConfig, type RepVGGConfig } from '../../src/nn/config.js';
import { convert } from '../../src/reparam/repvgg.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { maxAbs, maxAbsDiff, moduleGradErrors } from '../helpers.js';
import { batchNorms, randomizeBN } from '../reparam/helpers.js';

const CFG: RepVGGConfig = { num_blocks: [2, 2, 2, 1], width_multiplier: [0.0625, 0.0625, 0.0625, 0.0625], num_classes: 5, in_channels: 2 };

describe('VariantNet', () => {
  it('has the RepVGG layout: the same blocks, channels and strides, in state-dict order', () => {
    const net = new VariantNet('ACB', CFG);
    const plan = planFromConfig(CFG).stages.flat();
    expect(net.children().map(([n]) => n)).toEqual(['stage0', 'stage1.0', 'stage1.1', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1', 'stage4.0', 'linear']);
    expect(net.blocks().map((b) => [b.inChannels, b.channels, b.stride])).toEqual(plan.map((b) => [b.inChannels, b.outChannels, b.stride]));
    expect(net.forward(uniform([3, 2, 20, 20], new Rng(1), -1, 1)).shape).toEqual([3, 5]);
  });

  // Every fusable design deploys to a plain RepVGG computing the same function. float64 with wide
  // BN statistics (σ² ≥ 1e-3, as test/reparam/helpers.ts checkModel keeps them for whole models):
  // the two differ only by summation order, so ≤ 1e-12·max|logit| as there.
  for (const name of VARIANTS.filter((v) => v !== '+ReLU in branch')) {
    it(`${name}: convert gives the same logits (float64, random BN statistics)`, () => {
      const net = new VariantNet(name, CFG, { dtype: 'float64', seed: 3 }).setAlgorithm('im2col');
      randomizeBN(net, 4);
      for (const bn of batchNorms(net)) for (let c = 0; c < bn.runningVar.size; c++) bn.runningVar.data[c] = Math.max(bn.runningVar.data[c], 1e-3);
      net.eval();
      const x = uniform([2, 2, 20, 20], new Rng(5), -1, 1, 'float64');
      const ref = net.forward(x);
      const deploy = convert(net).setAlgorithm('im2col');
      expect(deploy.deploy).toBe(true);
      expect(maxAbsDiff(deploy.forward(x), ref)).toBeLessThanOrEqual(1e-12 * maxAbs(ref));
    });
  }

  // Every layer that runs a conv takes the algorithm a network is set to, not only Conv2d: DiracNet's
  // DiracConv2d and DBB's IdentityConv1x1 run their own convs.
  it('setAlgorithm reaches every layer that runs a conv (DiracConv2d, IdentityConv1x1)', () => {
    const layers = (root: Module, keep: (m: Module) => boolean): Module[] => [...(keep(root) ? [root] : []), ...root.children().flatMap(([, c]) => layers(c, keep))];
    const net = new VariantNet('DiracNet', CFG).setAlgorithm('direct');
    const dirac = layers(net, (m) => m instanceof DiracConv2d) as DiracConv2d[];
    expect(dirac.length).toBe(8);
    expect(dirac.every((d) => d.algorithm === 'direct')).toBe(true);
    const dbb = dbbBlock(4, 4);
    setConvAlgorithm(dbb, 'im2col');
    const id = layers(dbb, (m) => m instanceof IdentityConv1x1) as IdentityConv1x1[];
    expect(id.length).toBe(1);
    expect(id[0].algorithm).toBe('im2col');
  });

  it('+ReLU in branch is refused, naming the block', () => {
    const net = new VariantNet('+ReLU in branch', CFG).eval();
    expect(() => convert(net)).toThrow("stage0.branch0.2: a ReLU inside a branch makes it nonlinear ('+ReLU in branch')");
  });

  // Finite differences in float64 through the whole network, stride-2 blocks included (h = 1e-6,
  // relative 1e-6: test/ops/gradcheck.test.ts derives it), training mode.
  for (const name of ['DiracNet', 'ACB', 'Post-addition BN'] as const) {
    it(`${name}: backward = finite differences (training mode, float64)`, () => {
      const rng = new Rng(8);
      const net = new VariantNet(name, CFG, { dtype: 'float64', seed: 9 });
      const x = uniform([3, 2, 12, 12], rng, -1, 1, 'float64');
      const r = uniform([3, 5], rng, -1, 1, 'float64');
      const { dx, errors } = moduleGradErrors(net, x, r, rng, 10, 4);
      expect(dx.shape).toEqual(x.shape);
      for (const [name, e] of errors) expect(e, name).toBeLessThanOrEqual(1e-6);
    });
  }
});
