// Pinning the conv algorithm of every conv in a network.

import type { ConvAlgorithm } from '../ops/conv2d.js';
import type { Module } from './module.js';
import { Conv2d } from './layers.js';
import { describeValue, showText } from '../tensor/untrusted.js';
import { DiracConv2d } from './variants.js';
import { IdentityConv1x1 } from './dbb_layers.js';

/**
 * Sets the forward algorithm of every conv below `root`. 'winograd' applies to the 3×3 stride-1
 * convs and leaves the others (stride 2, 1×1, 1×3, …) on im2col, since no network could run otherwise.
 */
export function setConvAlgorithm(root: Module, algorithm: ConvAlgorithm): void {
  const visit = (m: Module) => {
    if (m instanceof Conv2d) {
      const [, , kh, kw] = m.weight.data.shape;
      const stride1 = m.stride === 1 || (typeof m.stride !== 'number' && m.stride[0] === 1 && m.stride[1] === 1);
      m.algorithm = algorithm === 'winograd' && !(kh === 3 && kw === 3 && stride1) ? 'im2col' : algorithm;
    } else if (m instanceof IdentityConv1x1) {
      m.algorithm = algorithm === 'winograd' ? 'im2col' : algorithm; // 1×1
    } else if (m instanceof DiracConv2d) {
      m.algorithm = algorithm === 'winograd' && m.stride !== 1 ? 'im2col' : algorithm;
    }
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
    const [, , kh, kw] = c.weight.data.shape;
    const s = typeof c.stride === 'number' ? [c.stride, c.stride] : c.stride;
    if (e.algorithm === 'winograd' && (kh !== 3 || kw !== 3 || s[0] !== 1 || s[1] !== 1)) throw new Error(`algorithm plan: '${e.layer}' is ${kh}×${kw} with stride ${s.join('×')}; Winograd needs 3×3 and stride 1`);
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

/** Every Conv2d below `root` with its state-dict prefix, in children order (forward order for a chain). */
export function namedConvsOf(root: Module, prefix = ''): [string, Conv2d][] {
  const out: [string, Conv2d][] = [];
  for (const [n, c] of root.children()) {
    if (c instanceof Conv2d) out.push([prefix + n, c]);
    else out.push(...namedConvsOf(c, `${prefix}${n}.`));
  }
  return out;
}
