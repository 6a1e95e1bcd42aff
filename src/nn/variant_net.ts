// Whole networks for the RepVGG paper's ablations (its Fig. 6 and Fig. 7 tables): the RepVGG layout
// (stage0, then four stages whose first block has stride 2, global average pool, linear) built from
// one of the Table 6 block designs instead of RepVGG blocks. A stage's first block changes the
// channels and the size, so its identity terms are left out, as RepVGG leaves out its identity branch.

import type { DType } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import type { Module } from './module.js';
import { PooledClassifier } from './classifier.js';
import { Linear } from './layers.js';
import { type RepVGGConfig, type RepVGGPlan, planFromConfig } from './config.js';
import { type VariantName, variantBlock } from './variants.js';
import type { BranchBlock } from './branch_block.js';

export class VariantNet extends PooledClassifier {
  readonly variant: VariantName;
  readonly plan: RepVGGPlan;
  /** stage0, then the stages' blocks in order (state-dict names 'stage0', 'stage1.0', …) */
  readonly blocks: BranchBlock[];
  readonly linear: Linear;
  private readonly names: string[];

  constructor(variant: VariantName, cfg: RepVGGConfig, opts: { dtype?: DType; seed?: number } = {}) {
    super();
    this.variant = variant;
    this.plan = planFromConfig(cfg);
    const rng = new Rng(opts.seed ?? 0);
    this.blocks = [];
    this.names = [];
    this.plan.stages.forEach((stage, s) => stage.forEach((b, i) => {
      this.blocks.push(variantBlock(variant, b.outChannels, { inChannels: b.inChannels, stride: b.stride, groups: b.groups, dtype: opts.dtype, rng }));
      this.names.push(s === 0 ? 'stage0' : `stage${s}.${i}`);
    }));
    const last = this.plan.stages[this.plan.stages.length - 1];
    this.linear = new Linear(last[last.length - 1].outChannels, this.plan.numClasses, { dtype: opts.dtype, rng });
  }

  override children(): [string, Module][] {
    return [...this.blocks.map((b, i): [string, Module] => [this.names[i], b]), ['linear', this.linear]];
  }

  protected features(): readonly Module[] {
    return this.blocks;
  }

  protected get inChannels(): number {
    return this.plan.inChannels;
  }
}
