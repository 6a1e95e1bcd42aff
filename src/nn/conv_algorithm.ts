// Pinning the conv algorithm of every conv in a network.

import { type ConvAlgorithm, winogradRule } from '../ops/conv2d.js';
import type { Module } from './module.js';
import { Conv2d } from './layers.js';
import { convCouldSplit } from '../backend/threads.js';
import { describeValue, showText } from '../tensor/untrusted.js';

// Every layer that runs a conv keeps its algorithm in an `algorithm` field (Conv2d, DiracConv2d,
// IdentityConv1x1): found by that, so this file names no layer class but Conv2d.
function runsConv(m: Module): m is Module & { algorithm: ConvAlgorithm } {
  return 'algorithm' in m;
}

/**
 * Sets the algorithm of every conv below `root`. 'winograd' runs Winograd where it applies (ops'
 * winogradApplies) and im2col elsewhere (stride 2, 1×1, 1×3, dilated, …): each conv resolves that
 * itself when it runs, by the one rule.
 */
export function setConvAlgorithm(root: Module, algorithm: ConvAlgorithm): void {
  const visit = (m: Module) => {
    if (runsConv(m)) m.algorithm = algorithm;
    for (const [, c] of m.children()) visit(c);
  };
  visit(root);
}

/** One conv's algorithm in a plan (a model's algorithmPlan / setAlgorithmPlan; JSON as is). */
export interface AlgorithmPlanEntry {
  layer: string;
  algorithm: 'direct' | 'im2col' | 'winograd';
  winogradTile?: 2 | 4;
}

/**
 * What each conv ran in the last forward ('auto' resolved to what it measured), so a run can be
 * reported, saved and pinned with pinAlgorithmPlan. Throws before the first forward.
 */
export function algorithmPlanOf(convs: readonly [string, Conv2d][], model: string): AlgorithmPlanEntry[] {
  return convs.map(([layer, c]) => {
    if (c.used === null) throw new Error(`${model}.algorithmPlan: '${layer}' has not run yet; call forward first`);
    return c.used.algorithm === 'winograd' ? { layer, algorithm: 'winograd', winogradTile: c.used.winogradTile } : { layer, algorithm: c.used.algorithm };
  });
}

/** Pin every conv to the plan's algorithm (every conv named once): no timing decides anything afterwards. */
export function pinAlgorithmPlan(named: readonly [string, Conv2d][], plan: readonly AlgorithmPlanEntry[]): void {
  const convs = new Map(named);
  if (!Array.isArray(plan)) throw new Error('algorithm plan: expected an array of { layer, algorithm, winogradTile? }');
  const seen = new Set<string>();
  for (const [i, e] of plan.entries()) {
    // a plan comes from a file: every field is checked for its type before it is used or shown
    if (e === null || typeof e !== 'object' || typeof e.layer !== 'string') throw new Error(`algorithm plan: entry ${i} is ${describeValue(e)}; expected { layer: string, algorithm, winogradTile? }`);
    const c = convs.get(e.layer);
    if (c === undefined) throw new Error(`algorithm plan: no conv '${showText(e.layer)}' in this model (its first: '${[...convs.keys()][0]}')`);
    if (!['direct', 'im2col', 'winograd'].includes(e.algorithm)) throw new Error(`algorithm plan: '${e.layer}' has algorithm ${describeValue(e.algorithm)} (expected direct, im2col or winograd)`);
    if (e.algorithm === 'winograd' && !c.winogradApplies) {
      const [, , kh, kw] = c.weight.data.shape;
      throw new Error(`algorithm plan: '${e.layer}' is ${kh}×${kw} with stride ${String(c.stride)}, dilation ${String(c.dilation)}, padding ${JSON.stringify(c.padding)}; Winograd needs a ${winogradRule}`);
    }
    if (e.algorithm === 'winograd' && e.winogradTile !== 2 && e.winogradTile !== 4) throw new Error(`algorithm plan: '${e.layer}' needs winogradTile 2 or 4`);
    seen.add(e.layer);
  }
  const missing = [...convs.keys()].filter((k) => !seen.has(k));
  if (missing.length > 0) throw new Error(`algorithm plan: no entry for '${missing[0]}'${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`);
  for (const e of plan) {
    const c = convs.get(e.layer)!;
    c.algorithm = e.algorithm;
    if (e.algorithm === 'winograd') c.winogradTile = e.winogradTile!;
  }
}

/** Whether `m`, or a Conv2d under it, could split among the pool's threads (by its last forward's
 * multiply-adds: see convCouldSplit). */
export function anyConvSplits(m: Module): boolean {
  if (m instanceof Conv2d) return convCouldSplit(m.lastMacs());
  return m.children().some(([, c]) => anyConvSplits(c));
}

/** Every Conv2d below `root` with its state-dict prefix, in children order (forward order for a chain). */
export function namedConvsOf(root: Module, prefix = ''): [string, Conv2d][] {
  const out: [string, Conv2d][] = [];
  for (const [n, c] of root.children()) {
    if (c instanceof Conv2d) out.push([prefix + n, c]);
    else out.push(...namedConvsOf(c, `${prefix}${n}.`));
  }
  return out;
}
