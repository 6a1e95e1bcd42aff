// Every default the upstream code fixes, through our constructor called WITHOUT that option, against
// the upstream value (quoted from the upstream source named in each row). The other tests pass eps,
// momentum, activation and the rest explicitly, so a changed default would pass them all; these are
// the tests that see it. Values are exact (they are constants), so the comparisons are exact.
import { describe, expect, it } from 'vitest';
import { AvgPool2d, BatchNorm2d, Conv2d, Linear } from '../../src/nn/layers.js';
import type { BranchBlock } from '../../src/nn/branch_block.js';
import { acbBlock, dbbBlock, largeKernelBlock, mobileOneBlock, qaRepVGGBlock, repCPEBlock, repConv, repMixerBlock, repvggSEBlock } from '../../src/nn/families.js';
import { LayerScale } from '../../src/nn/layer_scale.js';
import { RepVGGBlock } from '../../src/nn/repvgg.js';
import { planFromConfig } from '../../src/nn/config.js';
import { mobileOnePlan } from '../../src/nn/mobileone.js';
import { SqueezeExcite } from '../../src/nn/squeeze_excite.js';
import { BNAndPad } from '../../src/nn/dbb_layers.js';

/** every BatchNorm2d in a module tree, by state-dict prefix */
function batchNorms(m: { children(): [string, unknown][] }, prefix = ''): [string, BatchNorm2d][] {
  const out: [string, BatchNorm2d][] = [];
  for (const [n, c] of m.children()) {
    if (c instanceof BatchNorm2d) out.push([prefix + n, c]);
    else out.push(...batchNorms(c as { children(): [string, unknown][] }, `${prefix}${n}.`));
  }
  return out;
}
const keys = (b: BranchBlock) => b.namedParameters().map(([k]) => k);
const bnSettings = (b: BranchBlock) => new Set(batchNorms(b).map(([, bn]) => `${bn.eps}/${bn.momentum}`));
const values = (t: { data: ArrayLike<number> }) => Array.from(t.data);

describe('PyTorch layers (torch/nn/modules/batchnorm.py, conv.py, linear.py, pooling.py)', () => {
  it('BatchNorm2d(num_features, eps=1e-05, momentum=0.1, affine=True): weight 1, bias 0, running mean 0, var 1, num_batches_tracked 0', () => {
    const bn = new BatchNorm2d(3);
    expect([bn.eps, bn.momentum]).toEqual([1e-5, 0.1]);
    expect([values(bn.weight.data), values(bn.bias.data)]).toEqual([[1, 1, 1], [0, 0, 0]]);
    const buf = new Map(bn.namedBuffers());
    expect(buf.get('running_mean')!.kind === 'tensor' && values(buf.get('running_mean')!.value as { data: ArrayLike<number> })).toEqual([0, 0, 0]);
    expect(buf.get('running_var')!.kind === 'tensor' && values(buf.get('running_var')!.value as { data: ArrayLike<number> })).toEqual([1, 1, 1]);
    expect(buf.get('num_batches_tracked')!.value).toBe(0);
  });

  it('Conv2d(in, out, k, stride=1, padding=0, dilation=1, groups=1, bias=True); weight and bias in U(−1/√fan_in, 1/√fan_in)', () => {
    const c = new Conv2d(4, 6, 3);
    expect([c.stride, c.padding, c.dilation, c.groups, c.bias !== null]).toEqual([1, 0, 1, 1, true]);
    const bound = 1 / Math.sqrt(4 * 3 * 3); // kaiming_uniform_(a=√5): gain √(2/(1+5)) · √(3/fan_in) = 1/√fan_in
    const w = values(c.weight.data), b = values(c.bias!.data);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.9 * bound); // 216 draws: the largest |w| is within 1% of the bound w.p. 1 − 0.99²¹⁶ ≈ 0.89, within 10% surely
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
  });

  it('Linear(in, out, bias=True) in U(−1/√in, 1/√in); AvgPool2d(k, stride=None → k, padding=0)', () => {
    const l = new Linear(25, 40);
    expect(Math.max(...values(l.weight.data).map(Math.abs))).toBeLessThanOrEqual(1 / 5);
    expect(Math.max(...values(l.weight.data).map(Math.abs))).toBeGreaterThan(0.19);
    expect(new AvgPool2d(3).options).toEqual({ kernel: 3, stride: 3, padding: 0 });
  });
});

describe('the families\' constructors, each option left out', () => {
  it('RepVGG (DingXiaoH/RepVGG repvgg.py): identity BN iff in = out and stride 1, the 1×1 padded 0, BN eps 1e-5 / momentum 0.1, ReLU, no SE', () => {
    const plan = planFromConfig({ num_blocks: [1, 1, 1, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25] });
    expect([plan.inChannels, plan.numClasses]).toEqual([3, 1000]); // RepVGG(num_classes=1000); 3-channel input
    const first = plan.stages[1][0], stem = plan.stages[0][0];
    expect([stem.stride, stem.identity, first.stride, first.identity, first.pointwise, first.groups]).toEqual([2, false, 2, false, true, 1]);
    const b = new RepVGGBlock({ inChannels: 8, outChannels: 8, stride: 1, groups: 1, identity: true, pointwise: true });
    expect([b.rbrDense!.conv.padding, b.rbr1x1!.conv.padding, b.rbrDense!.conv.bias, b.rbr1x1!.conv.bias]).toEqual([1, 0, null, null]);
    expect(new Set(batchNorms(b).map(([, bn]) => `${bn.eps}/${bn.momentum}`))).toEqual(new Set(['0.00001/0.1']));
    const se = repvggSEBlock(8, 8);
    expect([se.activation, se.padding]).toEqual(['relu', 1]);
    expect(keys(se)).toContain('rbr_identity.weight');
    expect(keys(repvggSEBlock(8, 16))).not.toContain('rbr_identity.weight');
    expect(keys(repvggSEBlock(8, 8, { stride: 2 }))).not.toContain('rbr_identity.weight');
    expect(bnSettings(se)).toEqual(new Set(['0.00001/0.1']));
    // RepVGGBlock(use_se=True): SEBlock(out_channels, internal_neurons=out_channels // 16)
    expect(se.se!.down.weight.data.shape).toEqual([1, 8, 1, 1]);
    expect(repvggSEBlock(64, 64).se!.down.weight.data.shape).toEqual([4, 64, 1, 1]);
    expect(repvggSEBlock(72, 72).se!.down.weight.data.shape[0]).toBe(4); // 72 // 16 = 4, not 4.5 rounded
    expect(repvggSEBlock(8, 8, { se: false }).se).toBeNull();
    // state-dict order as repvgg.py's RepVGGBlock registers its modules: nonlinearity, se, then
    // rbr_identity, rbr_dense, rbr_1x1 (SEBlock: down, up)
    expect(keys(se)).toEqual(['se.down.weight', 'se.down.bias', 'se.up.weight', 'se.up.bias', 'rbr_identity.weight', 'rbr_identity.bias',
      'rbr_dense.conv.weight', 'rbr_dense.bn.weight', 'rbr_dense.bn.bias', 'rbr_1x1.conv.weight', 'rbr_1x1.bn.weight', 'rbr_1x1.bn.bias']);
  });

  it('MobileOne (apple/ml-mobileone mobileone.py): num_conv_branches=1, use_se=False, ReLU, rbr_skip iff in = out and stride 1, rbr_scale iff k > 1, SE int(c·0.0625); timm\'s SE make_divisible(c/16, 8)', () => {
    const b = mobileOneBlock(16, 16);
    expect(keys(b).filter((k) => k.startsWith('rbr_conv.'))).toEqual(['rbr_conv.0.conv.weight', 'rbr_conv.0.bn.weight', 'rbr_conv.0.bn.bias']);
    expect([b.se, b.activation, b.kernelSize, b.stride, b.groups]).toEqual([null, 'relu', 3, 1, 1]);
    expect(keys(b)).toEqual(expect.arrayContaining(['rbr_skip.weight', 'rbr_scale.conv.weight']));
    expect(keys(mobileOneBlock(16, 16, { stride: 2 }))).not.toContain('rbr_skip.weight');
    expect(keys(mobileOneBlock(16, 16, { kernelSize: 1 }))).not.toContain('rbr_scale.conv.weight');
    expect(bnSettings(b)).toEqual(new Set(['0.00001/0.1']));
    expect(mobileOneBlock(64, 64, { se: true }).se!.down.weight.data.shape[0]).toBe(4); // int(64 · 0.0625)
    expect(mobileOneBlock(200, 200, { se: true }).se!.down.weight.data.shape[0]).toBe(12); // int(12.5)
    expect(mobileOneBlock(200, 200, { se: true, names: 'timm' }).se!.down.weight.data.shape[0]).toBe(16); // make_divisible(12.5, 8): max(8, int(12.5 + 4) // 8 · 8) = 16
    expect(mobileOneBlock(64, 64, { se: true, names: 'timm' }).se!.down.weight.data.shape[0]).toBe(8);
    expect(mobileOneBlock(160, 160, { se: true, names: 'timm' }).se!.down.weight.data.shape[0]).toBe(8); // int(10 + 4) // 8 · 8 (SEModule's round_limit 0: no step back up)
    expect(keys(mobileOneBlock(64, 64, { se: true, names: 'timm' }))).toContain('attn.fc1.weight');
    // MobileOne(num_blocks_per_stage=[2, 8, 10, 1], num_classes=1000, use_se=False, num_conv_branches=1)
    const plan = mobileOnePlan({ width_multipliers: [1, 1, 1, 1] });
    expect([plan.names, plan.inChannels, plan.numClasses, plan.blocks.length]).toEqual(['official', 3, 1000, 1 + 2 * (2 + 8 + 10 + 1)]);
    expect(plan.blocks.every((s) => s.branches === 1 && !s.se)).toBe(true);
  });

  it('RepConv: YOLOv7 (SiLU, rbr_identity iff c1 = c2 and s = 1), Ultralytics (SiLU, bn=False: no identity), YOLOv6 RepVGGBlock (ReLU); BN eps 1e-3 / momentum 0.03 (each initialize_weights)', () => {
    const v7 = repConv(8, 8);
    expect([v7.activation, v7.padding]).toEqual(['silu', 1]);
    expect(keys(v7)).toContain('rbr_identity.weight');
    expect(keys(repConv(8, 8, { stride: 2 }))).not.toContain('rbr_identity.weight');
    expect(bnSettings(v7)).toEqual(new Set(['0.001/0.03']));
    const ul = repConv(8, 8, { names: 'ultralytics' });
    expect(ul.activation).toBe('silu');
    expect(keys(ul).some((k) => k.startsWith('bn.'))).toBe(false);
    expect(keys(repConv(8, 8, { names: 'ultralytics', identity: true }))).toContain('bn.weight');
    const v6 = repConv(8, 8, { names: 'yolov6' });
    expect(v6.activation).toBe('relu');
    expect(keys(v6)).toContain('rbr_identity.weight');
    expect(bnSettings(v6)).toEqual(new Set(['0.001/0.03']));
  });

  it('QARepVGG (YOLOv6 QARepVGGBlock): the identity without BN iff in = out and stride 1, rbr_1x1 a bare conv, a BN after the sum, ReLU; BN eps 1e-3 / momentum 0.03', () => {
    const b = qaRepVGGBlock(8, 8);
    expect(b.activation).toBe('relu');
    expect(b.branches.length).toBe(3);
    expect(b.branches[2]).toEqual([]);
    expect(qaRepVGGBlock(8, 8, { stride: 2 }).branches.length).toBe(2);
    expect(keys(b)).toEqual(['rbr_dense.conv.weight', 'rbr_dense.bn.weight', 'rbr_dense.bn.bias', 'rbr_1x1.weight', 'bn.weight', 'bn.bias']);
    expect(bnSettings(b)).toEqual(new Set(['0.001/0.03']));
  });

  it('DBB (DingXiaoH/DiverseBranchBlock): nonlinear=None, internal_channels_1x1_3x3 = in (2·in depthwise), dbb_1x1 iff groups < out, BNAndPad eps 1e-5 / momentum 0.1', () => {
    const b = dbbBlock(8, 8);
    expect(b.activation).toBe('none');
    expect(keys(b)).toContain('dbb_1x1.conv.weight');
    expect(keys(b)).toContain('dbb_1x1_kxk.idconv1.weight'); // internal = in: the identity-initialised 1×1
    expect(bnSettings(b)).toEqual(new Set(['0.00001/0.1']));
    const dw = dbbBlock(8, 8, { groups: 8 });
    expect(keys(dw)).not.toContain('dbb_1x1.conv.weight');
    expect(new Map(dw.namedParameters()).get('dbb_1x1_kxk.conv1.weight')!.data.shape).toEqual([16, 1, 1, 1]);
    const pad = new BNAndPad(4, 1);
    expect([pad.bn.eps, pad.bn.momentum]).toEqual([1e-5, 0.1]);
    expect(bnSettings(dbbBlock(8, 8, { momentum: 0.03 }))).toEqual(new Set(['0.00001/0.03'])); // a momentum given reaches every BN, BNAndPad's too
  });

  it('ACB (DingXiaoH/ACNet ACBlock): no activation, BN eps 1e-5 / momentum 0.1, square k×k, ver k×1 padded (k/2, 0), hor 1×k padded (0, k/2)', () => {
    const b = acbBlock(8, 8);
    expect(b.activation).toBe('none');
    expect(bnSettings(b)).toEqual(new Set(['0.00001/0.1']));
    const convs = new Map(b.branches.map((c) => [(c[0] as Conv2d).weight.data.shape.slice(2).join('x'), (c[0] as Conv2d).padding]));
    expect(convs).toEqual(new Map([['3x3', [1, 1]], ['3x1', [1, 0]], ['1x3', [0, 1]]]));
  });

  it('large kernel (apple/ml-fastvit ReparamLargeKernelConv as PatchEmbed builds it; DingXiaoH/RepLKNet): kernel 7, small_kernel 3 on the same centre, apple/RepLKNet names, no activation, BN eps 1e-5 / momentum 0.1', () => {
    const b = largeKernelBlock(8, 8);
    expect(b.activation).toBe('none');
    expect(bnSettings(b)).toEqual(new Set(['0.00001/0.1']));
    expect(keys(b)).toEqual(['lkb_origin.conv.weight', 'lkb_origin.bn.weight', 'lkb_origin.bn.bias', 'small_conv.conv.weight', 'small_conv.bn.weight', 'small_conv.bn.bias']);
    expect(b.branches.map((c) => [(c[0] as Conv2d).weight.data.shape[2], (c[0] as Conv2d).padding])).toEqual([[7, 3], [3, 1]]);
  });

  it('RepMixer (apple/ml-fastvit and timm fastvit.py): kernel_size 3, depthwise, layer_scale_init_value 1e-5, the mixer\'s num_conv_branches 1 with its scale branch, norm the BN of x alone, no activation; apple\'s names', () => {
    const b = repMixerBlock(8);
    expect([b.activation, b.kernelSize, b.groups]).toEqual(['none', 3, 8]);
    expect(bnSettings(b)).toEqual(new Set(['0.00001/0.1']));
    expect(keys(b)).toEqual(['layer_scale', 'mixer.rbr_scale.conv.weight', 'mixer.rbr_scale.bn.weight', 'mixer.rbr_scale.bn.bias', 'mixer.rbr_skip.weight', 'mixer.rbr_skip.bias',
      'mixer.rbr_conv.0.conv.weight', 'mixer.rbr_conv.0.bn.weight', 'mixer.rbr_conv.0.bn.bias', 'norm.rbr_skip.weight', 'norm.rbr_skip.bias']);
    expect(values(b.namedParameters()[0][1].data)).toEqual(new Array(8).fill(Math.fround(1e-5))); // (dim, 1, 1) of 1e-5 in float32
    expect(b.branches.map((c) => c.filter((m) => m instanceof LayerScale).map((m) => (m as LayerScale).sign))).toEqual([[], [1], [1], [1], [-1]]);
  });

  it('RepCPE (apple/ml-fastvit RepCPE, timm RepConditionalPosEnc): spatial_shape (7, 7), padding 3, depthwise, bias, no activation; apple\'s pe', () => {
    const b = repCPEBlock(8);
    expect([b.activation, b.kernelSize, b.groups]).toEqual(['none', 7, 8]);
    expect(keys(b)).toEqual(['pe.weight', 'pe.bias']);
    expect(b.branches.map((c) => c.length)).toEqual([0, 1]);
    expect((b.branches[1][0] as Conv2d).padding).toBe(3);
  });

  it('SqueezeExcite: both 1×1 convs with bias (nn.Conv2d\'s default), named down/up as RepVGG\'s SEBlock', () => {
    const se = new SqueezeExcite(16, 4);
    expect([se.down.bias !== null, se.up.bias !== null, se.names]).toEqual([true, true, ['down', 'up']]);
  });
});
