// The re-parameterizable blocks people ship, each built as a BranchBlock with its public
// implementation's state-dict names, so their checkpoints load as they are:
//   MobileOne (apple/ml-mobileone; timm)   act(SE(Σ_k BN(conv_k×k) + BN(conv_1×1) + BN(x)))
//   RepConv (YOLOv6, YOLOv7, Ultralytics)  act(BN(conv_k×k) + BN(conv_1×1) [+ BN(x)]), act SiLU or ReLU
//   QARepVGG (YOLOv6)                      act(BN(BN(conv_3×3) + conv_1×1 + x))
//   DBB (DingXiaoH/DiverseBranchBlock)     act(BN(conv_k×k) + BN(conv_1×1) + BN(avg(BNpad(conv_1×1)))
//                                              + BN(conv_k×k(BNpad(conv_1×1))))
//   RepVGG with SE (RepVGG-D2se)           ReLU(SE(BN(conv_3×3) + BN(conv_1×1) + BN(x)))
//   ACB (DingXiaoH/ACNet)                  BN(conv_k×k) + BN(conv_k×1) + BN(conv_1×k)
//   large kernel (RepLKNet; FastViT)       BN(conv_k×k) + BN(conv_s×s), s < k
//   RepMixer (FastViT)                     x + γ·(mixer(x) − norm(x)), mixer a linear MobileOne block and
//                                              norm a BN, both depthwise: branches x, γ·mixer_i(x), −γ·BN(x)
//   RepCPE (FastViT)                       x + conv_k×k(x) + b, depthwise
// Each fuses through the one fuser into act(SE(conv_k×k(x) + b)) (src/reparam/fuse.ts; the deploy block: src/reparam/branches.ts deployBlock).

import type { DType } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import type { Module } from './module.js';
import { AvgPool2d, BatchNorm2d, Conv2d } from './layers.js';
import { type Activation, BranchBlock } from './branch_block.js';
import { BNAndPad, IdentityConv1x1 } from './dbb_layers.js';
import { SqueezeExcite } from './squeeze_excite.js';
import { RepVGGBlock } from './repvgg.js';
import { LayerScale } from './layer_scale.js';
import { Parameter } from './module.js';
import { full } from '../tensor/tensor.js';

export interface FamilyOptions {
  kernelSize?: number;
  stride?: number;
  groups?: number;
  activation?: Activation;
  /** BatchNorm eps (PyTorch's default 1e-5; YOLOv6/v7 and Ultralytics train with 1e-3) */
  eps?: number;
  /** BatchNorm momentum of the running statistics (PyTorch's default 0.1; YOLOv6's initialize_weights sets 0.03) */
  momentum?: number;
  dtype?: DType;
  seed?: number;
  rng?: Rng;
}

/** The families, their naming schemes and the key of the fused conv in each. */
export const FAMILIES = {
  mobileone: { names: ['official', 'timm'], deployKey: 'reparam_conv' },
  repconv: { names: ['yolov7', 'ultralytics', 'yolov6'], deployKey: { yolov7: 'rbr_reparam', ultralytics: 'conv', yolov6: 'rbr_reparam' } },
  qarepvgg: { names: ['yolov6'], deployKey: 'rbr_reparam' },
  dbb: { names: ['official'], deployKey: 'dbb_reparam' },
  repvgg: { names: ['official'], deployKey: 'rbr_reparam' },
  acb: { names: ['official'], deployKey: 'fused_conv' },
  replk: { names: ['official', 'timm'], deployKey: { official: 'lkb_reparam', timm: 'reparam_conv' } },
  repmixer: { names: ['official', 'timm'], deployKey: 'reparam_conv' },
  repcpe: { names: ['official', 'timm'], deployKey: 'reparam_conv' },
} as const;

interface Parts {
  cin: number;
  cout: number;
  k: number;
  s: number;
  g: number;
  dtype: DType;
  rng: Rng;
  /** conv without bias; padding (k − 1)/2 unless given */
  conv(cin: number, cout: number, k: number, padding?: number, stride?: number): Conv2d;
  bn(channels: number): BatchNorm2d;
  /** in = out and stride 1: an identity term exists */
  identity: boolean;
}

function positiveInteger(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
  return v;
}

function parts(cin: number, cout: number, o: FamilyOptions): Parts {
  const k = positiveInteger(o.kernelSize ?? 3, 'kernelSize'), s = positiveInteger(o.stride ?? 1, 'stride'), g = positiveInteger(o.groups ?? 1, 'groups');
  positiveInteger(cin, 'in channels');
  positiveInteger(cout, 'out channels');
  if (o.eps !== undefined && !(o.eps > 0 && Number.isFinite(o.eps))) throw new Error(`eps must be a positive number, got ${o.eps}`);
  if (o.momentum !== undefined && !(o.momentum >= 0 && o.momentum <= 1)) throw new Error(`momentum must be in [0, 1], got ${o.momentum}`);
  if (k % 2 !== 1) throw new Error(`kernelSize ${k}: the families here use odd kernels (centred padding)`);
  if (cin % g !== 0 || cout % g !== 0) throw new Error(`channels ${cin}→${cout} are not divisible by groups ${g}`);
  const dtype = o.dtype ?? 'float32', rng = o.rng ?? new Rng(o.seed ?? 0);
  return {
    cin, cout, k, s, g, dtype, rng, identity: cin === cout && s === 1,
    conv: (ci, co, kk, padding = (kk - 1) / 2, stride = s) => new Conv2d(ci, co, kk, { padding, stride, groups: g, bias: false, dtype, rng }),
    bn: (c) => new BatchNorm2d(c, { dtype, eps: o.eps, momentum: o.momentum }),
  };
}

// branches as [name, stage] chains → BranchBlock
function block(variant: string, p: Parts, chains: [string, Module][][], o: { post?: [string, BatchNorm2d]; se?: SqueezeExcite | null; seName?: string; activation: Activation; shared?: [string, Parameter][] }): BranchBlock {
  return new BranchBlock(variant, p.cout, chains.map((c) => c.map(([, m]) => m)), o.post?.[1] ?? null, {
    inChannels: p.cin, stride: p.s, groups: p.g, kernelSize: p.k, padding: (p.k - 1) / 2,
    names: chains.map((c) => c.map(([n]) => n)), postName: o.post?.[0], se: o.se ?? null, seName: o.seName, activation: o.activation, shared: o.shared,
  });
}

/**
 * MobileOne block (Vasu et al., 2023): `branches` k×k conv+BN branches (the paper's k), a 1×1 conv+BN
 * "scale" branch when k > 1, a BN "skip" when in = out and stride 1. Depthwise: groups = channels;
 * pointwise: kernelSize 1 (no scale branch). Names: 'official' (rbr_skip, rbr_conv.i, rbr_scale, SE `se.reduce/
 * expand` ⌊out/16⌋ wide, at least 1: the official int(out·0.0625) is 0, and fails, below 16 channels;
 * apple's ml-mobileone and ml-fastvit) or 'timm' (identity, conv_kxk.i, conv_scale, SE `attn.fc1/fc2`
 * make_divisible(out/16, 8) wide; timm's MobileOne, FastViT and MobileCLIP).
 */
export function mobileOneBlock(cin: number, cout: number, o: FamilyOptions & { branches?: number; se?: boolean; names?: 'official' | 'timm' } = {}): BranchBlock {
  const p = parts(cin, cout, o);
  const timm = (o.names ?? 'official') === 'timm';
  const [skip, convs, scale] = timm ? ['identity', 'conv_kxk', 'conv_scale'] : ['rbr_skip', 'rbr_conv', 'rbr_scale'];
  const chains: [string, Module][][] = [];
  if (p.k > 1) chains.push([[`${scale}.conv`, p.conv(cin, cout, 1, 0)], [`${scale}.bn`, p.bn(cout)]]);
  if (p.identity) chains.push([[skip, p.bn(cout)]]);
  const k = o.branches ?? 1;
  if (!Number.isSafeInteger(k) || k < 0) throw new Error(`mobileone: branches (the paper's k) must be an integer ≥ 0, got ${k}`);
  for (let i = 0; i < k; i++) chains.push([[`${convs}.${i}.conv`, p.conv(cin, cout, p.k)], [`${convs}.${i}.bn`, p.bn(cout)]]);
  const se = o.se === true ? mobileOneSE(cout, timm ? 'timm' : 'official', p.dtype, p.rng) : null;
  return block('MobileOne', p, chains, { se, seName: timm ? 'attn' : 'se', activation: o.activation ?? 'relu' });
}

/** MobileOne's SE width on `channels`: apple's ⌊c/16⌋ (at least 1); timm's SEModule make_divisible(c/16, 8) = max(8, ⌊c/16 + 4⌋ rounded down to 8). */
export function mobileOneSEWidth(channels: number, names: 'official' | 'timm'): number {
  return names === 'timm' ? Math.max(8, Math.floor(Math.floor(channels / 16 + 4) / 8) * 8) : Math.max(1, Math.floor(channels * 0.0625));
}

export function mobileOneSE(channels: number, names: 'official' | 'timm', dtype: DType, rng: Rng): SqueezeExcite {
  return new SqueezeExcite(channels, mobileOneSEWidth(channels, names), { dtype, rng, names: names === 'timm' ? ['fc1', 'fc2'] : ['reduce', 'expand'] });
}

/**
 * RepConv: k×k conv+BN + 1×1 conv+BN (+ BN of x when in = out, stride 1 and `identity`), then the
 * activation (SiLU by default, as YOLOv7 and Ultralytics; YOLOv6's RepVGGBlock uses ReLU). Names:
 * 'yolov7' (rbr_dense.0/.1, rbr_1x1.0/.1, rbr_identity), 'ultralytics' (conv1.conv/.bn, conv2.conv/.bn,
 * bn; its identity BN is off unless bn=True), 'yolov6' (rbr_dense.conv/.bn, …, as RepVGG). BN eps
 * defaults to 1e-3 and momentum to 0.03, what these detectors train with.
 */
export function repConv(cin: number, cout: number, o: FamilyOptions & { names?: 'yolov7' | 'ultralytics' | 'yolov6'; identity?: boolean } = {}): BranchBlock {
  const p = parts(cin, cout, { eps: 1e-3, momentum: 0.03, ...o }); // each detector's initialize_weights sets these on every BatchNorm2d
  const names = o.names ?? 'yolov7';
  const n = names === 'yolov7' ? ['rbr_dense.0', 'rbr_dense.1', 'rbr_1x1.0', 'rbr_1x1.1', 'rbr_identity']
    : names === 'ultralytics' ? ['conv1.conv', 'conv1.bn', 'conv2.conv', 'conv2.bn', 'bn']
      : ['rbr_dense.conv', 'rbr_dense.bn', 'rbr_1x1.conv', 'rbr_1x1.bn', 'rbr_identity'];
  const chains: [string, Module][][] = [
    [[n[0], p.conv(cin, cout, p.k)], [n[1], p.bn(cout)]],
    [[n[2], p.conv(cin, cout, 1, 0)], [n[3], p.bn(cout)]],
  ];
  if (p.identity && (o.identity ?? names !== 'ultralytics')) chains.push([[n[4], p.bn(cout)]]);
  return block('RepConv', p, chains, { activation: o.activation ?? (names === 'yolov6' ? 'relu' : 'silu') });
}

/**
 * QARepVGG (Chu et al., 2023; YOLOv6's QARepVGGBlock): 3×3 conv+BN, a 1×1 conv without BN, the
 * identity without BN, a BN after the sum, ReLU. The fused conv folds that BN too (YOLOv6's deploy
 * model keeps it as a separate `bn`; folding it is exact in eval mode). BN eps defaults to 1e-3 and
 * momentum to 0.03, as YOLOv6 trains it.
 */
export function qaRepVGGBlock(cin: number, cout: number, o: FamilyOptions = {}): BranchBlock {
  if ((o.kernelSize ?? 3) !== 3) throw new Error(`qarepvgg: kernelSize is 3 (a 3×3 conv, a 1×1 and the identity), got ${o.kernelSize}`);
  const p = parts(cin, cout, { eps: 1e-3, momentum: 0.03, ...o }); // YOLOv6's initialize_weights sets every BatchNorm2d's eps and momentum so
  const chains: [string, Module][][] = [
    [['rbr_dense.conv', p.conv(cin, cout, 3)], ['rbr_dense.bn', p.bn(cout)]],
    [['rbr_1x1', p.conv(cin, cout, 1, 0)]],
  ];
  if (p.identity) chains.push([]);
  return block('QARepVGG', p, chains, { post: ['bn', p.bn(cout)], activation: o.activation ?? 'relu' });
}

/**
 * Diverse Branch Block (Ding et al., 2021) as DingXiaoH/DiverseBranchBlock builds it: k×k conv+BN
 * (dbb_origin); 1×1 conv+BN (dbb_1x1, when groups < out); 1×1 conv → BNAndPad → k×k average pool → BN
 * (dbb_avg; depthwise: the pool alone, with the padding); 1×1 (IdentityConv1x1 when the internal
 * width is the input's) → BNAndPad → k×k conv unpadded → BN (dbb_1x1_kxk). Activation: none by default,
 * as the public class (nonlinear=None).
 */
export function dbbBlock(cin: number, cout: number, o: FamilyOptions & { internalChannels?: number } = {}): BranchBlock {
  const p = parts(cin, cout, o);
  const pad = (p.k - 1) / 2;
  const depthwise = p.g >= cout;
  if (depthwise && cin !== cout) throw new Error(`dbbBlock: with groups ${p.g} ≥ out channels the average-pool branch pools the input, so in (${cin}) must equal out (${cout})`);
  const internal = o.internalChannels ?? (depthwise ? 2 * cin : cin);
  const chains: [string, Module][][] = [[['dbb_origin.conv', p.conv(cin, cout, p.k)], ['dbb_origin.bn', p.bn(cout)]]];
  if (!depthwise) chains.push([['dbb_1x1.conv', p.conv(cin, cout, 1, 0)], ['dbb_1x1.bn', p.bn(cout)]]);
  chains.push(depthwise
    ? [['dbb_avg.avg', new AvgPool2d(p.k, { stride: p.s, padding: pad })], ['dbb_avg.avgbn', p.bn(cout)]]
    : [['dbb_avg.conv', p.conv(cin, cout, 1, 0, 1)], ['dbb_avg.bn', new BNAndPad(cout, pad, { dtype: p.dtype, eps: o.eps, momentum: o.momentum })],
      ['dbb_avg.avg', new AvgPool2d(p.k, { stride: p.s, padding: 0 })], ['dbb_avg.avgbn', p.bn(cout)]]);
  chains.push([
    internal === cin ? ['dbb_1x1_kxk.idconv1', new IdentityConv1x1(cin, p.g, { dtype: p.dtype })] : ['dbb_1x1_kxk.conv1', p.conv(cin, internal, 1, 0, 1)],
    ['dbb_1x1_kxk.bn1', new BNAndPad(internal, pad, { dtype: p.dtype, eps: o.eps, momentum: o.momentum })],
    ['dbb_1x1_kxk.conv2', p.conv(internal, cout, p.k, 0)],
    ['dbb_1x1_kxk.bn2', p.bn(cout)],
  ]);
  return block('DBB', p, chains, { activation: o.activation ?? 'none' });
}

/**
 * RepVGG block with squeeze-and-excitation (RepVGG-D2se): ReLU(SE(Σ branches)), SE hidden width
 * out/16 ('se.down', 'se.up'). The SE stays after the fused conv. `se: false`: the plain RepVGG block.
 */
export function repvggSEBlock(cin: number, cout: number, o: FamilyOptions & { se?: boolean } = {}): RepVGGBlock {
  if ((o.kernelSize ?? 3) !== 3) throw new Error(`repvgg: kernelSize is 3, got ${o.kernelSize}`);
  const p = parts(cin, cout, o);
  const spec = { inChannels: cin, outChannels: cout, stride: p.s, groups: p.g, identity: p.identity, pointwise: true };
  return new RepVGGBlock(spec, { dtype: p.dtype, rng: p.rng, eps: o.eps, momentum: o.momentum, se: o.se !== false, activation: o.activation });
}

/**
 * Asymmetric Convolution Block (Ding et al., 2019) as DingXiaoH/ACNet's ACBlock builds it: a k×k conv+BN
 * (square_conv, square_bn) beside a k×1 (ver_conv, ver_bn; padding k/2 × 0) and a 1×k (hor_conv, hor_bn;
 * padding 0 × k/2), summed; no activation (the public class has none). The k×1 and 1×k kernels sit
 * on the k×k one's centre column and row.
 */
export function acbBlock(cin: number, cout: number, o: FamilyOptions = {}): BranchBlock {
  const p = parts(cin, cout, o);
  const pad = (p.k - 1) / 2;
  const conv = (kh: number, kw: number) => new Conv2d(cin, cout, [kh, kw], { padding: [(kh - 1) / 2, (kw - 1) / 2], stride: p.s, groups: p.g, bias: false, dtype: p.dtype, rng: p.rng });
  if (pad === 0) throw new Error('acb: kernelSize 1 has no asymmetric branches');
  const chains: [string, Module][][] = [
    [['square_conv', conv(p.k, p.k)], ['square_bn', p.bn(cout)]],
    [['ver_conv', conv(p.k, 1)], ['ver_bn', p.bn(cout)]],
    [['hor_conv', conv(1, p.k)], ['hor_bn', p.bn(cout)]],
  ];
  return block('ACB', p, chains, { activation: o.activation ?? 'none' });
}

/**
 * Large-kernel conv (RepLKNet, Ding et al., 2022; FastViT's ReparamLargeKernelConv): a k×k conv+BN beside
 * a small s×s conv+BN on the same centre (s odd, s ≤ k; smallKernel null: the k×k alone), summed.
 * kernelSize defaults to 7 and smallKernel to 3, FastViT's patch embedding. Names: 'official'
 * (lkb_origin.conv/.bn, small_conv.conv/.bn → lkb_reparam; DingXiaoH/RepLKNet-pytorch and
 * apple/ml-fastvit) or 'timm' (large_conv, small_conv → reparam_conv). Activation: none (FastViT's GELU
 * and SE come after the sum).
 */
export function largeKernelBlock(cin: number, cout: number, o: FamilyOptions & { smallKernel?: number | null; names?: 'official' | 'timm' } = {}): BranchBlock {
  const p = parts(cin, cout, { kernelSize: 7, ...o });
  const large = (o.names ?? 'official') === 'timm' ? 'large_conv' : 'lkb_origin';
  const chains: [string, Module][][] = [[[`${large}.conv`, p.conv(cin, cout, p.k)], [`${large}.bn`, p.bn(cout)]]];
  const s = o.smallKernel === undefined ? 3 : o.smallKernel;
  if (s !== null) {
    if (!Number.isSafeInteger(s) || s < 1 || s % 2 !== 1 || s > p.k) throw new Error(`large kernel: smallKernel must be an odd integer from 1 to kernelSize ${p.k}, got ${s}`);
    chains.push([['small_conv.conv', p.conv(cin, cout, s)], ['small_conv.bn', p.bn(cout)]]);
  }
  return block('large kernel', p, chains, { activation: o.activation ?? 'none' });
}

// FastViT's RepMixer and RepCPE: depthwise (groups = the width) with an identity term (stride 1);
// kernelSize defaults to the block's own
function depthwiseIdentityParts(family: string, dim: number, kernelSize: number, o: FamilyOptions): Parts {
  if (o.groups !== undefined && o.groups !== dim) throw new Error(`${family}: depthwise, groups is the width ${dim}, got ${o.groups}`);
  if ((o.stride ?? 1) !== 1) throw new Error(`${family}: stride is 1, got ${o.stride}`);
  return parts(dim, dim, { kernelSize, ...o, groups: dim });
}

/**
 * FastViT's RepMixer (Vasu et al., 2023): y = x + γ·(mixer(x) − norm(x)), depthwise (groups = dim), where
 * mixer is a MobileOne block without activation (`branches` k×k conv+BN, a 1×1 conv+BN when k > 1, a BN
 * of x) and norm a BN of x; γ the layer scale, (dim, 1, 1), initialised to 1e-5 (layerScale false: none,
 * γ = 1). As branches: x, γ·mixer_i(x) for each of mixer's, −γ·BN_norm(x) (LayerScale stages reading one γ).
 * Names: 'official' (norm.rbr_skip, mixer.rbr_conv.i, mixer.rbr_scale, mixer.rbr_skip, a bare parameter
 * layer_scale; apple/ml-fastvit) or 'timm' (norm.identity, mixer.conv_kxk.i, mixer.conv_scale,
 * mixer.identity, layer_scale.gamma). Deploy: reparam_conv.
 */
export function repMixerBlock(dim: number, o: FamilyOptions & { branches?: number; layerScale?: boolean; names?: 'official' | 'timm' } = {}): BranchBlock {
  const p = depthwiseIdentityParts('repmixer', dim, 3, o);
  const timm = (o.names ?? 'official') === 'timm';
  const [skip, convs, scale] = timm ? ['identity', 'conv_kxk', 'conv_scale'] : ['rbr_skip', 'rbr_conv', 'rbr_scale'];
  const gamma = o.layerScale === false ? null : new Parameter(full([dim, 1, 1], 1e-5, p.dtype));
  const ls = (sign: 1 | -1): [string, Module] => ['layer_scale', new LayerScale(dim, gamma, sign)];
  const chains: [string, Module][][] = [[]];
  const scaled = (c: [string, Module][]) => chains.push(gamma === null ? c : [...c, ls(1)]);
  if (p.k > 1) scaled([[`mixer.${scale}.conv`, p.conv(dim, dim, 1, 0)], [`mixer.${scale}.bn`, p.bn(dim)]]);
  scaled([[`mixer.${skip}`, p.bn(dim)]]);
  const branches = o.branches ?? 1;
  if (!Number.isSafeInteger(branches) || branches < 0) throw new Error(`repmixer: branches (mixer's k) must be an integer ≥ 0, got ${branches}`);
  for (let i = 0; i < branches; i++) scaled([[`mixer.${convs}.${i}.conv`, p.conv(dim, dim, p.k)], [`mixer.${convs}.${i}.bn`, p.bn(dim)]]);
  chains.push([[`norm.${skip}`, p.bn(dim)], ls(-1)]);
  return block('RepMixer', p, chains, { activation: 'none', shared: gamma === null ? [] : [[timm ? 'layer_scale.gamma' : 'layer_scale', gamma]] });
}

/**
 * FastViT's RepCPE (reparameterizable conditional positional encoding): y = x + conv_k×k(x) + b, the
 * conv depthwise (groups = dim) with bias, kernelSize 7 by default. Names: 'official' (pe; apple/ml-fastvit)
 * or 'timm' (pos_enc). Deploy: reparam_conv.
 */
export function repCPEBlock(dim: number, o: FamilyOptions & { names?: 'official' | 'timm' } = {}): BranchBlock {
  const p = depthwiseIdentityParts('repcpe', dim, 7, o);
  const pe = new Conv2d(dim, dim, p.k, { padding: (p.k - 1) / 2, groups: dim, bias: true, dtype: p.dtype, rng: p.rng });
  return block('RepCPE', p, [[], [[(o.names ?? 'official') === 'timm' ? 'pos_enc' : 'pe', pe]]], { activation: 'none' });
}

/** A family block by name, with the options as one record (the fixtures' and the CLI's form). */
export interface FamilySpec extends Omit<FamilyOptions, 'rng'> {
  family: keyof typeof FAMILIES;
  in: number;
  out: number;
  /** MobileOne's k */
  branches?: number;
  se?: boolean;
  names?: string;
  /** RepConv: the BN of x (Ultralytics' bn=True; YOLOv7 and YOLOv6 have it whenever in = out, stride 1) */
  identity?: boolean;
  /** large kernel: the small conv's size (null: none) */
  smallKernel?: number | null;
  /** RepMixer: a layer scale γ (timm's layer_scale_init_value not None) */
  layerScale?: boolean;
}

export function familyBlock(spec: FamilySpec): BranchBlock {
  const { family, in: cin, out: cout } = spec;
  const known = FAMILIES[family]?.names as readonly string[] | undefined;
  if (known === undefined) throw new Error(`unknown block family '${String(family)}' (expected ${Object.keys(FAMILIES).join(', ')})`);
  if (spec.names !== undefined && !known.includes(spec.names)) throw new Error(`${family}: unknown names '${spec.names}' (expected ${known.join(', ')})`);
  switch (family) {
    case 'mobileone': return mobileOneBlock(cin, cout, { ...spec, names: spec.names as 'official' | 'timm' | undefined });
    case 'repconv': return repConv(cin, cout, { ...spec, names: spec.names as 'yolov7' | 'ultralytics' | 'yolov6' | undefined });
    case 'qarepvgg': return qaRepVGGBlock(cin, cout, spec);
    case 'dbb': return dbbBlock(cin, cout, spec);
    case 'repvgg': return repvggSEBlock(cin, cout, spec);
    case 'acb': return acbBlock(cin, cout, spec);
    case 'replk': return largeKernelBlock(cin, cout, { ...spec, names: spec.names as 'official' | 'timm' | undefined });
    case 'repmixer':
    case 'repcpe': {
      if (cin !== cout) throw new Error(`${family}: in (${cin}) and out (${cout}) must be equal (an identity term)`);
      const o = { ...spec, names: spec.names as 'official' | 'timm' | undefined };
      return family === 'repmixer' ? repMixerBlock(cin, o) : repCPEBlock(cin, o);
    }
  }
}

/** The state-dict name of the fused conv in the family's deploy form. */
export function deployKey(spec: Pick<FamilySpec, 'family' | 'names'>): string {
  const k = FAMILIES[spec.family].deployKey;
  return typeof k === 'string' ? k : k[(spec.names ?? FAMILIES[spec.family].names[0]) as keyof typeof k];
}
