// The three spellings of one RepVGG state dict. Each key is (block, branch, leaf); only the words
// differ. Internally everything uses the official names (DingXiaoH/RepVGG's repvgg.py).
//
//   block            official           timm                 MMPretrain
//   stem             stage0             stem                 backbone.stem
//   stage s, blk i   stage{s}.{i}       stages.{s-1}.{i}     backbone.stage_{s}.{i}
//   classifier       linear             head.fc              head.fc
//
//   branch           official           timm                 MMPretrain
//   3×3 conv, BN     rbr_dense.conv/bn  conv_kxk.conv/bn     branch_3x3.conv/norm
//   1×1 conv, BN     rbr_1x1.conv/bn    conv_1x1.conv/bn     branch_1x1.conv/norm
//   identity BN      rbr_identity       identity             branch_norm
//   fused (deploy)   rbr_reparam        reparam_conv         branch_reparam

import type { SafeEntry } from './dtypes.js';
import { showText } from '../tensor/untrusted.js';

export type Dialect = 'official' | 'timm' | 'mmpretrain';
export const DIALECTS: readonly Dialect[] = ['official', 'timm', 'mmpretrain'];

type Block = 'stem' | 'head' | [stage: number, index: number];

const BRANCHES: readonly Record<Dialect, string>[] = [
  { official: 'rbr_dense.conv', timm: 'conv_kxk.conv', mmpretrain: 'branch_3x3.conv' },
  { official: 'rbr_dense.bn', timm: 'conv_kxk.bn', mmpretrain: 'branch_3x3.norm' },
  { official: 'rbr_1x1.conv', timm: 'conv_1x1.conv', mmpretrain: 'branch_1x1.conv' },
  { official: 'rbr_1x1.bn', timm: 'conv_1x1.bn', mmpretrain: 'branch_1x1.norm' },
  { official: 'rbr_identity', timm: 'identity', mmpretrain: 'branch_norm' },
  { official: 'rbr_reparam', timm: 'reparam_conv', mmpretrain: 'branch_reparam' },
];
const LEAVES = new Set(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);

const BLOCK_PATTERNS: Record<Dialect, { stem: string; stage: RegExp; head: string; stageFirst: number }> = {
  official: { stem: 'stage0.', stage: /^stage([1-9]\d*)\.(\d+)\./, head: 'linear.', stageFirst: 1 },
  timm: { stem: 'stem.', stage: /^stages\.(\d+)\.(\d+)\./, head: 'head.fc.', stageFirst: 0 },
  mmpretrain: { stem: 'backbone.stem.', stage: /^backbone\.stage_([1-9]\d*)\.(\d+)\./, head: 'head.fc.', stageFirst: 1 },
};

/** (block, branch, leaf) of a key in `dialect`, or null if the key is not one of its RepVGG keys. */
function parseKey(key: string, d: Dialect): { block: Block; branch: number; leaf: string } | null {
  const p = BLOCK_PATTERNS[d];
  let block: Block, rest: string;
  if (key.startsWith(p.head)) {
    const leaf = key.slice(p.head.length);
    return leaf === 'weight' || leaf === 'bias' ? { block: 'head', branch: -1, leaf } : null;
  }
  if (key.startsWith(p.stem)) {
    block = 'stem';
    rest = key.slice(p.stem.length);
  } else {
    const m = p.stage.exec(key);
    if (m === null) return null;
    block = [Number(m[1]) - p.stageFirst + 1, Number(m[2])];
    rest = key.slice(m[0].length);
  }
  const dot = rest.lastIndexOf('.');
  const leaf = rest.slice(dot + 1);
  const branch = BRANCHES.findIndex((b) => b[d] === rest.slice(0, dot));
  return branch < 0 || !LEAVES.has(leaf) ? null : { block, branch, leaf };
}

function formatKey(k: { block: Block; branch: number; leaf: string }, d: Dialect): string {
  const p = BLOCK_PATTERNS[d];
  if (k.block === 'head') return p.head + k.leaf;
  const prefix = k.block === 'stem' ? p.stem
    : d === 'official' ? `stage${k.block[0]}.${k.block[1]}.`
      : d === 'timm' ? `stages.${k.block[0] - 1}.${k.block[1]}.` : `backbone.stage_${k.block[0]}.${k.block[1]}.`;
  return `${prefix}${BRANCHES[k.branch][d]}.${k.leaf}`;
}

/** A branch's name in a naming: branchName('rbr_reparam', 'timm') = 'reparam_conv'. */
export function branchName(official: string, d: Dialect): string {
  const b = BRANCHES.find((r) => r.official === official);
  if (b === undefined) throw new Error(`no branch '${official}'`);
  return b[d];
}

/** The dialect a state dict's keys are written in, from its top-level names. */
export function detectDialect(keys: Iterable<string>): Dialect {
  const list = [...keys];
  if (list.some((k) => k.startsWith('backbone.'))) return 'mmpretrain';
  if (list.some((k) => k.startsWith('stem.') || k.startsWith('stages.'))) return 'timm';
  if (list.some((k) => /^stage\d+\./.test(k))) return 'official';
  throw new Error(`state dict: not a RepVGG state dict in any known naming (official 'stage0.rbr_dense.conv.weight', timm 'stem.conv_kxk.conv.weight', MMPretrain 'backbone.stem.branch_3x3.conv.weight'); its first keys: ${list.slice(0, 3).map((k) => `'${showText(k)}'`).join(', ') || 'none'}`);
}

/** Rename every key from one dialect to another; a key that is not a RepVGG key of `from` is named. */
export function renameKeys(entries: Map<string, SafeEntry>, from: Dialect, to: Dialect): Map<string, SafeEntry> {
  if (from === to) return entries;
  const out = new Map<string, SafeEntry>();
  for (const [key, e] of entries) {
    const k = parseKey(key, from);
    if (k === null) {
      const why = /(^|\.)se(_layer)?\./.test(key) || key.includes('.se.') ? ' (a squeeze-and-excitation block, which repvgg-ts does not model)' : '';
      throw new Error(`state dict (${from} names): unexpected key '${showText(key)}'${why}`);
    }
    out.set(formatKey(k, to), e);
  }
  return out;
}
