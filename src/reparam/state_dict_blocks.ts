// Fuse the Rep-blocks of any network in its state dict: find each block by its key pattern at any
// prefix, infer its shape from the weights, build the family's block (src/nn/families.ts), load its
// keys strictly, fuse it with the one fuser and write the family's deploy keys in their place. Every
// other key is passed through untouched. What keys cannot say is refused with the prefix, never
// guessed:
//   - BN eps is not in a state dict. Each naming has its upstream's default (YOLOv7, Ultralytics and
//     YOLOv6 train with 1e-3, MobileOne with PyTorch's 1e-5), but RepVGG's rbr_dense.conv/rbr_1x1.conv
//     names are also YOLOv6's RepVGGBlock's (1e-5 vs 1e-3): those blocks need `eps`.
//   - QARepVGG has a parameter-free identity branch when in = out and stride 1; stride is not in a
//     state dict, so a QARepVGG block with in = out is refused.
//   - groups: from the identity BN when there is one (in = out); without an identity branch the fused
//     kernel is the same for any groups (each branch's kernel has the same (F, C/g, k, k) shape).
//     DBB's 1×1→k×k branch merges within groups, so its groups come from that branch's shapes.
//   - A block inside another's branches is the outer block's: FastViT's RepMixer holds a whole
//     MobileOne block (mixer.), fused into the RepMixer's one conv, never on its own.
//   - RepCPE is a depthwise conv with bias under a plain name (apple's pe, timm's pos_enc), so it is
//     recognised only where FastViT puts it: apple's network.N., timm's …pos_emb.; anywhere else a
//     'pe' conv is an ordinary layer and passes through.

import type { SafeEntry } from '../io/safetensors.js';
import { loadStateDict, stateDict } from '../io/state_dict.js';
import { type FamilySpec, deployKey, familyBlock } from '../nn/families.js';
import { castKernelBias } from './kernels.js';
import { deployBlock } from './branches.js';
import { fuseLinearBranches } from './fuse.js';
import { showText } from '../tensor/untrusted.js';

const BN = ['weight', 'bias', 'running_mean', 'running_var'];

/** One naming of one family: the k×k conv weight that anchors it, and the branch roots it owns. */
interface Pattern {
  label: string;
  family: FamilySpec['family'];
  names: string;
  anchor: string;
  /** key prefixes (relative to the block) that belong to the block: any key under them must load */
  roots: string[];
  /** the BN eps upstream trains with, or null: ambiguous, must be given */
  eps: number | null;
  /** key prefixes (relative) of blocks nested in this one's branches: found there, they are this block's */
  inner?: string[];
  /** decides the spec from the block's keys (relative), their shapes and the block's prefix, or says
   * why not; null: the keys are not this pattern's block at all (they pass through) */
  spec(has: (k: string) => boolean, shape: (k: string) => readonly number[], prefix: string): Omit<FamilySpec, 'eps' | 'dtype'> | string | null;
}

const bnOf = (has: (k: string) => boolean, p: string) => BN.every((s) => has(`${p}.${s}`));

/** in and groups: from the identity's BN (in = out = F, groups = F / (C/g)), else C/g with groups 1. */
function inAndGroups(F: number, Cg: number, identity: boolean): { in: number; groups: number } | string {
  if (!identity) return { in: Cg, groups: 1 };
  if (F % Cg !== 0) return `an identity branch with ${F} output channels but ${Cg} input channels per group`;
  return { in: F, groups: F / Cg };
}

const PATTERNS: Pattern[] = [
  {
    label: 'RepVGG / YOLOv6 RepVGGBlock', family: 'repvgg', names: 'official', anchor: 'rbr_dense.conv.weight', roots: ['rbr_dense.', 'rbr_1x1.', 'rbr_identity.', 'se.'], eps: null,
    spec(has, shape) {
      if (!has('rbr_1x1.conv.weight')) return 'no rbr_1x1.conv.weight';
      const [F, Cg, k] = shape('rbr_dense.conv.weight');
      const g = inAndGroups(F, Cg, has('rbr_identity.weight'));
      return typeof g === 'string' ? g : { family: 'repvgg', out: F, kernelSize: k, stride: 1, ...g, se: has('se.down.weight'), names: 'official' };
    },
  },
  {
    label: 'QARepVGG (YOLOv6)', family: 'qarepvgg', names: 'yolov6', anchor: 'rbr_dense.conv.weight', roots: ['rbr_dense.', 'rbr_1x1.', 'bn.'], eps: 1e-3,
    spec(has, shape) {
      if (!has('rbr_1x1.weight') || !bnOf(has, 'bn')) return 'no rbr_1x1.weight and bn after the sum';
      const [F, Cg, k] = shape('rbr_dense.conv.weight');
      if (F === Cg) return 'in = out channels: its parameter-free identity branch exists only at stride 1, which a state dict does not record';
      return { family: 'qarepvgg', in: Cg, out: F, kernelSize: k, stride: 1, groups: 1, names: 'yolov6' };
    },
  },
  {
    label: 'RepConv (YOLOv7)', family: 'repconv', names: 'yolov7', anchor: 'rbr_dense.0.weight', roots: ['rbr_dense.', 'rbr_1x1.', 'rbr_identity.'], eps: 1e-3,
    spec(has, shape) {
      if (!has('rbr_1x1.0.weight') || !bnOf(has, 'rbr_dense.1') || !bnOf(has, 'rbr_1x1.1')) return 'not all of rbr_dense.1, rbr_1x1.0 and rbr_1x1.1';
      const [F, Cg, k] = shape('rbr_dense.0.weight');
      const identity = has('rbr_identity.weight');
      const g = inAndGroups(F, Cg, identity);
      return typeof g === 'string' ? g : { family: 'repconv', out: F, kernelSize: k, stride: 1, ...g, identity, names: 'yolov7' };
    },
  },
  {
    label: 'RepConv (Ultralytics)', family: 'repconv', names: 'ultralytics', anchor: 'conv1.conv.weight', roots: ['conv1.', 'conv2.', 'bn.'], eps: 1e-3,
    spec(has, shape) {
      if (!has('conv2.conv.weight') || !bnOf(has, 'conv1.bn') || !bnOf(has, 'conv2.bn')) return 'not all of conv1.bn, conv2.conv and conv2.bn';
      const [F, Cg, k, kw] = shape('conv1.conv.weight');
      const [F2, Cg2, k2, kw2] = shape('conv2.conv.weight');
      if (k < 3 || k !== kw || k2 !== 1 || kw2 !== 1 || F2 !== F || Cg2 !== Cg) return `conv1 ${F}×${Cg}×${k}×${kw} and conv2 ${F2}×${Cg2}×${k2}×${kw2} are not a k×k conv and a 1×1 conv of the same channels`;
      const identity = bnOf(has, 'bn');
      const g = inAndGroups(F, Cg, identity);
      return typeof g === 'string' ? g : { family: 'repconv', out: F, kernelSize: k, stride: 1, ...g, identity, names: 'ultralytics' };
    },
  },
  {
    // groups from the 1×1→k×k branch: IdentityBasedConv1x1 is (C, C/g, 1, 1), else conv2 is (F, internal/g, k, k)
    label: 'DBB', family: 'dbb', names: 'official', anchor: 'dbb_origin.conv.weight', roots: ['dbb_origin.', 'dbb_1x1.', 'dbb_avg.', 'dbb_1x1_kxk.'], eps: 1e-5,
    spec(has, shape) {
      const [F, Cg, k] = shape('dbb_origin.conv.weight');
      const id = has('dbb_1x1_kxk.idconv1.weight');
      if (!id && !(has('dbb_1x1_kxk.conv1.weight') && has('dbb_1x1_kxk.conv2.weight'))) return 'no dbb_1x1_kxk.idconv1 or conv1 and conv2';
      if (!has('dbb_avg.avgbn.weight')) return 'no dbb_avg.avgbn';
      let groups: number, internal: number;
      if (id) {
        const [C, idCg] = shape('dbb_1x1_kxk.idconv1.weight');
        if (idCg !== Cg || C % Cg !== 0) return `dbb_1x1_kxk.idconv1 is ${C}×${idCg}, not (in, ${Cg}) like dbb_origin`;
        [groups, internal] = [C / Cg, C];
      } else {
        internal = shape('dbb_1x1_kxk.conv1.weight')[0];
        const perGroup = shape('dbb_1x1_kxk.conv2.weight')[1];
        if (perGroup < 1 || internal % perGroup !== 0) return `dbb_1x1_kxk.conv1 gives ${internal} channels but conv2 reads ${perGroup} per group`;
        groups = internal / perGroup;
      }
      // DingXiaoH's DBB has its 1×1 branch (and a conv before the pool) exactly when groups < out
      if (has('dbb_1x1.conv.weight') !== groups < F) return `groups ${groups} with ${F} outputs ${groups < F ? 'needs' : 'has no'} a dbb_1x1 branch`;
      return { family: 'dbb', in: Cg * groups, out: F, kernelSize: k, stride: 1, groups, internalChannels: internal };
    },
  },
  {
    // no identity: the fused kernel is the same for any groups (inAndGroups)
    label: 'ACB (ACNet)', family: 'acb', names: 'official', anchor: 'square_conv.weight', roots: ['square_conv.', 'square_bn.', 'ver_conv.', 'ver_bn.', 'hor_conv.', 'hor_bn.'], eps: 1e-5,
    spec(has, shape) {
      if (!has('ver_conv.weight') || !has('hor_conv.weight')) return 'no ver_conv and hor_conv';
      const [F, Cg, k] = shape('square_conv.weight');
      return { family: 'acb', in: Cg, out: F, kernelSize: k, stride: 1, groups: 1 };
    },
  },
  ...(['official', 'timm'] as const).map((names): Pattern => {
    const [skip, convs, scale, se] = names === 'timm' ? ['identity', 'conv_kxk', 'conv_scale', 'attn'] : ['rbr_skip', 'rbr_conv', 'rbr_scale', 'se'];
    return {
      label: `MobileOne (${names === 'timm' ? 'timm' : 'apple'})`, family: 'mobileone', names, anchor: `${convs}.0.conv.weight`, roots: [`${skip}.`, `${convs}.`, `${scale}.`, `${se}.`], eps: 1e-5,
      spec(has, shape) {
        const [F, Cg, k] = shape(`${convs}.0.conv.weight`);
        let branches = 0;
        while (has(`${convs}.${branches}.conv.weight`)) branches++;
        const g = inAndGroups(F, Cg, has(`${skip}.weight`));
        return typeof g === 'string' ? g : { family: 'mobileone', out: F, kernelSize: k, stride: 1, ...g, branches, se: has(`${se}.${names === 'timm' ? 'fc1' : 'reduce'}.weight`), names };
      },
    };
  }),
  ...(['official', 'timm'] as const).flatMap((names): Pattern[] => {
    const apple = names === 'official', who = apple ? 'apple' : 'timm';
    const [skip, convs, scale] = apple ? ['rbr_skip', 'rbr_conv', 'rbr_scale'] : ['identity', 'conv_kxk', 'conv_scale'];
    const [large, gamma, pe] = apple ? ['lkb_origin', 'layer_scale', 'pe'] : ['large_conv', 'layer_scale.gamma', 'pos_enc'];
    return [{
      // no identity: the fused kernel is the same for any groups (inAndGroups)
      label: `large kernel (${apple ? 'RepLKNet / apple FastViT' : 'timm FastViT'})`, family: 'replk', names, anchor: `${large}.conv.weight`, roots: [`${large}.`, 'small_conv.'], eps: 1e-5,
      spec(has, shape) {
        if (!bnOf(has, `${large}.bn`)) return `no ${large}.bn`;
        const [F, Cg, k, kw] = shape(`${large}.conv.weight`);
        if (k !== kw || k % 2 !== 1) return `${large}.conv is ${k}×${kw}, not an odd square kernel`;
        let smallKernel: number | null = null;
        if (has('small_conv.conv.weight')) {
          const [F2, Cg2, s, sw] = shape('small_conv.conv.weight');
          if (F2 !== F || Cg2 !== Cg || s !== sw || s % 2 !== 1 || s > k) return `small_conv.conv is ${F2}×${Cg2}×${s}×${sw}, not an odd square kernel ≤ ${k} of the same channels`;
          if (!bnOf(has, 'small_conv.bn')) return 'no small_conv.bn';
          smallKernel = s;
        }
        return { family: 'replk', in: Cg, out: F, kernelSize: k, stride: 1, groups: 1, smallKernel, names };
      },
    }, {
      label: `RepMixer (${who} FastViT)`, family: 'repmixer', names, anchor: `mixer.${convs}.0.conv.weight`, roots: ['mixer.', 'norm.', apple ? 'layer_scale' : 'layer_scale.'], eps: 1e-5, inner: ['mixer.'],
      spec(has, shape) {
        const [F, Cg, k, kw] = shape(`mixer.${convs}.0.conv.weight`);
        if (Cg !== 1 || k !== kw) return `mixer.${convs}.0.conv is ${F}×${Cg}×${k}×${kw}, not a depthwise square kernel`;
        if (!bnOf(has, `mixer.${skip}`) || !bnOf(has, `norm.${skip}`)) return `not both of mixer.${skip} and norm.${skip}`;
        let branches = 0;
        while (has(`mixer.${convs}.${branches}.conv.weight`)) branches++;
        if (k > 1 && !has(`mixer.${scale}.conv.weight`)) return `no mixer.${scale}`;
        return { family: 'repmixer', in: F, out: F, kernelSize: k, stride: 1, groups: F, branches, layerScale: has(gamma), names };
      },
    }, {
      label: `RepCPE (${who} FastViT)`, family: 'repcpe', names, anchor: `${pe}.weight`, roots: [`${pe}.`], eps: 1e-5,
      spec(has, shape, prefix) {
        if (!(apple ? /(^|\.)network\.\d+\.$/ : /(^|\.)pos_emb\.$/).test(prefix)) return null;
        const [F, Cg, k, kw] = shape(`${pe}.weight`);
        if (!has(`${pe}.bias`)) return `no ${pe}.bias`;
        if (Cg !== 1 || k !== kw || k % 2 !== 1) return `${pe} is ${F}×${Cg}×${k}×${kw}, not a depthwise odd square kernel`;
        return { family: 'repcpe', in: F, out: F, kernelSize: k, stride: 1, groups: F, names };
      },
    }];
  }),
];

/** A block found and fused: where, what, and its shapes. */
export interface FusedStateDictBlock {
  prefix: string;
  family: string;
  in: number;
  out: number;
  kernelSize: number;
  groups: number;
  eps: number;
  /** where eps came from: the naming's upstream default, or the caller (names that do not say it) */
  epsFrom: 'upstream' | 'option';
  /** the keys written in place of the branches' */
  deployKeys: string[];
}

export interface FuseBlocksOptions {
  /** BN eps of the blocks whose naming does not say it (RepVGG's names, also YOLOv6's RepVGGBlock's) */
  eps?: number;
  /** QARepVGG: keep its post-sum BN apart as YOLOv6's deploy model does ('yolov6', default) or fold it into the conv ('folded') */
  qarepvgg?: 'yolov6' | 'folded';
}

const floatOf = (e: SafeEntry) => e.dtype === 'F64' ? 'float64' : 'float32';

/**
 * Fuse every Rep-block found in `entries` (keys as the file has them). Returns the new entries (in
 * the input's order, each block's deploy keys where its first key was) and what was fused; throws
 * naming the prefix for a block that matches a pattern only in part, two patterns, or needs `eps`.
 */
export function fuseStateDictBlocks(entries: Map<string, SafeEntry>, opts: FuseBlocksOptions = {}): { entries: Map<string, SafeEntry>; blocks: FusedStateDictBlock[] } {
  const found = new Map<string, Pattern[]>(); // prefix → patterns whose anchor it has
  for (const key of entries.keys()) {
    for (const p of PATTERNS) {
      if (key !== p.anchor && !key.endsWith(`.${p.anchor}`)) continue;
      const prefix = key.slice(0, key.length - p.anchor.length);
      const l = found.get(prefix);
      if (l === undefined) found.set(prefix, [p]);
      else l.push(p);
    }
  }
  // a block inside another's branches (RepMixer's mixer.) is the outer block's
  for (const [outer, ps] of [...found]) {
    for (const r of ps.flatMap((p) => p.inner ?? [])) for (const q of [...found.keys()]) if (q.startsWith(outer + r)) found.delete(q);
  }
  // each key under the prefixes found, by one walk over its dots (not a scan of every key per block)
  const under = new Map<string, string[]>();
  const add = (prefix: string, key: string) => { const l = under.get(prefix); if (l === undefined) under.set(prefix, [key]); else l.push(key); };
  let longest = 0;
  for (const prefix of found.keys()) longest = Math.max(longest, prefix.length);
  if (longest > 1000) throw new Error(`a block prefix of ${longest} characters; refused (module paths are short)`);
  for (const key of entries.keys()) {
    if (found.has('')) add('', key);
    for (let i = key.indexOf('.'); i >= 0 && i < longest; i = key.indexOf('.', i + 1)) if (found.has(key.slice(0, i + 1))) add(key.slice(0, i + 1), key);
  }
  const replaced = new Map<string, Map<string, SafeEntry> | null>(); // consumed key → the deploy entries to put there (first key) or nothing
  const blocks: FusedStateDictBlock[] = [];
  for (const [prefix, candidates] of found) {
    const at = `block '${showText(prefix.replace(/\.$/, '') || '(top level)')}'`;
    const has = (k: string) => entries.has(prefix + k);
    const shape = (k: string) => entries.get(prefix + k)!.shape;
    const specs = candidates.map((p) => ({ p, spec: p.spec(has, shape, prefix) })).filter((s) => s.spec !== null);
    if (specs.length === 0) continue; // not a block (a RepCPE-named conv elsewhere): its keys pass through
    const ok = specs.filter((s) => typeof s.spec !== 'string');
    if (ok.length === 0) throw new Error(`${at}: has ${candidates[0].anchor} (${candidates.map((c) => c.label).join(' or ')}) but ${specs.map((s) => s.spec).join('; ')}; not fused`);
    if (ok.length > 1) throw new Error(`${at}: matches ${ok.map((s) => s.p.label).join(' and ')}; not fused`);
    const { p } = ok[0];
    const spec = ok[0].spec as Omit<FamilySpec, 'eps' | 'dtype'>;
    const eps = p.eps ?? opts.eps;
    if (eps === undefined) throw new Error(`${at}: its rbr_dense.conv / rbr_1x1.conv names are RepVGG's (BN eps 1e-5) and YOLOv6's RepVGGBlock's (1e-3), and a state dict does not record eps; say which with --eps`);
    const own = (under.get(prefix) ?? []).filter((k) => p.roots.some((r) => k.slice(prefix.length).startsWith(r)));
    const sub = new Map(own.map((k) => [k.slice(prefix.length), entries.get(k)!]));
    const block = familyBlock({ ...spec, eps, dtype: 'float64' });
    try {
      loadStateDict(block, sub);
    } catch (e) {
      throw new Error(`${at} (${p.label}, ${spec.in}→${spec.out}, ${spec.kernelSize}×${spec.kernelSize}): ${(e as Error).message.replace(/^state dict: /, '')}; not fused`);
    }
    block.eval();
    const dtype = floatOf(entries.get(prefix + p.anchor)!);
    const name = deployKey(spec);
    let deploy: Map<string, SafeEntry>;
    if (p.family === 'qarepvgg' && (opts.qarepvgg ?? 'yolov6') === 'yolov6') {
      // YOLOv6's switch_to_deploy: rbr_reparam = the branches' sum; its bn stays as it was
      const kb = castKernelBias(fuseLinearBranches({ ...block.linearBranches(), post: null }, prefix.replace(/\.$/, '')), dtype);
      deploy = new Map([[`${name}.weight`, { dtype: dtype === 'float64' ? 'F64' : 'F32', shape: kb.kernel.shape.slice(), data: kb.kernel.data }], [`${name}.bias`, { dtype: dtype === 'float64' ? 'F64' : 'F32', shape: kb.bias.shape.slice(), data: kb.bias.data }]]);
      for (const k of sub.keys()) if (k.startsWith('bn.')) deploy.set(k, sub.get(k)!);
    } else {
      deploy = stateDict(deployBlock(block, name, { dtype }));
    }
    for (const k of deploy.keys()) if (sub.has(k)) deploy.set(k, sub.get(k)!); // what the deploy form keeps (SE, YOLOv6's bn): the file's own entries
    const prefixed = new Map([...deploy].map(([k, e]) => [prefix + k, e]));
    own.forEach((k, i) => replaced.set(k, i === 0 ? prefixed : null));
    blocks.push({ prefix, family: p.label, in: spec.in, out: spec.out, kernelSize: spec.kernelSize ?? 3, groups: spec.groups ?? 1, eps, epsFrom: p.eps === null ? 'option' : 'upstream', deployKeys: [...prefixed.keys()] });
  }
  const out = new Map<string, SafeEntry>();
  for (const [k, e] of entries) {
    const r = replaced.get(k);
    if (r === undefined) out.set(k, e);
    else if (r !== null) for (const [dk, de] of r) out.set(dk, de);
  }
  return { entries: out, blocks };
}
