// Whole networks for the RepVGG paper's ablations (its Fig. 6 and Fig. 7 tables): the RepVGG layout
// (StageNet: stage0, then four stages whose first block has stride 2, global average pool, linear)
// built from one of the Table 6 block designs instead of RepVGG blocks. A stage's first block changes
// the channels and the size, so its identity terms are left out, as RepVGG leaves out its identity
// branch. `convert` (src/reparam/repvgg.ts) deploys it as it deploys a RepVGG.

import type { DType } from '../tensor/tensor.js';
import { type RepVGGConfig, planFromConfig } from './config.js';
import { type VariantName, variantBlock } from './variants.js';
import type { BranchBlock } from './branch_block.js';
import { StageNet } from './stage_net.js';

export class VariantNet extends StageNet<BranchBlock> {
  readonly variant: VariantName;

  constructor(variant: VariantName, cfg: RepVGGConfig, opts: { dtype?: DType; seed?: number } = {}) {
    super(planFromConfig(cfg), (b, o) => variantBlock(variant, b.outChannels, { inChannels: b.inChannels, stride: b.stride, groups: b.groups, dtype: o.dtype, rng: o.rng }), opts);
    this.variant = variant;
  }
}
