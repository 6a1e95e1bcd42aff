// MobileOne (Vasu et al., CVPR 2023) as apple/ml-mobileone builds it, and as timm's byobnet names it:
//   stage0:    MobileOne block 3×3, stride 2, in → min(64, ⌊64·w₀⌋)
//   stage s:   n_s times [ depthwise 3×3 block (stride 2 first, then 1) → pointwise 1×1 block ],
//              ⌊c_s·w_s⌋ channels, c = 64, 128, 256, 512; SE in the last ⌊n₃/2⌋ of stage 3 and all of stage 4 (S4)
//   head:      global average pool → linear
// Each block is act(SE(Σ_k BN(conv_k×k) + BN(conv_1×1) + BN(x))) (src/nn/families.ts mobileOneBlock);
// deployed, act(SE(conv_k×k(x) + b)) under the key 'reparam_conv', as apple's inference_mode block.

import type { DType } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { describeValue } from '../tensor/untrusted.js';
import type { Module } from './module.js';
import { Conv2d, Linear } from './layers.js';
import { PooledClassifier } from './classifier.js';
import { type BranchBlock, FusedBlock } from './branch_block.js';
import { mobileOneBlock, mobileOneSE, mobileOneSEWidth } from './families.js';
import { type AlgorithmPlanEntry, algorithmPlanOf, namedConvsOf, pinAlgorithmPlan } from './conv_algorithm.js';

/** apple's MobileOne constructor arguments (num_blocks_per_stage, width_multipliers, …), plus the naming. */
export interface MobileOneConfig {
  width_multipliers: readonly number[];
  /** default [2, 8, 10, 1] */
  num_blocks_per_stage?: readonly number[];
  /** the paper's k: k×k conv branches per block (default 1; stage0 always has 1, as upstream) */
  num_conv_branches?: number;
  use_se?: boolean;
  num_classes?: number;
  in_channels?: number;
  /** state-dict names: apple's ('official': stage0, stage1.0, …, linear) or timm's byobnet (stem, stages.0.0, …, head.fc) */
  names?: 'official' | 'timm';
}

export const MOBILEONE_ZOO: Readonly<Record<string, MobileOneConfig>> = {
  'MobileOne-S0': { width_multipliers: [0.75, 1, 1, 2], num_conv_branches: 4 },
  'MobileOne-S1': { width_multipliers: [1.5, 1.5, 2, 2.5] },
  'MobileOne-S2': { width_multipliers: [1.5, 2, 2.5, 4] },
  'MobileOne-S3': { width_multipliers: [2, 2.5, 3, 4] },
  'MobileOne-S4': { width_multipliers: [3, 3.5, 3.5, 4], use_se: true },
};

export interface MobileOneBlockSpec {
  /** state-dict prefix: 'stage1.0' (apple) or 'stages.0.0' (timm) */
  name: string;
  inChannels: number;
  outChannels: number;
  kernelSize: 1 | 3;
  stride: number;
  groups: number;
  /** k×k conv branches */
  branches: number;
  se: boolean;
}

export interface MobileOnePlan {
  names: 'official' | 'timm';
  inChannels: number;
  numClasses: number;
  blocks: MobileOneBlockSpec[];
}

/** The classifier's state-dict prefix in each naming. */
export const MOBILEONE_HEAD = { official: 'linear', timm: 'head.fc' } as const;

/** The block prefixes: stage0 / stem, then stage s's j-th block (dw and pw blocks counted alike). */
export function mobileOneBlockName(names: 'official' | 'timm', stage: number, j: number): string {
  if (stage === 0) return names === 'timm' ? 'stem' : 'stage0';
  return names === 'timm' ? `stages.${stage - 1}.${j}` : `stage${stage}.${j}`;
}

/** Parameters a config may build before it is refused (MobileOne-S4 has 15 M deployed, ~20 M to train). */
const MAX_PARAMETERS = 2e9;

export function validateMobileOneConfig(cfg: MobileOneConfig): void {
  const bad = (why: string): never => { throw new Error(`MobileOne config: ${why}`); };
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) bad(`expected an object with width_multipliers, got ${describeValue(cfg)}`);
  const wm: unknown = cfg.width_multipliers, nb: unknown = cfg.num_blocks_per_stage ?? [2, 8, 10, 1];
  if (!Array.isArray(wm) || wm.length !== 4 || !wm.every((w) => typeof w === 'number' && w > 0 && Number.isFinite(w))) bad(`width_multipliers must be 4 positive numbers, got ${describeValue(wm)}`);
  if (!Array.isArray(nb) || nb.length !== 4 || !nb.every((n) => Number.isInteger(n) && n >= 1)) bad(`num_blocks_per_stage must be 4 positive integers, got ${describeValue(nb)}`);
  for (const [k, v] of [['num_conv_branches', cfg.num_conv_branches], ['num_classes', cfg.num_classes], ['in_channels', cfg.in_channels]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) bad(`${k} must be a positive integer, got ${describeValue(v)}`);
  }
  if (cfg.use_se !== undefined && typeof cfg.use_se !== 'boolean') bad(`use_se must be true or false, got ${describeValue(cfg.use_se)}`);
  if (cfg.names !== undefined && cfg.names !== 'official' && cfg.names !== 'timm') bad(`names must be 'official' or 'timm', got ${describeValue(cfg.names)}`);
  const widths = [64, 128, 256, 512].map((c, s) => Math.trunc(c * (wm as number[])[s]));
  const stem = Math.min(64, widths[0]);
  if (stem < 1 || widths.some((w) => w < 1)) bad(`width_multipliers ${describeValue(wm)} leave a stage with no channels (c·w truncates to 0)`);
  // estimated before anything is allocated: per dw+pw pair k·(9 + c_in·c_out) weights and the 1×1 scale branch
  const k = cfg.num_conv_branches ?? 1;
  let params = (cfg.in_channels ?? 3) * stem * 10, cin = stem;
  (nb as number[]).forEach((n, s) => { params += n * ((k * 9 + 1) * Math.max(cin, widths[s]) + (k + 1) * Math.max(cin, widths[s]) * widths[s]); cin = widths[s]; });
  params += (cfg.num_classes ?? 1000) * (widths[3] + 1);
  if (!(params <= MAX_PARAMETERS)) bad(`it would need about ${params.toExponential(2)} parameters (widths ${widths.join('/')}); refusing more than ${MAX_PARAMETERS.toExponential(0)}`);
}

/** apple's MobileOne layout (_make_stage): a depthwise 3×3 block then a pointwise 1×1 block per unit. */
export function mobileOnePlan(cfg: MobileOneConfig): MobileOnePlan {
  validateMobileOneConfig(cfg);
  const names = cfg.names ?? 'official';
  const nb = cfg.num_blocks_per_stage ?? [2, 8, 10, 1];
  const k = cfg.num_conv_branches ?? 1;
  const inChannels = cfg.in_channels ?? 3;
  let planes = Math.min(64, Math.trunc(64 * cfg.width_multipliers[0]));
  const blocks: MobileOneBlockSpec[] = [{ name: mobileOneBlockName(names, 0, 0), inChannels, outChannels: planes, kernelSize: 3, stride: 2, groups: 1, branches: 1, se: false }];
  [64, 128, 256, 512].forEach((c, i) => {
    const out = Math.trunc(c * cfg.width_multipliers[i]), n = nb[i];
    const seBlocks = cfg.use_se === true ? (i === 2 ? Math.floor(n / 2) : i === 3 ? n : 0) : 0;
    for (let u = 0; u < n; u++) {
      const se = u >= n - seBlocks;
      blocks.push({ name: mobileOneBlockName(names, i + 1, 2 * u), inChannels: planes, outChannels: planes, kernelSize: 3, stride: u === 0 ? 2 : 1, groups: planes, branches: k, se });
      blocks.push({ name: mobileOneBlockName(names, i + 1, 2 * u + 1), inChannels: planes, outChannels: out, kernelSize: 1, stride: 1, groups: 1, branches: k, se });
      planes = out;
    }
  });
  return { names, inChannels, numClasses: cfg.num_classes ?? 1000, blocks };
}

export interface MobileOneOptions {
  dtype?: DType;
  seed?: number;
  rng?: Rng;
  /** the deploy form: one conv with bias per block ('reparam_conv'), SE and ReLU kept */
  deploy?: boolean;
}

export class MobileOne extends PooledClassifier {
  readonly plan: MobileOnePlan;
  /** in forward order, named as plan.blocks */
  readonly blocks: (BranchBlock | FusedBlock)[];
  readonly linear: Linear;

  constructor(plan: MobileOnePlan, opts: MobileOneOptions = {}) {
    super();
    this.plan = plan;
    const dtype = opts.dtype ?? 'float32', rng = opts.rng ?? new Rng(opts.seed ?? 0);
    this.blocks = plan.blocks.map((b) => {
      if (opts.deploy !== true) return mobileOneBlock(b.inChannels, b.outChannels, { kernelSize: b.kernelSize, stride: b.stride, groups: b.groups, branches: b.branches, se: b.se, names: plan.names, dtype, rng });
      const conv = new Conv2d(b.inChannels, b.outChannels, b.kernelSize, { stride: b.stride, padding: (b.kernelSize - 1) / 2, groups: b.groups, bias: true, dtype, rng });
      const se = b.se ? mobileOneSE(b.outChannels, plan.names, dtype, rng) : null;
      return new FusedBlock(conv, { convName: 'reparam_conv', se, seName: plan.names === 'timm' ? 'attn' : 'se', activation: 'relu' });
    });
    this.linear = new Linear(plan.blocks[plan.blocks.length - 1].outChannels, plan.numClasses, { dtype, rng });
  }

  static fromConfig(cfg: MobileOneConfig, opts: MobileOneOptions = {}): MobileOne {
    return new MobileOne(mobileOnePlan(cfg), opts);
  }

  get deploy(): boolean {
    return this.blocks[0] instanceof FusedBlock;
  }

  override children(): [string, Module][] {
    return [...this.blocks.map((b, i): [string, Module] => [this.plan.blocks[i].name, b]), [MOBILEONE_HEAD[this.plan.names], this.linear]];
  }

  protected features(): readonly Module[] {
    return this.blocks;
  }

  /** Every conv with its state-dict prefix, in forward order (the SE's 1×1 convs included). */
  namedConvs(): [string, Conv2d][] {
    return namedConvsOf(this);
  }

  algorithmPlan(): AlgorithmPlanEntry[] {
    return algorithmPlanOf(this.namedConvs(), 'MobileOne');
  }

  setAlgorithmPlan(plan: readonly AlgorithmPlanEntry[]): this {
    pinAlgorithmPlan(this.namedConvs(), plan);
    return this;
  }
}

export interface MobileOneCounts {
  params: { train: number; deploy: number };
  /** multiply-accumulates of the deploy model: convolutions, SE's two 1×1 convs, the linear head */
  macs: number;
  stages: { stage: string; blocks: number; outChannels: number; outSize: number; trainParams: number; deployParams: number; macs: number }[];
}

/** Parameter and MAC counts for one inputSize×inputSize image (the MobileOne paper's Table 8 columns). */
export function countMobileOne(plan: MobileOnePlan, inputSize = 224): MobileOneCounts {
  let size = inputSize, train = 0, deploy = 0, macs = 0;
  const stages: MobileOneCounts['stages'] = [];
  for (const b of plan.blocks) {
    const stage = b.name === 'stem' || b.name === 'stage0' ? b.name : b.name.slice(0, b.name.lastIndexOf('.'));
    let row = stages[stages.length - 1];
    if (row === undefined || row.stage !== stage) stages.push(row = { stage, blocks: 0, outChannels: 0, outSize: 0, trainParams: 0, deployParams: 0, macs: 0 });
    const k = b.kernelSize, pad = (k - 1) / 2;
    size = Math.floor((size + 2 * pad - k) / b.stride) + 1;
    const wk = (k * k * b.inChannels * b.outChannels) / b.groups, w1 = (b.inChannels * b.outChannels) / b.groups;
    const hidden = mobileOneSEWidth(b.outChannels, plan.names);
    const se = b.se ? 2 * b.outChannels * hidden + hidden + b.outChannels : 0;
    const identity = b.inChannels === b.outChannels && b.stride === 1;
    const tp = b.branches * (wk + 2 * b.outChannels) + (k > 1 ? w1 + 2 * b.outChannels : 0) + (identity ? 2 * b.outChannels : 0) + se;
    const dp = wk + b.outChannels + se;
    const m = wk * size * size + (b.se ? 2 * b.outChannels * hidden : 0);
    row.blocks++;
    row.trainParams += tp;
    row.deployParams += dp;
    row.macs += m;
    row.outChannels = b.outChannels;
    row.outSize = size;
    train += tp;
    deploy += dp;
    macs += m;
  }
  const feat = plan.blocks[plan.blocks.length - 1].outChannels, head = feat * plan.numClasses;
  stages.push({ stage: MOBILEONE_HEAD[plan.names], blocks: 1, outChannels: plan.numClasses, outSize: 1, trainParams: head + plan.numClasses, deployParams: head + plan.numClasses, macs: head });
  return { params: { train: train + head + plan.numClasses, deploy: deploy + head + plan.numClasses }, macs: macs + head, stages };
}

/**
 * An upper estimate of one forward pass's memory (bytes): per block its input, every branch's output
 * and the im2col columns (N·C/g·k²·Ho·Wo), in the given element size.
 */
export function mobileOneForwardBytes(plan: MobileOnePlan, N: number, H: number, W: number, elementBytes: number): number {
  let worst = 0, h = H, w = W;
  for (const b of plan.blocks) {
    const pad = (b.kernelSize - 1) / 2;
    const ho = Math.floor((h + 2 * pad - b.kernelSize) / b.stride) + 1, wo = Math.floor((w + 2 * pad - b.kernelSize) / b.stride) + 1;
    worst = Math.max(worst, N * (b.inChannels * h * w + (b.branches + 3) * b.outChannels * ho * wo + (b.inChannels / b.groups) * b.kernelSize ** 2 * ho * wo));
    h = ho;
    w = wo;
  }
  return worst * elementBytes;
}

/** The zoo's name for 'S0', 'MobileOne-S0' or 'mobileone-s0', or null if it names no MobileOne. */
export function mobileOneZooName(name: string): string | null {
  return Object.keys(MOBILEONE_ZOO).find((k) => k.toLowerCase() === name.toLowerCase() || k.slice(10).toLowerCase() === name.toLowerCase()) ?? null;
}

/** The zoo MobileOne a plan is (every block's channels, kernel, stride, groups, branches and SE), or null. */
export function mobileOneZooNameOf(plan: MobileOnePlan): string | null {
  const same = (a: MobileOneBlockSpec, b: MobileOneBlockSpec) => a.inChannels === b.inChannels && a.outChannels === b.outChannels && a.kernelSize === b.kernelSize &&
    a.stride === b.stride && a.groups === b.groups && a.branches === b.branches && a.se === b.se;
  for (const [name, cfg] of Object.entries(MOBILEONE_ZOO)) {
    const z = mobileOnePlan({ ...cfg, names: plan.names, num_classes: plan.numClasses, in_channels: plan.inChannels });
    if (z.blocks.length === plan.blocks.length && z.blocks.every((b, i) => same(b, plan.blocks[i]))) return name;
  }
  return null;
}
