// Blocks built from branches (src/nn/branch_block.ts): fused by the one fuser (./fuse.ts), as a
// deploy block of their family, or a whole Table 6 network as a deploy RepVGG.

import { Conv2d } from '../nn/layers.js';
import { type BranchBlock, FusedBlock } from '../nn/branch_block.js';
import type { DType } from '../tensor/tensor.js';
import { type KernelBias, castKernelBias } from './kernels.js';
import { fuseLinearBranches } from './fuse.js';
import { MobileOne } from '../nn/mobileone.js';

// where: the block's name, prefixed to the names in errors
export function fuseBranchBlock(block: BranchBlock, where = ''): KernelBias {
  return fuseLinearBranches(block.linearBranches(), where);
}

/**
 * The deploy form of a block: one conv (its family's deploy key, e.g. 'reparam_conv', 'rbr_reparam',
 * Ultralytics' 'conv', 'dbb_reparam') with bias, then the block's SE (kept, copied) and activation.
 */
export function deployBlock(block: BranchBlock, convName: string, opts: { dtype?: DType } = {}): FusedBlock {
  if (block.training) throw new Error('deployBlock: the block is in training mode; its BatchNorms use batch statistics and cannot be fused (call eval() first)');
  const dtype = opts.dtype ?? block.branches.flat().find((m): m is Conv2d => m instanceof Conv2d)?.weight.data.dtype ?? 'float32';
  const f = castKernelBias(fuseBranchBlock(block), dtype);
  const conv = new Conv2d(block.inChannels, block.channels, block.kernelSize, { stride: block.stride, padding: block.padding, groups: block.groups, bias: true, dtype, init: false });
  conv.weight.data.data.set(f.kernel.data);
  conv.bias!.data.data.set(f.bias.data);
  const se = block.se === null ? null : block.se.copy();
  return new FusedBlock(conv, { convName, se, seName: block.seName, activation: block.activation }).eval();
}

/** The deploy MobileOne of a training-time one in eval mode: each block fused (deployBlock), the head copied. */
export function convertMobileOne(net: MobileOne): MobileOne {
  if (net.training) throw new Error('convertMobileOne: the network is in training mode; its BatchNorms use batch statistics and cannot be fused (call eval() first)');
  if (net.deploy) throw new Error('convertMobileOne: the network is already in its deploy form');
  const out = new MobileOne(net.plan, { deploy: true, dtype: net.dtype });
  net.blocks.forEach((b, i) => { out.blocks[i] = deployBlock(b as BranchBlock, 'reparam_conv', { dtype: net.dtype }); });
  out.linear.weight.data.data.set(net.linear.weight.data.data);
  out.linear.bias.data.data.set(net.linear.bias.data.data);
  return out.eval();
}
