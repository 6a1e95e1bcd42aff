// RepVGG architecture: the public constructor's arguments, the model zoo, and the per-block plan.

import { describeValue, showText } from '../tensor/untrusted.js';

export interface RepVGGConfig {
  num_blocks: readonly number[];
  width_multiplier: readonly number[];
  /** layer index (1-based, stage1's first block is layer 1) → groups */
  override_groups_map?: Readonly<Record<string, number>>;
  num_classes?: number;
  in_channels?: number;
  /** Ablation switches (not in the public constructor): keep the identity / 1×1 branches. */
  use_identity?: boolean;
  use_1x1?: boolean;
}

export interface BlockSpec {
  inChannels: number;
  outChannels: number;
  stride: number;
  groups: number;
  /** identity BN branch (only possible when in = out and stride = 1) */
  identity: boolean;
  /** 1×1 conv + BN branch */
  pointwise: boolean;
}

export interface RepVGGPlan {
  inChannels: number;
  numClasses: number;
  /** stages[0] = [stage0 block], stages[1..4] = the four stages */
  stages: BlockSpec[][];
}

const GROUPWISE_LAYERS = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26];
const groupsMap = (g: number): Record<string, number> => Object.fromEntries(GROUPWISE_LAYERS.map((l) => [String(l), g]));

const A_BLOCKS = [2, 4, 14, 1];
const B_BLOCKS = [4, 6, 16, 1];

export const ZOO: Readonly<Record<string, RepVGGConfig>> = {
  'RepVGG-A0': { num_blocks: A_BLOCKS, width_multiplier: [0.75, 0.75, 0.75, 2.5] },
  'RepVGG-A1': { num_blocks: A_BLOCKS, width_multiplier: [1, 1, 1, 2.5] },
  'RepVGG-A2': { num_blocks: A_BLOCKS, width_multiplier: [1.5, 1.5, 1.5, 2.75] },
  'RepVGG-B0': { num_blocks: B_BLOCKS, width_multiplier: [1, 1, 1, 2.5] },
  'RepVGG-B1': { num_blocks: B_BLOCKS, width_multiplier: [2, 2, 2, 4] },
  'RepVGG-B1g2': { num_blocks: B_BLOCKS, width_multiplier: [2, 2, 2, 4], override_groups_map: groupsMap(2) },
  'RepVGG-B1g4': { num_blocks: B_BLOCKS, width_multiplier: [2, 2, 2, 4], override_groups_map: groupsMap(4) },
  'RepVGG-B2': { num_blocks: B_BLOCKS, width_multiplier: [2.5, 2.5, 2.5, 5] },
  'RepVGG-B2g4': { num_blocks: B_BLOCKS, width_multiplier: [2.5, 2.5, 2.5, 5], override_groups_map: groupsMap(4) },
  'RepVGG-B3': { num_blocks: B_BLOCKS, width_multiplier: [3, 3, 3, 5] },
  'RepVGG-B3g4': { num_blocks: B_BLOCKS, width_multiplier: [3, 3, 3, 5], override_groups_map: groupsMap(4) },
};

/** The zoo's name for 'A0', 'RepVGG-A0' or 'repvgg-a0': 'RepVGG-A0'. */
export function zooName(name: string): string {
  const key = Object.keys(ZOO).find((k) => k.toLowerCase() === name.toLowerCase() || k.slice(7).toLowerCase() === name.toLowerCase());
  if (key === undefined) throw new Error(`unknown architecture '${name}' (known: ${Object.keys(ZOO).join(', ')})`);
  return key;
}

export function zooConfig(name: string): RepVGGConfig {
  return ZOO[zooName(name)];
}

/** Parameters a config may need before repvgg-ts refuses it (float64: 8 bytes each); RepVGG-B3 has 0.12 G. */
const MAX_PARAMETERS = 2e9;

export function validateConfig(cfg: RepVGGConfig): void {
  const bad = (why: string): never => { throw new Error(`RepVGG config: ${why}`); };
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) bad(`expected an object with num_blocks and width_multiplier, got ${cfg === null ? 'null' : Array.isArray(cfg) ? 'an array' : typeof cfg}`);
  if (!Array.isArray(cfg.num_blocks) || cfg.num_blocks.length !== 4 || !cfg.num_blocks.every((n) => Number.isInteger(n) && n >= 1)) {
    bad(`num_blocks must be 4 positive integers, got ${describeValue(cfg.num_blocks)}`);
  }
  if (!Array.isArray(cfg.width_multiplier) || cfg.width_multiplier.length !== 4 || !cfg.width_multiplier.every((w) => typeof w === 'number' && w > 0)) {
    bad(`width_multiplier must be 4 positive numbers, got ${describeValue(cfg.width_multiplier)}`);
  }
  const groupsMap: unknown = cfg.override_groups_map ?? {};
  if (groupsMap === null || typeof groupsMap !== 'object' || Array.isArray(groupsMap)) bad(`override_groups_map must be an object of layer → groups, got ${describeValue(groupsMap)}`);
  for (const [k, v] of Object.entries(groupsMap as Record<string, unknown>)) {
    if (!/^\d+$/.test(k) || !Number.isInteger(v) || (v as number) < 1) bad(`override_groups_map entry '${showText(k, 40)}': ${describeValue(v)} is not layer → positive integer groups`);
  }
  for (const [k, v] of [['num_classes', cfg.num_classes], ['in_channels', cfg.in_channels]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) bad(`${k} must be a positive integer, got ${describeValue(v)}`);
  }
  const stem = Math.min(64, Math.trunc(64 * cfg.width_multiplier[0]));
  const narrow = [64, 128, 256, 512].findIndex((w, s) => Math.trunc(w * cfg.width_multiplier[s]) < 1);
  if (stem < 1 || narrow >= 0) bad(`width_multiplier ${describeValue(cfg.width_multiplier)} leaves stage ${stem < 1 ? 0 : narrow + 1} with no channels (64·2^s·w truncates to 0)`);
  // Estimate before anything is allocated: per block at most 9 + 1 weights per (in, out) channel pair
  // (3×3 and 1×1, groups 1) and a few BN vectors; the classifier num_classes × last width.
  const widths = [64, 128, 256, 512].map((w, s) => Math.trunc(w * cfg.width_multiplier[s]));
  let params = (cfg.in_channels ?? 3) * Math.min(64, widths[0]) * 10;
  let cin = Math.min(64, widths[0]);
  cfg.num_blocks.forEach((n, s) => { params += n * 10 * widths[s] * Math.max(cin, widths[s]) + n * 6 * widths[s]; cin = widths[s]; });
  params += (cfg.num_classes ?? 1000) * (widths[3] + 1);
  if (!(params <= MAX_PARAMETERS)) {
    bad(`it would need up to ${params.toExponential(2)} parameters (${(params * 4 / 2 ** 30).toFixed(1)} GiB in float32, num_blocks ${describeValue(cfg.num_blocks)}, widths ${widths.join('/')}, ${cfg.num_classes ?? 1000} classes); refusing more than ${MAX_PARAMETERS.toExponential(0)}`);
  }
}

/** The public RepVGG constructor's layout: stage0 (one stride-2 block), then stages whose first block has stride 2. */
export function planFromConfig(cfg: RepVGGConfig): RepVGGPlan {
  validateConfig(cfg);
  const wm = cfg.width_multiplier;
  const inChannels = cfg.in_channels ?? 3;
  const useId = cfg.use_identity ?? true;
  const use1x1 = cfg.use_1x1 ?? true;
  const groupsOf = (layer: number) => cfg.override_groups_map?.[String(layer)] ?? 1;
  let inPlanes = Math.min(64, Math.trunc(64 * wm[0]));
  const block = (cin: number, cout: number, stride: number, groups: number): BlockSpec => {
    if (cin % groups !== 0 || cout % groups !== 0) throw new Error(`RepVGG config: ${cin}→${cout} channels are not divisible by groups ${groups}`);
    return { inChannels: cin, outChannels: cout, stride, groups, identity: useId && cin === cout && stride === 1, pointwise: use1x1 };
  };
  const stages: BlockSpec[][] = [[block(inChannels, inPlanes, 2, 1)]];
  const widths = [64, 128, 256, 512];
  let layer = 1;
  for (let s = 0; s < 4; s++) {
    const planes = Math.trunc(widths[s] * wm[s]);
    const blocks: BlockSpec[] = [];
    for (let i = 0; i < cfg.num_blocks[s]; i++) {
      blocks.push(block(inPlanes, planes, i === 0 ? 2 : 1, groupsOf(layer)));
      inPlanes = planes;
      layer++;
    }
    stages.push(blocks);
  }
  return { inChannels, numClasses: cfg.num_classes ?? 1000, stages };
}

export interface StageCount { stage: string; blocks: number; outChannels: number; outSize: number; trainParams: number; deployParams: number; macs: number }

export interface Counts {
  params: { train: number; deploy: number };
  /** multiply-accumulates of the deploy model (convolutions and the linear head) */
  macs: number;
  /** stride-1 3×3 layers counted as Winograd F(2×2,3×3) does (MACs / 2.25), the rest directly */
  winogradMuls: number;
  stages: StageCount[];
}

/** Parameter and operation counts for one image of size inputSize×inputSize. */
export function countPlan(plan: RepVGGPlan, inputSize = 224): Counts {
  let size = inputSize;
  let train = 0, deploy = 0, macs = 0, wino = 0;
  const stages: StageCount[] = [];
  plan.stages.forEach((blocks, s) => {
    const row: StageCount = { stage: `stage${s}`, blocks: blocks.length, outChannels: 0, outSize: 0, trainParams: 0, deployParams: 0, macs: 0 };
    for (const b of blocks) {
      size = Math.floor((size + 2 - 3) / b.stride) + 1;
      const k3 = (b.outChannels * b.inChannels * 9) / b.groups;
      const k1 = (b.outChannels * b.inChannels) / b.groups;
      const tp = k3 + 2 * b.outChannels + (b.pointwise ? k1 + 2 * b.outChannels : 0) + (b.identity ? 2 * b.inChannels : 0);
      const dp = k3 + b.outChannels;
      const m = k3 * size * size;
      row.trainParams += tp;
      row.deployParams += dp;
      row.macs += m;
      wino += b.stride === 1 ? m / 2.25 : m;
      row.outChannels = b.outChannels;
      row.outSize = size;
    }
    train += row.trainParams;
    deploy += row.deployParams;
    macs += row.macs;
    stages.push(row);
  });
  const last = plan.stages[plan.stages.length - 1];
  const feat = last[last.length - 1].outChannels;
  const head = feat * plan.numClasses;
  stages.push({ stage: 'linear', blocks: 1, outChannels: plan.numClasses, outSize: 1, trainParams: head + plan.numClasses, deployParams: head + plan.numClasses, macs: head });
  train += head + plan.numClasses;
  deploy += head + plan.numClasses;
  macs += head;
  wino += head;
  return { params: { train, deploy }, macs, winogradMuls: wino, stages };
}

/** The zoo architecture a plan has (channels, strides and groups of every block), or null. */
export function zooNameOf(plan: RepVGGPlan): string | null {
  const sameBlocks = (a: BlockSpec[][], b: BlockSpec[][]) => a.length === b.length && a.every((s, i) => s.length === b[i].length &&
    s.every((x, j) => x.inChannels === b[i][j].inChannels && x.outChannels === b[i][j].outChannels && x.stride === b[i][j].stride && x.groups === b[i][j].groups));
  for (const [name, cfg] of Object.entries(ZOO)) {
    if (sameBlocks(plan.stages, planFromConfig({ ...cfg, num_classes: plan.numClasses, in_channels: plan.inChannels }).stages)) return name;
  }
  return null;
}

/**
 * An upper estimate of the memory one forward pass needs (bytes): the largest block's input, output
 * and im2col columns at once (N·C/g·9·Ho·Wo), in the given element size. Used to refuse, with the
 * figure, inputs that could not run.
 */
export function forwardBytes(plan: RepVGGPlan, N: number, H: number, W: number, elementBytes: number): number {
  let worst = 0, h = H, w = W;
  for (const b of plan.stages.flat()) {
    const ho = Math.floor((h - 1) / b.stride) + 1, wo = Math.floor((w - 1) / b.stride) + 1;
    worst = Math.max(worst, N * (b.inChannels * h * w + b.outChannels * ho * wo + (b.inChannels / b.groups) * 9 * ho * wo));
    h = ho;
    w = wo;
  }
  return worst * elementBytes;
}
