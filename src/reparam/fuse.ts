// The one fuser: a block's branches (src/nn/branch_block.ts LinearBranches) → one K×K conv with bias.
//   stage by stage, each branch is an affine map x ↦ K ⊛ pad_p(x) + b with stride s:
//     BN          fold:   K' = K·s, b' = β + (b − μ)·s, s = γ/√(σ²+ε)           (fuseConvBN)
//     conv, pool  merge:  K' = K₂ ∘ K, b' = b₂ + Σ K₂·b  when K is 1×1, stride 1  (mergeSequential1x1kxk)
//     padding     moves to the input, exact when what came before maps 0 to the border's value
//                 (zeros: no bias before it; BNAndPad: BN(0); ChannelPad2d: v, the bias before it)
//   dilation r  K'[r·i, r·j] = K[i, j], zeros between (dilateKernel)
//   no stage: the identity kernel; AvgPool2d: 1/k² per tap; DiracConv2d: its Ŵ; IdentityConv1x1: W + I
//   then Σ branches after centring each kernel in K×K (sumBranches), then the post-addition BN.
// A nonlinearity inside a branch (ReLU, SiLU, SE) has no single conv: refused with its name. Each
// layer describes itself (Module.fuseStage, src/nn/fuse_stage.ts): the fuser lists no layer classes.

import type { BatchNorm2d } from '../nn/layers.js';
import type { FuseStage } from '../nn/fuse_stage.js';
import type { LinearBranches } from '../nn/branch_block.js';
import type { Module } from '../nn/module.js';
import type { Pair, Padding } from '../ops/conv2d_geometry.js';
import { type BNStats, type KernelBias, avgPoolKernel, castKernelBias, dilateKernel, fuseConvBN, identityKernel, mergeSequential1x1kxk, padKernel, sumBranches, withZeroBias } from './kernels.js';

/** A BatchNorm's eval-mode statistics; a BN in training mode normalises by the batch, which no fixed conv can do. */
export function bnStats(bn: BatchNorm2d, where: string): BNStats {
  if (bn.training) {
    throw new Error(`${where}: a BatchNorm in training mode cannot be fused (its output depends on the batch statistics); call eval() first`);
  }
  return { gamma: bn.weight.data, beta: bn.bias.data, mean: bn.runningMean, variance: bn.runningVar, eps: bn.eps };
}

/** One step of the fuser, for `repvgg explain` (what it did, to which stage, and the result). */
export interface FuseStep {
  at: string;
  what: string;
  kb: KernelBias;
}
export type FuseTrace = (step: FuseStep) => void;

/** A branch so far: y = kb.kernel ⊛ pad_pad(x) + kb.bias, with this stride and groups (float64). */
interface Affine {
  kb: KernelBias;
  pad: [number, number];
  stride: number;
  groups: number;
  /** kb's arrays were made by the fuser for this branch alone: a BN or the sum may overwrite them */
  owned: boolean;
}

function square(p: Pair, what: string, at: string): number {
  if (typeof p === 'number') return p;
  if (p[0] !== p[1]) throw new Error(`${at}: ${what} ${p[0]}×${p[1]} differs per axis; the fuser takes one value`);
  return p[0];
}

function symmetricPadding(p: Padding, at: string): [number, number] {
  if (p === 'valid') return [0, 0];
  if (typeof p === 'number') return [p, p];
  if (p !== 'same' && typeof p[0] === 'number') return [p[0], p[1] as number];
  throw new Error(`${at}: padding ${JSON.stringify(p)} is not symmetric; only number or [h, w] padding fuses`);
}

/** A conv or pool stage (as the layer describes itself: src/nn/fuse_stage.ts) as an affine map of its own input. */
function stageAffine(st: Extract<FuseStage, { kind: 'conv' | 'avgpool' }>, channels: number, blockGroups: number, at: string): Affine {
  if (st.kind === 'avgpool') {
    return { kb: withZeroBias(avgPoolKernel(channels, blockGroups, st.kernel)), pad: [st.padding, st.padding], stride: st.stride, groups: blockGroups, owned: true };
  }
  // float32 weights (and bias) are widened into new arrays (owned); float64 ones are the layer's own
  const k = castKernelBias(st.bias === null ? withZeroBias(st.weight) : { kernel: st.weight, bias: st.bias }, 'float64');
  const r = square(st.dilation, 'dilation', at);
  const kernel = r === 1 ? k.kernel : dilateKernel(k.kernel, r);
  const owned = kernel !== st.weight && (st.bias === null || k.bias !== st.bias);
  return { kb: { kernel, bias: k.bias }, pad: symmetricPadding(st.padding, at), stride: square(st.stride, 'stride', at), groups: st.groups, owned };
}

function identityAffine(channels: number, groups: number): Affine {
  return { kb: withZeroBias(identityKernel(channels, groups, 'float64', 1)), pad: [0, 0], stride: 1, groups, owned: true };
}

// Padding what came before with p moves to its input only if it is pointwise (1×1, stride 1) and
// maps 0 to the border's value: then padding its input with zeros gives that value there. The border
// is 0 for a conv's zero padding and BN(0) for BNAndPad (the prior's bias must be 0), and v for a
// ChannelPad2d (the prior's bias must be v).
function addPadding(acc: Affine, p: readonly [number, number], at: string, border: Float64Array | null = null): Affine {
  if (p[0] === 0 && p[1] === 0) return acc;
  const [, , kh, kw] = acc.kb.kernel.shape;
  if (kh !== 1 || kw !== 1 || acc.stride !== 1) throw new Error(`${at}: pads the output of a ${kh}×${kw}, stride ${acc.stride} stage; the border would not be a function of the input's border (only after 1×1 stride-1 stages)`);
  const b = acc.kb.bias.data;
  if (border === null) {
    if (b.some((v) => v !== 0)) throw new Error(`${at}: pads with the value of 0 but the stages before it have a bias; the fused conv would see that bias at the border (DBB's BNAndPad pads with BN(0) for this reason)`);
  } else {
    if (border.length !== b.length) throw new Error(`${at}: ${border.length} border values for ${b.length} channels`);
    // A file's border was computed by its exporter (in float32: a few roundings of terms the size of
    // the largest bias), ours in float64; a real mismatch (zeros where the bias is not) is far larger.
    // What the border then contributes is held to fuseBound by the probe check of src/onnx/check.ts.
    let scale = 1;
    for (let c = 0; c < b.length; c++) scale = Math.max(scale, Math.abs(b[c]), Math.abs(border[c]));
    const c = b.findIndex((v, i) => !(Math.abs(v - border[i]) <= 2 ** -18 * scale));
    if (c >= 0) throw new Error(`${at}: pads channel ${c} with ${border[c]}, but what comes before it maps 0 to ${b[c]}; only a border equal to that value moves to the input`);
  }
  return { ...acc, pad: [acc.pad[0] + p[0], acc.pad[1] + p[1]] };
}

/** One branch's stages as an affine map (float64), at its own kernel size and padding. */
function fuseChain(stages: readonly [string, Module][], lb: LinearBranches, where: string, trace?: FuseTrace): Affine {
  let acc: Affine | null = null; // null: the identity so far
  let channels = lb.inChannels;
  for (const [name, m] of stages) {
    const at = `${where}${name}`;
    const st = m.fuseStage();
    if (st === null) throw new Error(`${at}: cannot fuse a ${m.constructor.name}`);
    if (st.kind === 'nonlinear') throw new Error(`${at}: a ${m.constructor.name} inside a branch makes it nonlinear ('+ReLU in branch'); only linear branches can be fused into one conv`);
    if (st.kind === 'bn') {
      const base: Affine = acc ?? identityAffine(channels, lb.groups);
      const padded: Affine = addPadding(base, [st.pad, st.pad], at); // BN(prior(0)) = BN(0) iff prior bias 0
      if (acc === null) trace?.({ at, what: 'no conv before this BN: start from the identity kernel I', kb: base.kb });
      if (padded !== base) trace?.({ at, what: `its border is BN(0) and what came before maps 0 to 0: move the padding ${padded.pad[0] - base.pad[0]} to the input`, kb: base.kb });
      acc = { ...padded, kb: fuseConvBN(padded.kb, bnStats(st.bn, at + st.statsAt), 'float64', padded.owned && trace === undefined), owned: true };
      trace?.({ at, what: st.what ?? "fold the BN: K' = K·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε)", kb: acc.kb });
      continue;
    }
    if (st.kind === 'border') {
      acc = addPadding(acc ?? identityAffine(channels, lb.groups), st.pad, at, st.values);
      trace?.({ at, what: `its border is the value what came before gives for 0: move the padding ${st.pad.join('×')} to the input`, kb: acc.kb });
      continue;
    }
    const s = stageAffine(st, channels, lb.groups, at);
    if (acc !== null) {
      const prior = addPadding(acc, s.pad, at);
      if (prior.kb.kernel.shape[2] !== 1 || prior.kb.kernel.shape[3] !== 1 || prior.stride !== 1) throw new Error(`${at}: follows a spatial stage; only a 1×1 stride-1 stage can precede a conv here`);
      if (prior.groups !== s.groups) throw new Error(`${at}: groups ${s.groups} after a stage with groups ${prior.groups}; the merge needs equal groups`);
      acc = { kb: mergeSequential1x1kxk(prior.kb, s.kb, 'float64', s.groups), pad: prior.pad, stride: s.stride, groups: s.groups, owned: true };
      const kind = st.kind === 'avgpool' ? 'the average pool as a kernel (1/k² on each tap of its own channel), merged' : 'merge';
      trace?.({ at, what: `${kind} with the 1×1 map before it: K' = K₂ ∘ K₁ (Σ over the middle channels), b' = b₂ + Σ K₂·b₁`, kb: acc.kb });
    } else {
      acc = s;
      const r = st.kind === 'conv' ? square(st.dilation, 'dilation', at) : 1;
      const what = st.kind === 'avgpool' ? 'the average pool as a kernel: 1/k² on every tap of the channel itself' : r > 1 ? `${st.what} with dilation ${r} as a plain kernel: K'[${r}i, ${r}j] = K[i, j], zeros between` : st.what;
      trace?.({ at, what, kb: acc.kb });
    }
    channels = acc.kb.kernel.shape[0];
  }
  if (acc === null) trace?.({ at: where.replace(/\.$/, ''), what: 'the identity branch: the identity kernel I', kb: identityAffine(lb.inChannels, lb.groups).kb });
  return acc ?? identityAffine(lb.inChannels, lb.groups);
}

// Centre a branch's kernel in the fused K×K: exact when (K − k)/2 = P − p on each axis (same centre).
function centred(a: Affine, lb: LinearBranches, at: string): { kb: KernelBias; owned: boolean } {
  const [F, , kh, kw] = a.kb.kernel.shape;
  const K = lb.kernelSize, P = lb.padding;
  if (F !== lb.outChannels || a.stride !== lb.stride || a.groups !== lb.groups) {
    throw new Error(`${at}: gives ${F} channels, stride ${a.stride}, groups ${a.groups}; the block is ${lb.outChannels} channels, stride ${lb.stride}, groups ${lb.groups}`);
  }
  if (K - kh !== 2 * (P - a.pad[0]) || K - kw !== 2 * (P - a.pad[1])) {
    throw new Error(`${at}: a ${kh}×${kw} kernel with padding ${a.pad.join('×')} is not centred like the fused ${K}×${K} conv with padding ${P}`);
  }
  if (kh === K && kw === K) return { kb: a.kb, owned: a.owned }; // K×K already: no copy (a B3 kernel is 118 MB in float64)
  return { kb: { kernel: padKernel(a.kb.kernel, K), bias: a.kb.bias }, owned: a.owned };
}

// A branch's name: its stages' common dotted prefix ('rbr_conv.0.conv', 'rbr_conv.0.bn' → 'rbr_conv.0').
function branchName(names: string[]): string {
  let parts = names[0].split('.');
  for (const n of names.slice(1)) {
    const q = n.split('.');
    let k = 0;
    while (k < parts.length && k < q.length && parts[k] === q[k]) k++;
    parts = parts.slice(0, k);
  }
  return parts.length > 0 ? parts.join('.') : names[0];
}

/** The fused kernel (F, C/g, K, K) and bias of a block's branches, in float64. */
export function fuseLinearBranches(lb: LinearBranches, where = '', trace?: FuseTrace): KernelBias {
  const at = where === '' ? '' : `${where}.`;
  const parts = lb.branches.map((stages, i) => {
    const name = stages.length > 0 ? `${at}${branchName(stages.map(([n]) => n))}` : `${at}branch${i} (identity)`;
    const c = centred(fuseChain(stages, lb, at, trace), lb, name);
    trace?.({ at: name, what: `centre the branch in ${lb.kernelSize}×${lb.kernelSize} (zeros around it)`, kb: c.kb });
    return c;
  });
  // the sum goes into the first branch's arrays when the fuser made them (a large block then holds one
  // float64 kernel, not three); a trace keeps every step's arrays as they were
  const sum = sumBranches(parts.map((p) => p.kb), 'float64', parts[0].owned && trace === undefined);
  trace?.({ at: 'sum', what: 'add the branches: kernels add, biases add', kb: sum });
  if (lb.post === null) return sum;
  const post = fuseConvBN(sum, bnStats(lb.post[1], `${at}${lb.post[0]}`), 'float64', trace === undefined); // the sum's arrays are the fuser's either way
  trace?.({ at: lb.post[0], what: 'fold the BN after the sum like any other', kb: post });
  return post;
}

