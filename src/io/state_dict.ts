// State dicts with PyTorch's key names, and RepVGG models inferred from a checkpoint's keys and shapes.

import { Tensor, type DType } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/check.js';
import { showText } from '../tensor/untrusted.js';
import type { Module } from '../nn/module.js';
import { RepVGG } from '../nn/repvgg.js';
import type { BlockSpec, RepVGGPlan } from '../nn/config.js';
import { MOBILEONE_HEAD, MobileOne, type MobileOneBlockSpec, type MobileOnePlan, mobileOneBlockName } from '../nn/mobileone.js';
import { type SafeEntry, entryOf, int64Scalar } from './safetensors.js';

/** PyTorch order: a module's own parameters, its own buffers, then each child's, recursively. */
export function stateDict(m: Module, prefix = '', out = new Map<string, SafeEntry>()): Map<string, SafeEntry> {
  for (const [n, p] of m.ownParameters()) out.set(prefix + n, entryOf(p.data));
  for (const [n, b] of m.ownBuffers()) out.set(prefix + n, b.kind === 'tensor' ? entryOf(b.value) : int64Scalar(b.value));
  for (const [n, c] of m.children()) stateDict(c, `${prefix}${n}.`, out);
  return out;
}

/** Drop DataParallel's leading 'module.' from every key. */
export function normalizeKeys(entries: Map<string, SafeEntry>): Map<string, SafeEntry> {
  const all = [...entries.keys()].every((k) => k.startsWith('module.'));
  if (!all) return entries;
  return new Map([...entries].map(([k, v]) => [k.slice(7), v]));
}

// Σ v·0 is 0 while every v is finite and NaN from the first ±∞ or NaN on: one multiply-add a float
// without a branch or a call, then the slow scan only to name the first bad value.
function allFinite(d: Float32Array | Float64Array): boolean {
  let z = 0;
  for (let i = 0; i < d.length; i++) z += d[i] * 0;
  return z === 0;
}

function checkTensor(dst: Tensor, e: SafeEntry, key: string): void {
  if (e.shape.length !== dst.shape.length || e.shape.some((d, i) => d !== dst.shape[i])) {
    throw new Error(`state dict: '${showText(key)}' has shape ${fmtShape(e.shape)}, expected ${fmtShape(dst.shape)}`);
  }
  if (!(e.data instanceof Float32Array) && !(e.data instanceof Float64Array)) {
    throw new Error(`state dict: '${showText(key)}' has integer dtype ${e.dtype}, expected a float tensor`);
  }
  const d = e.data;
  if (!allFinite(d)) {
    const i = d.findIndex((v) => !Number.isFinite(v));
    throw new Error(`state dict: '${showText(key)}' holds ${d[i]} at flat index ${i}; refusing non-finite weights`);
  }
  if (key.endsWith('running_var')) {
    for (let i = 0; i < d.length; i++) if (d[i] < 0) throw new Error(`state dict: '${showText(key)}' holds a negative variance ${d[i]} at index ${i}`);
  }
}

/**
 * Copy every entry into the model (strict: no key missing, none unexpected); dtypes convert to the
 * model's. Every key is checked (shape, dtype, finite values, variances ≥ 0, integer counters) before
 * any is written, so a failed load leaves the model as it was.
 */
export function loadStateDict(m: Module, entries: Map<string, SafeEntry>, opts: { share?: boolean } = {}): void {
  const src = normalizeKeys(entries);
  const seen = new Set<string>();
  const need = (key: string): SafeEntry => {
    const e = src.get(key);
    if (e === undefined) throw new Error(`state dict: missing key '${showText(key)}'`);
    seen.add(key);
    return e;
  };
  const writes: (() => void)[] = [];
  for (const [key, p] of m.namedParameters()) {
    const e = need(key);
    checkTensor(p.data, e, key);
    writes.push(() => {
      // share: take the entry's array itself when it already has the parameter's type (no copy, and
      // the fresh zero array the model was built with is never touched)
      if (opts.share === true && e.data.constructor === p.data.data.constructor) p.data = new Tensor(e.data as Float32Array | Float64Array, p.data.shape);
      else p.data.data.set(e.data as Float32Array | Float64Array);
      p.version++;
    });
  }
  for (const [key, b] of m.namedBuffers()) {
    if (b.kind === 'tensor') {
      const e = need(key);
      checkTensor(b.value, e, key);
      writes.push(() => b.value.data.set(e.data as Float32Array | Float64Array));
    } else {
      const e = src.get(key);
      if (e === undefined) continue; // num_batches_tracked is optional (older checkpoints lack it)
      seen.add(key);
      if (e.shape.length !== 0 || e.data.length !== 1) throw new Error(`state dict: '${showText(key)}' must be a 0-dimensional counter, got shape ${fmtShape(e.shape)}`);
      const v = Number(e.data[0]);
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`state dict: '${showText(key)}' must be a non-negative integer counter, got ${String(e.data[0])}`);
      writes.push(() => b.set(v));
    }
  }
  refuseUnexpected(src, seen);
  for (const w of writes) w();
}

function refuseUnexpected(src: Map<string, SafeEntry>, seen: ReadonlySet<string>): void {
  const extra = [...src.keys()].filter((k) => !seen.has(k));
  if (extra.length > 0) throw new Error(`state dict: unexpected key '${showText(extra[0])}'${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}`);
}

/**
 * The key check of loadStateDict alone (strict: none missing, none unexpected), for readers that
 * describe a checkpoint without loading it (inspect): they accept exactly what loading accepts.
 */
export function checkStateDictKeys(m: Module, entries: Map<string, SafeEntry>): void {
  const src = normalizeKeys(entries);
  const seen = new Set<string>();
  for (const [key] of m.namedParameters()) {
    if (!src.has(key)) throw new Error(`state dict: missing key '${showText(key)}'`);
    seen.add(key);
  }
  for (const [key, b] of m.namedBuffers()) {
    if (b.kind === 'tensor' && !src.has(key)) throw new Error(`state dict: missing key '${showText(key)}'`);
    if (src.has(key)) seen.add(key);
  }
  refuseUnexpected(src, seen);
}

/** Infer the RepVGG plan from a checkpoint: deploy or training-time, groups, identity and 1×1 branches. */
export function planFromStateDict(entries: Map<string, SafeEntry>): { plan: RepVGGPlan; deploy: boolean } {
  const src = normalizeKeys(entries);
  const shapeOf = (key: string): number[] => {
    const e = src.get(key);
    if (e === undefined) throw new Error(`checkpoint: missing key '${key}'`);
    return e.shape;
  };
  const deploy = src.has('stage0.rbr_reparam.weight');
  const convKey = (p: string) => (deploy ? `${p}.rbr_reparam.weight` : `${p}.rbr_dense.conv.weight`);
  if (!deploy && !src.has('stage0.rbr_dense.conv.weight')) {
    throw new Error("checkpoint: not a RepVGG or MobileOne state dict (none of 'stage0.rbr_dense.conv.weight', 'stage0.rbr_reparam.weight', 'stage0.rbr_conv.0.conv.weight', 'stem.conv_kxk.0.conv.weight' is present)");
  }
  const block = (p: string, cin: number, stride: number): BlockSpec => {
    const key = convKey(p);
    const s = shapeOf(key);
    if (s.length !== 4 || s[2] !== 3 || s[3] !== 3 || s[1] < 1 || cin % s[1] !== 0) {
      throw new Error(`checkpoint: '${key}' has shape ${fmtShape(s)}, expected (out, ${cin}/groups, 3, 3)`);
    }
    const groups = cin / s[1];
    const cout = s[0];
    if (cout % groups !== 0) throw new Error(`checkpoint: '${key}' has shape ${fmtShape(s)}: ${cout} output channels are not divisible by groups ${groups}`);
    const identity = !deploy && src.has(`${p}.rbr_identity.running_mean`);
    const pointwise = !deploy && src.has(`${p}.rbr_1x1.conv.weight`);
    if (pointwise) {
      const k1 = `${p}.rbr_1x1.conv.weight`;
      const s1 = shapeOf(k1);
      if (s1.length !== 4 || s1[0] !== cout || s1[1] !== s[1] || s1[2] !== 1 || s1[3] !== 1) {
        throw new Error(`checkpoint: '${k1}' has shape ${fmtShape(s1)}, expected ${fmtShape([cout, s[1], 1, 1])}`);
      }
    }
    if (identity && (cin !== cout || stride !== 1)) throw new Error(`checkpoint: '${p}.rbr_identity' present but the block maps ${cin}→${cout} with stride ${stride}`);
    return { inChannels: cin, outChannels: cout, stride, groups, identity, pointwise };
  };
  const s0 = shapeOf(convKey('stage0'));
  if (s0.length !== 4) throw new Error(`checkpoint: '${convKey('stage0')}' has shape ${fmtShape(s0)}, expected 4-D`);
  const inChannels = s0[1];
  const stages: BlockSpec[][] = [[block('stage0', inChannels, 2)]];
  let cin = stages[0][0].outChannels;
  for (let s = 1; s <= 4; s++) {
    const blocks: BlockSpec[] = [];
    for (let i = 0; src.has(convKey(`stage${s}.${i}`)); i++) {
      const b = block(`stage${s}.${i}`, cin, i === 0 ? 2 : 1);
      blocks.push(b);
      cin = b.outChannels;
    }
    if (blocks.length === 0) throw new Error(`checkpoint: missing key '${convKey(`stage${s}.0`)}'`);
    stages.push(blocks);
  }
  const lw = shapeOf('linear.weight');
  if (lw.length !== 2 || lw[1] !== cin) throw new Error(`checkpoint: 'linear.weight' has shape ${fmtShape(lw)}, expected (num_classes, ${cin})`);
  return { plan: { inChannels, numClasses: lw[0], stages }, deploy };
}

/**
 * A RepVGG built from a checkpoint's keys and loaded with its values. dtype defaults to the checkpoint's
 * (F64 → float64). share: parameters take the entries' arrays where their type matches instead of
 * copying them (the model and the entries then share memory; for one-shot use such as the CLI).
 */
export function modelFromStateDict(entries: Map<string, SafeEntry>, opts: { dtype?: DType; share?: boolean } = {}): RepVGG {
  const { plan, deploy } = planFromStateDict(entries);
  const src = normalizeKeys(entries);
  const dtype = opts.dtype ?? (src.get('linear.weight')?.dtype === 'F64' ? 'float64' : 'float32');
  const model = new RepVGG(plan, { deploy, dtype, init: false });
  loadStateDict(model, src, { share: opts.share });
  return model;
}

/** The key naming of a MobileOne state dict ('official': apple's stage0…, 'timm': byobnet's stem…), or null. */
export function mobileOneNamesOf(entries: Map<string, SafeEntry>): 'official' | 'timm' | null {
  const src = normalizeKeys(entries);
  if (src.has('stage0.rbr_conv.0.conv.weight') || src.has('stage0.reparam_conv.weight')) return 'official';
  if (src.has('stem.conv_kxk.0.conv.weight')) return 'timm';
  // timm's deploy RepVGG has 'stem.reparam_conv' too, but only 3×3 kernels; MobileOne's second block is 1×1
  if (src.has('stem.reparam_conv.weight') && src.get('stages.0.1.reparam_conv.weight')?.shape[2] === 1) return 'timm';
  return null;
}

/**
 * Infer a MobileOne plan from its keys: per block the k×k conv's shape (depthwise 3×3 and pointwise
 * 1×1 alternate, as apple's _make_stage builds them), the number of conv branches and the SE. Strides
 * are the layout's (stage0 and each stage's first block: 2), as they are in no state dict.
 */
export function mobileOnePlanFromStateDict(entries: Map<string, SafeEntry>): { plan: MobileOnePlan; deploy: boolean } {
  const src = normalizeKeys(entries);
  const names = mobileOneNamesOf(src);
  if (names === null) throw new Error("checkpoint: not a MobileOne state dict (neither apple's 'stage0.rbr_conv.0.conv.weight' nor timm's 'stem.conv_kxk.0.conv.weight', nor their 'reparam_conv')");
  const [convs, seName, fc1] = names === 'timm' ? ['conv_kxk', 'attn', 'fc1'] : ['rbr_conv', 'se', 'reduce'];
  const deploy = src.has(`${mobileOneBlockName(names, 0, 0)}.reparam_conv.weight`);
  const convKey = (p: string) => (deploy ? `${p}.reparam_conv.weight` : `${p}.${convs}.0.conv.weight`);
  const block = (name: string, cin: number, stride: number, kind: 'stem' | 'dw' | 'pw'): MobileOneBlockSpec => {
    const key = convKey(name);
    const s = src.get(key)!.shape;
    const k = kind === 'pw' ? 1 : 3;
    const groups = kind === 'dw' ? cin : 1;
    const expected = [kind === 'dw' ? cin : s[0], cin / groups, k, k];
    if (s.length !== 4 || s.some((d, i) => d !== expected[i]) || s[0] < 1) {
      throw new Error(`checkpoint: '${showText(key)}' has shape ${fmtShape(s)}, expected ${kind === 'dw' ? fmtShape(expected) : `(out, ${cin}, ${k}, ${k})`} (a MobileOne ${kind === 'dw' ? 'depthwise 3×3' : kind === 'pw' ? 'pointwise 1×1' : 'stem 3×3'} block)`);
    }
    let branches = deploy ? 1 : 0;
    while (!deploy && src.has(`${name}.${convs}.${branches}.conv.weight`)) branches++;
    return { name, inChannels: cin, outChannels: s[0], kernelSize: k, stride, groups, branches, se: src.has(`${name}.${seName}.${fc1}.weight`) };
  };
  const stem0 = src.get(convKey(mobileOneBlockName(names, 0, 0)))!.shape;
  if (stem0.length !== 4) throw new Error(`checkpoint: '${convKey(mobileOneBlockName(names, 0, 0))}' has shape ${fmtShape(stem0)}, expected 4-D`);
  const blocks = [block(mobileOneBlockName(names, 0, 0), stem0[1], 2, 'stem')];
  for (let stage = 1; stage <= 4; stage++) {
    let j = 0;
    for (; src.has(convKey(mobileOneBlockName(names, stage, j))); j++) {
      blocks.push(block(mobileOneBlockName(names, stage, j), blocks[blocks.length - 1].outChannels, j === 0 ? 2 : 1, j % 2 === 0 ? 'dw' : 'pw'));
    }
    if (j === 0 || j % 2 === 1) throw new Error(`checkpoint: missing key '${convKey(mobileOneBlockName(names, stage, j))}' (each MobileOne stage is pairs of a depthwise and a pointwise block)`);
  }
  const head = `${MOBILEONE_HEAD[names]}.weight`;
  const lw = src.get(head)?.shape;
  const feat = blocks[blocks.length - 1].outChannels;
  if (lw === undefined) throw new Error(`checkpoint: missing key '${head}'`);
  if (lw.length !== 2 || lw[1] !== feat) throw new Error(`checkpoint: '${head}' has shape ${fmtShape(lw)}, expected (num_classes, ${feat})`);
  return { plan: { names, inChannels: stem0[1], numClasses: lw[0], blocks }, deploy };
}

/** A RepVGG or a MobileOne (recognised by its keys), built and loaded as modelFromStateDict does. */
export function classifierFromStateDict(entries: Map<string, SafeEntry>, opts: { dtype?: DType; share?: boolean } = {}): RepVGG | MobileOne {
  const src = normalizeKeys(entries);
  const names = mobileOneNamesOf(src);
  if (names === null) return modelFromStateDict(src, opts);
  const { plan, deploy } = mobileOnePlanFromStateDict(src);
  const dtype = opts.dtype ?? (src.get(`${MOBILEONE_HEAD[names]}.weight`)?.dtype === 'F64' ? 'float64' : 'float32');
  const model = new MobileOne(plan, { deploy, dtype });
  loadStateDict(model, src, { share: opts.share });
  return model;
}
