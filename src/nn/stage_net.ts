// The RepVGG layout over a plan, whatever the block: stage0 (one stride-2 block), then four stages
// whose first block has stride 2, global average pool, linear. RepVGG builds it of RepVGG blocks,
// VariantNet of the RepVGG paper's Table 6 designs; `convert` (src/reparam/repvgg.ts) takes either.

import type { DType } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import type { Module } from './module.js';
import { PooledClassifier } from './classifier.js';
import { type Conv2d, Linear } from './layers.js';
import type { BranchBlock } from './branch_block.js';
import type { BlockSpec, RepVGGPlan } from './config.js';
import { type AlgorithmPlanEntry, algorithmPlanOf, namedConvsOf, pinAlgorithmPlan } from './conv_algorithm.js';

export interface ModelOptions {
  dtype?: DType;
  /** seed of the deterministic initialisation */
  seed?: number;
  rng?: Rng;
  /** false: zero parameters instead of PyTorch's default init (for models about to be loaded) */
  init?: boolean;
}

/** Builds the block of one plan entry; every block draws its parameters from `rng`, in plan order. */
export type BlockBuilder<B extends BranchBlock> = (spec: BlockSpec, o: { dtype: DType; rng: Rng; init?: boolean }) => B;

export class StageNet<B extends BranchBlock> extends PooledClassifier {
  readonly plan: RepVGGPlan;
  readonly stage0: B;
  /** stage1..stage4 */
  readonly stages: B[][];
  readonly linear: Linear;

  constructor(plan: RepVGGPlan, build: BlockBuilder<B>, opts: ModelOptions = {}) {
    super();
    this.plan = plan;
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const o = { dtype: opts.dtype ?? 'float32', rng, init: opts.init };
    this.stage0 = build(plan.stages[0][0], o);
    this.stages = plan.stages.slice(1).map((blocks) => blocks.map((b) => build(b, o)));
    const last = plan.stages[plan.stages.length - 1];
    this.linear = new Linear(last[last.length - 1].outChannels, plan.numClasses, { dtype: opts.dtype, rng, init: opts.init });
  }

  override children(): [string, Module][] {
    const c: [string, Module][] = [['stage0', this.stage0]];
    this.stages.forEach((blocks, s) => blocks.forEach((b, i) => c.push([`stage${s + 1}.${i}`, b])));
    c.push(['linear', this.linear]);
    return c;
  }

  /** stage0, then the stages' blocks in order (state-dict names 'stage0', 'stage1.0', …). */
  blocks(): B[] {
    return [this.stage0, ...this.stages.flat()];
  }

  protected features(): readonly Module[] {
    return this.blocks();
  }

  /** Every conv with its state-dict prefix ('stage1.0.rbr_dense.conv'), in forward order. */
  namedConvs(): [string, Conv2d][] {
    return namedConvsOf(this);
  }

  /**
   * What each conv ran in the last forward ('auto' resolved to what it measured), so a run can be
   * reported, saved and pinned with setAlgorithmPlan. Throws before the first forward.
   */
  algorithmPlan(): AlgorithmPlanEntry[] {
    return algorithmPlanOf(this.namedConvs(), this.constructor.name);
  }

  /** Pin every conv to the plan's algorithm: no timing decides anything afterwards. */
  setAlgorithmPlan(plan: readonly AlgorithmPlanEntry[]): this {
    pinAlgorithmPlan(this.namedConvs(), plan);
    return this;
  }
}
