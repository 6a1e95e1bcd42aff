// Fuse a BranchBlock (src/nn/variants.ts) into one 3×3 conv with bias, stage by stage:
//   chain:  identity ─conv→ K ─BN→ fuseConvBN(K) …   (a chain with no conv starts from the identity kernel)
//   block:  Σ chains (sumBranches), then the post-addition BN folded like any other BN.
// A ReLU inside a chain makes the branch nonlinear: no single conv computes it, so we refuse.

import { BatchNorm2d, Conv2d, ReLU } from '../nn/layers.js';
import { type BranchBlock, DiracConv2d } from '../nn/variants.js';
import type { Module } from '../nn/module.js';
import { type KernelBias, castKernelBias, fuseConvBN, identityKernel, mergeSequential1x1kxk, padKernel, sumBranches, withZeroBias } from './kernels.js';
import { bnStats, deployModel } from './repvgg.js';
import type { RepVGG } from '../nn/repvgg.js';
import type { VariantNet } from '../nn/variant_net.js';

function convStage(m: Conv2d): KernelBias {
  const k = padKernel(m.weight.data, 3);
  return m.bias === null ? withZeroBias(k) : { kernel: k, bias: m.bias.data };
}

/** One chain of stages as a 3×3 kernel and bias (float64). */
export function fuseChain(chain: readonly Module[], channels: number, groups: number, where: string): KernelBias {
  let acc: KernelBias | null = null; // null: the identity so far
  chain.forEach((m, j) => {
    const at = `${where}.${j}`;
    if (m instanceof ReLU) {
      throw new Error(`${at}: a ReLU inside a branch makes it nonlinear ('+ReLU in branch'); only linear branches can be fused into one conv`);
    } else if (m instanceof BatchNorm2d) {
      acc = fuseConvBN(acc ?? withZeroBias(identityKernel(channels, groups, 'float64')), bnStats(m, at), 'float64');
    } else if (m instanceof Conv2d || m instanceof DiracConv2d) {
      const k = m instanceof Conv2d ? castKernelBias(convStage(m), 'float64') : withZeroBias(m.effectiveKernel('float64'));
      acc = acc === null ? k : mergeSequential1x1kxk(acc, k, 'float64');
    } else {
      throw new Error(`${at}: cannot fuse a ${m.constructor.name}`);
    }
  });
  return acc ?? withZeroBias(identityKernel(channels, groups, 'float64'));
}

// where: the block's name, prefixed to the names in errors
export function fuseBranchBlock(block: BranchBlock, where = ''): KernelBias {
  const groups = groupsOf(block);
  const at = where === '' ? '' : `${where}.`;
  const sum = sumBranches(block.branches.map((chain, i) => fuseChain(chain, block.channels, groups, `${at}branch${i}`)), 'float64');
  return block.postBN === null ? sum : fuseConvBN(sum, bnStats(block.postBN, `${at}post_bn`), 'float64');
}

/**
 * A deploy RepVGG computing the same function as a VariantNet in eval mode (every Table 6 design but
 * '+ReLU in branch' fuses to one 3×3 conv per block). The network is not modified.
 */
export function convertVariantNet(net: VariantNet): RepVGG {
  if (net.training) throw new Error('convertVariantNet: the network is in training mode; its BatchNorms use batch statistics and cannot be fused (call eval() first)');
  const names = net.children().map(([n]) => n);
  return deployModel(net.plan, net.linear.weight.data.dtype, (i) => fuseBranchBlock(net.blocks[i], names[i]), net.linear);
}

function groupsOf(block: BranchBlock): number {
  for (const chain of block.branches) for (const m of chain) if (m instanceof Conv2d) return m.groups;
  return 1;
}
