// Whole networks for the RepVGG paper's ablations (its Fig. 6 and Fig. 7 tables): the RepVGG layout
// (stage0, then four stages whose first block has stride 2, global average pool, linear) built from
// one of the Table 6 block designs instead of RepVGG blocks. A stage's first block changes the
// channels and the size, so its identity terms are left out, as RepVGG leaves out its identity branch.

import type { DType } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import type { ConvAlgorithm } from '../ops/conv2d.js';
import type { Module } from './module.js';
import { PooledClassifier } from './classifier.js';
import { Conv2d, Linear } from './layers.js';
import { type RepVGGConfig, type RepVGGPlan, planFromConfig } from './config.js';
import { type BranchBlock, DiracConv2d, type VariantName, variantBlock } from './variants.js';

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

  /** Every conv's algorithm (3×3 stride-1 ones may take 'winograd'; the others then run im2col). */
  setAlgorithm(algorithm: ConvAlgorithm): this {
    setConvAlgorithm(this, algorithm);
    return this;
  }

  protected features(): readonly Module[] {
    return this.blocks;
  }

  protected get inChannels(): number {
    return this.plan.inChannels;
  }
}

/** Sets the algorithm of every conv below `root`; 'winograd' only where it applies (3×3, stride 1). */
export function setConvAlgorithm(root: Module, algorithm: ConvAlgorithm): void {
  const visit = (m: Module) => {
    if (m instanceof Conv2d) {
      const [, , kh, kw] = m.weight.data.shape;
      const stride1 = m.stride === 1 || (typeof m.stride !== 'number' && m.stride[0] === 1 && m.stride[1] === 1);
      m.algorithm = algorithm === 'winograd' && !(kh === 3 && kw === 3 && stride1) ? 'im2col' : algorithm;
    } else if (m instanceof DiracConv2d) {
      m.algorithm = algorithm === 'winograd' && m.stride !== 1 ? 'im2col' : algorithm;
    }
    for (const [, c] of m.children()) visit(c);
  };
  visit(root);
}
