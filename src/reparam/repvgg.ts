// RepVGG block → one 3×3 conv with bias:
//   ReLU( BN₃(K₃ ⊛ x) + BN₁(K₁ ⊛ x) + BN_id(x) )
//   = ReLU( fuseConvBN(K₃) ⊛ x  +  pad(fuseConvBN(K₁)) ⊛ x  +  fuseConvBN(I) ⊛ x )     (each + its bias)
//   = ReLU( K' ⊛ x + b' )

import type { DType, Tensor } from '../tensor/tensor.js';
import type { Linear } from '../nn/layers.js';
import { type ConvBN, RepVGG, type RepVGGBlock } from '../nn/repvgg.js';
import type { StageNet } from '../nn/stage_net.js';
import type { BranchBlock } from '../nn/branch_block.js';
import type { RepVGGPlan } from '../nn/config.js';
import { bnStats, fuseLinearBranches } from './fuse.js';
import { type KernelBias, castKernelBias, fuseConvBN, identityKernel, padKernel, sumBranches, withZeroBias } from './kernels.js';

// conv (no bias) → BN
function fuseConvBNBranch(branch: ConvBN, where: string): KernelBias {
  return fuseConvBN(withZeroBias(branch.conv.weight.data), bnStats(branch.bn, `${where}.bn`), 'float64');
}

/** Each step of fuseRepVGGBlock's fusion (float64), for the learners' page to show; null where the block has no such branch. */
export interface RepVGGFusionSteps {
  /** W₃', b₃' = fuseConvBN(W₃, BN₃) */
  dense: KernelBias;
  /** W₁', b₁' = fuseConvBN(W₁, BN₁) */
  point: KernelBias | null;
  /** P = W₁' padded to 3×3 */
  padded: Tensor | null;
  /** I, the identity as a 3×3 kernel */
  I: Tensor | null;
  /** I', b_id' = fuseConvBN(I, BN_id) */
  ident: KernelBias | null;
  /** K = W₃' + P + I',  b = b₃' + b₁' + b_id' */
  sum: KernelBias;
}

/** The steps of fusing a training-time block (see RepVGGFusionSteps). */
export function repvggFusionSteps(block: RepVGGBlock, where = 'block'): RepVGGFusionSteps {
  if (block.rbrReparam !== null) throw new Error(`${where}: a deploy block has no branches to fuse`);
  const { outChannels, groups } = block.spec;
  const dense = fuseConvBNBranch(block.rbrDense!, `${where}.rbr_dense`);
  const point = block.rbr1x1 === null ? null : fuseConvBNBranch(block.rbr1x1, `${where}.rbr_1x1`);
  const padded = point === null ? null : padKernel(point.kernel, 3);
  const I = block.rbrIdentity === null ? null : identityKernel(outChannels, groups, 'float64', 3);
  // a lone BN is a conv with the identity kernel: BN(x) = BN(I ⊛ x)
  const ident = I === null ? null : fuseConvBN(withZeroBias(I), bnStats(block.rbrIdentity!, `${where}.rbr_identity`), 'float64');
  const branches = [dense, ...(point === null ? [] : [{ kernel: padded!, bias: point.bias }]), ...(ident === null ? [] : [ident])];
  return { dense, point, padded, I, ident, sum: sumBranches(branches, 'float64') };
}

/** The deploy kernel and bias of a block, in float64 (a deploy block: its own conv's). */
export function fuseRepVGGBlock(block: RepVGGBlock, where = 'block'): KernelBias {
  if (block.rbrReparam !== null) {
    return castKernelBias({ kernel: block.rbrReparam.weight.data, bias: block.rbrReparam.bias!.data }, 'float64');
  }
  return repvggFusionSteps(block, where).sum;
}

/**
 * A new deploy-time RepVGG computing the same function as `model` in eval mode: a RepVGG, or a
 * VariantNet of any Table 6 design whose branches are linear (all but '+ReLU in branch'). Each
 * block goes through the one fuser. `model` is not modified. Fusing runs in float64 and rounds once
 * into `dtype` (default: the model's).
 */
export function convert(model: StageNet<BranchBlock>, opts: { dtype?: DType } = {}): RepVGG {
  if (model.training) throw new Error('convert: the model is in training mode; its BatchNorms use batch statistics and cannot be fused (call model.eval() first)');
  const names = model.children().filter(([n]) => n.startsWith('stage')).map(([n]) => n);
  const src = model.blocks();
  return deployModel(model.plan, opts.dtype ?? model.dtype, (i) => fuseLinearBranches(src[i].linearBranches(), names[i]), model.linear);
}

/** A deploy RepVGG of `plan` in eval mode: block i is fused(i) (float64, rounded once into dtype), the classifier is `linear`'s. */
function deployModel(plan: RepVGGPlan, dtype: DType, fused: (i: number) => KernelBias, linear: Linear): RepVGG {
  const deploy = new RepVGG(plan, { deploy: true, dtype, init: false });
  deploy.blocks().forEach((b, i) => {
    const f = castKernelBias(fused(i), dtype);
    b.rbrReparam!.weight.data.data.set(f.kernel.data);
    b.rbrReparam!.bias!.data.data.set(f.bias.data);
  });
  deploy.linear.weight.data.data.set(linear.weight.data.data);
  deploy.linear.bias.data.data.set(linear.bias.data.data);
  return deploy.eval();
}
