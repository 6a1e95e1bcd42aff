// Structural re-parameterization of any ONNX graph: every set of branches that read one tensor and
// meet in Add with nothing nonlinear between (Conv, BatchNormalization, Identity, a branch that is
// the tensor itself) becomes one Conv, through the same fuser the modules use (src/reparam/fuse.ts:
// fuseLinearBranches). A BatchNormalization right after such a sum is folded in as the block's post
// BN, and a lone Conv → BatchNormalization pair is the one-branch case. Everything else (SiLU, SE,
// detection heads, a residual add across a ReLU, whose branches start from different tensors) is
// left exactly as it was, and node names, inputs and outputs are kept.
//
//   X ─┬─ Conv ─ BN ─┐                       X ─ Conv(K, b) ─ Y
//      ├─ Conv ─ BN ─┼─ Add ─ Add ─ Y   ⇒      K = Σ centred(K_i·s_i), b = Σ β_i + (b_i − μ_i)·s_i
//      └──────── BN ─┘

import type { OnnxModel, OnnxNode, OnnxTensor } from '../io/onnx_read.js';
import type { LinearBranches } from '../nn/branch_block.js';
import type { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d } from '../nn/layers.js';
import { type FuseTrace, fuseLinearBranches } from '../reparam/fuse.js';
import { Tensor } from '../tensor/tensor.js';
import { showText } from '../tensor/untrusted.js';
import { attrFloat, attrInt, attrInts, attrString, readersOf } from './value.js';

/** One fused pattern: where it was, what it replaced, what it became. */
export interface FusedPattern {
  /** the node whose output the fused Conv now produces (the last Add, or the post BN) */
  at: string;
  /** e.g. 'Conv+BN | Conv+BN | BN → Conv 3×3' */
  pattern: string;
  nodesBefore: number;
}

/** A pattern that looked fusable but was left as it was, with the reason. */
export interface SkippedPattern {
  at: string;
  why: string;
}

export interface FuseOnnxResult {
  model: OnnxModel;
  fused: FusedPattern[];
  skipped: SkippedPattern[];
}

interface Branch {
  /** the chain's nodes from the root's reader to the term, in order (empty: the root itself) */
  nodes: OnnxNode[];
  root: string;
}

/** The fused graph; `model` is not changed. `trace` sees the fuser's steps for the first pattern fused (repvgg explain --onnx). */
export function fuseOnnx(model: OnnxModel, opts: { trace?: FuseTrace } = {}): FuseOnnxResult {
  const producer = new Map<string, OnnxNode>();
  const readers = readersOf(model.nodes);
  for (const n of model.nodes) for (const o of n.outputs) producer.set(o, n);
  const graphOutputs = new Set(model.outputs.map((o) => o.name));
  /** read by exactly one node and not a graph output: it can disappear into a fused conv */
  const private1 = (t: string) => (readers.get(t)?.length ?? 0) === 1 && !graphOutputs.has(t);
  const constant = (t: string) => model.initializers.get(t);
  const consumed = new Set<OnnxNode>(); // nodes already inside a fused pattern
  const fused: FusedPattern[] = [], skipped: SkippedPattern[] = [];
  const replace = new Map<OnnxNode, OnnxNode | null>(); // node → its replacement (null: removed)
  const newInits = new Map<string, OnnxTensor>();

  /** A node that is linear with constant parameters (a candidate branch stage). */
  const linearStage = (n: OnnxNode): boolean =>
    (n.opType === 'Conv' && constant(n.inputs[1]) !== undefined && (n.inputs[2] === undefined || n.inputs[2] === '' || constant(n.inputs[2]) !== undefined))
    || (n.opType === 'BatchNormalization' && n.outputs.filter((o) => o !== '').length === 1 && [1, 2, 3, 4].every((i) => constant(n.inputs[i]) !== undefined))
    || n.opType === 'Identity';

  /** Walk back from a term through private linear stages to the tensor the branch reads. */
  const branchOf = (term: string): Branch => {
    const nodes: OnnxNode[] = [];
    let cur = term;
    for (;;) {
      const p = producer.get(cur);
      if (p === undefined || consumed.has(p) || !linearStage(p) || (cur !== term && !private1(cur))) break;
      if (cur === term && nodes.length === 0 && !private1(cur)) break;
      nodes.unshift(p);
      cur = p.inputs[0];
    }
    return { nodes, root: cur };
  };

  /** The terms of an Add tree whose inner sums are private (Add(Add(a, b), c) → a, b, c), in order; iterative (a file may chain 10⁵ Adds). */
  const addTerms = (root: OnnxNode, adds: OnnxNode[]): string[] => {
    const terms: string[] = [];
    const todo: (OnnxNode | string)[] = [root];
    while (todo.length > 0) {
      const item = todo.pop()!;
      if (typeof item === 'string') { terms.push(item); continue; }
      adds.push(item);
      for (let k = item.inputs.length - 1; k >= 0; k--) {
        const t = item.inputs[k], p = producer.get(t);
        todo.push(p !== undefined && p.opType === 'Add' && private1(t) && !consumed.has(p) ? p : t);
      }
    }
    return terms;
  };

  // Visit sums from the last backwards, so an Add tree is taken whole from its root.
  for (const add of [...model.nodes].reverse()) {
    if (add.opType !== 'Add' || consumed.has(add)) continue;
    const outerAdd = readers.get(add.outputs[0]);
    if (outerAdd?.length === 1 && outerAdd[0].opType === 'Add' && private1(add.outputs[0]) && !consumed.has(outerAdd[0])) continue; // an inner sum: its root takes it
    const adds: OnnxNode[] = [];
    const terms = addTerms(add, adds);
    const branches = terms.map(branchOf);
    const roots = new Set(branches.map((b) => b.root));
    if (roots.size !== 1) continue; // e.g. a residual add across a ReLU: the branches start from different tensors
    if (!branches.some((b) => b.nodes.some((n) => n.opType === 'Conv'))) continue;
    // a BatchNormalization right after the sum (QARepVGG) is the block's post BN
    let out = add.outputs[0];
    let post: OnnxNode | null = null;
    const after = readers.get(out);
    if (after?.length === 1 && private1(out) && after[0].opType === 'BatchNormalization' && linearStage(after[0])) { post = after[0]; out = post.outputs[0]; }
    tryFuse(adds[0].name, branches, adds, post, out);
  }
  // the one-branch case: Conv → BatchNormalization (an exporter in eval mode usually folds these already)
  for (const bn of model.nodes) {
    if (bn.opType !== 'BatchNormalization' || consumed.has(bn) || !linearStage(bn)) continue;
    const b = branchOf(bn.outputs[0]);
    if (b.nodes.length >= 2 && b.nodes.some((n) => n.opType === 'Conv')) tryFuse(bn.name, [b], [], null, bn.outputs[0]);
  }

  function tryFuse(at: string, branches: Branch[], adds: OnnxNode[], post: OnnxNode | null, out: string): void {
    const root = branches[0].root;
    const convs = branches.flatMap((b) => b.nodes.filter((n) => n.opType === 'Conv'));
    try {
      const lb = linearBranchesOf(branches, post, convs, model);
      const kb = fuseLinearBranches(lb, at, fused.length === 0 ? opts.trace : undefined);
      const dtype = model.initializers.get(convs[0].inputs[1])!.dtype === 'float64' ? 'float64' : 'float32';
      const wName = uniqueName(`${at}.fused.weight`), bName = uniqueName(`${at}.fused.bias`);
      newInits.set(wName, { name: wName, dtype, dims: kb.kernel.shape.slice(), data: dtype === 'float64' ? Float64Array.from(kb.kernel.data) : Float32Array.from(kb.kernel.data) });
      newInits.set(bName, { name: bName, dtype, dims: kb.bias.shape.slice(), data: dtype === 'float64' ? Float64Array.from(kb.bias.data) : Float32Array.from(kb.bias.data) });
      const K = lb.kernelSize, P = lb.padding;
      const conv: OnnxNode = {
        name: at, opType: 'Conv', domain: '', inputs: [root, wName, bName], outputs: [out], at: -1,
        attributes: new Map([['kernel_shape', { kind: 'ints', value: [K, K] }], ['pads', { kind: 'ints', value: [P, P, P, P] }],
          ['strides', { kind: 'ints', value: [lb.stride, lb.stride] }], ['dilations', { kind: 'ints', value: [1, 1] }], ['group', { kind: 'int', value: lb.groups }]]),
      };
      const gone = [...branches.flatMap((b) => b.nodes), ...adds, ...(post === null ? [] : [post])];
      const last = gone.reduce((a, n) => (model.nodes.indexOf(n) > model.nodes.indexOf(a) ? n : a));
      for (const n of gone) { consumed.add(n); replace.set(n, n === last ? conv : null); }
      const describe = (b: Branch) => (b.nodes.length === 0 ? 'identity' : b.nodes.map((n) => (n.opType === 'BatchNormalization' ? 'BN' : n.opType === 'Conv' ? `Conv ${convKernel(n, model)}` : n.opType)).join('+'));
      fused.push({ at, pattern: `${branches.map(describe).join(' | ')}${post === null ? '' : ' → BN'} ⇒ Conv ${K}×${K}`, nodesBefore: gone.length });
    } catch (e) {
      skipped.push({ at, why: (e as Error).message });
    }
  }

  function uniqueName(base: string): string {
    let n = base;
    for (let k = 1; model.initializers.has(n) || newInits.has(n) || producer.has(n); k++) n = `${base}.${k}`;
    return n;
  }

  const nodes: OnnxNode[] = [];
  for (const n of model.nodes) {
    const r = replace.get(n);
    if (r === undefined) nodes.push(n);
    else if (r !== null) nodes.push(r);
  }
  // initializers no node reads any more are dropped; the rest are kept as they were, then the new ones
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const initializers = new Map<string, OnnxTensor>();
  for (const [k, t] of model.initializers) if (used.has(k) || graphOutputs.has(k)) initializers.set(k, t);
  for (const [k, t] of newInits) initializers.set(k, t);
  const alive = new Set([...nodes.flatMap((n) => n.outputs), ...model.inputs.map((v) => v.name)]);
  const valueInfo = new Map([...model.valueInfo].filter(([k]) => alive.has(k)));
  return { model: { ...model, nodes, initializers, valueInfo }, fused, skipped };
}

const convKernel = (n: OnnxNode, model: OnnxModel) => { const d = model.initializers.get(n.inputs[1])!.dims; return `${d[2]}×${d[3]}`; };

/** The branches as the fuser's LinearBranches: ONNX nodes become float64 Conv2d / BatchNorm2d modules. */
function linearBranchesOf(branches: Branch[], post: OnnxNode | null, convs: OnnxNode[], model: OnnxModel): LinearBranches {
  const init = (name: string) => model.initializers.get(name)!;
  const f64 = (t: OnnxTensor) => new Tensor(Float64Array.from(t.data), t.dims);
  const geometry = convs.map((n) => {
    const w = init(n.inputs[1]);
    if (w.dims.length !== 4) throw new Error(`${n.name}: only 2-D convolutions fuse`);
    const [sh, sw] = attrInts(n, 'strides') ?? [1, 1];
    const [dh, dw] = attrInts(n, 'dilations') ?? [1, 1];
    const [pt, pl, pb, pr] = attrInts(n, 'pads') ?? [0, 0, 0, 0];
    if (attrString(n, 'auto_pad', 'NOTSET') !== 'NOTSET') throw new Error(`${showText(n.name)}: auto_pad is not fused (export with explicit pads)`);
    if (sh !== sw || dh !== 1 || dw !== 1 || pt !== pb || pl !== pr) throw new Error(`${showText(n.name)}: strides ${sh}×${sw}, dilations ${dh}×${dw}, pads [${pt}, ${pl}, ${pb}, ${pr}]: only square strides, no dilation and symmetric pads fuse`);
    return { n, w, stride: sh, pad: [pt, pl] as [number, number], groups: attrInt(n, 'group', 1) };
  });
  const K = Math.max(...geometry.map((g) => Math.max(g.w.dims[2], g.w.dims[3])));
  const widest = geometry.find((g) => g.w.dims[2] === K && g.w.dims[3] === K);
  if (widest === undefined) throw new Error(`no branch has a square ${K}×${K} kernel to fuse into`);
  const groups = geometry[0].groups;
  if (geometry.some((g) => g.groups !== groups)) throw new Error(`the branches' convs have groups ${[...new Set(geometry.map((g) => g.groups))].join(' and ')}; one fused conv needs one value`);
  const first = geometry[0];
  const inChannels = first.w.dims[1] * groups;
  const outChannels = widest.w.dims[0];
  const module = (n: OnnxNode): Module => {
    if (n.opType === 'BatchNormalization') {
      const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => f64(init(n.inputs[i])));
      if (attrInt(n, 'training_mode', 0) !== 0) throw new Error(`${showText(n.name)}: a BatchNormalization in training mode does not fuse`);
      const bn = new BatchNorm2d(gamma.size, { dtype: 'float64', eps: attrFloat(n, 'epsilon', 1e-5) }).eval();
      bn.weight.data.data.set(gamma.data);
      bn.bias.data.data.set(beta.data);
      bn.runningMean.data.set(mean.data);
      bn.runningVar.data.set(variance.data);
      return bn;
    }
    const g = geometry.find((x) => x.n === n)!;
    const bias = n.inputs[2] ? model.initializers.get(n.inputs[2]) : undefined;
    const c = new Conv2d(g.w.dims[1] * g.groups, g.w.dims[0], [g.w.dims[2], g.w.dims[3]], { stride: g.stride, padding: g.pad, groups: g.groups, bias: bias !== undefined, dtype: 'float64' });
    c.weight.data.data.set(f64(g.w).data);
    if (bias !== undefined) c.bias!.data.data.set(f64(bias).data);
    return c;
  };
  return {
    inChannels, outChannels, groups, stride: widest.stride, kernelSize: K, padding: widest.pad[0],
    branches: branches.map((b) => b.nodes.filter((n) => n.opType !== 'Identity').map((n) => [showText(n.name), module(n)] as [string, Module])),
    post: post === null ? null : [showText(post.name), module(post) as BatchNorm2d],
  };
}

export interface FuseCheck {
  /** largest |fused − original| over the outputs on the probe batch, both run in float64 */
  maxAbsDiff: number;
  /** the bound it is held to (see fuseBound) */
  bound: number;
  maxAbsOutput: number;
  probeShape: number[];
  /** the convolutions' multiply-adds on the probe batch */
  macsBefore: number;
  macsAfter: number;
}

/**
 * The error model for a fused graph against its original, both evaluated in float64 on one probe:
 * the fused weights are computed in float64 and stored once in the file's precision (u = 2⁻²⁴ for
 * float32 files, 2⁻⁵³ for float64), so each fused layer's output moves by at most u·(|K| ⊛ |x| + |b|);
 * taking |K| ⊛ |x| + |b| ≤ 16·max|y| per layer (cancellation in a conv rarely exceeds 16×) and L fused
 * layers adding up, the bound is 16·L·u·max|y| plus the float64 evaluation's own 1e-12·max|y|.
 */
export function fuseBound(fusedLayers: number, float64: boolean, maxAbsOutput: number): number {
  const u = float64 ? 2 ** -53 : 2 ** -24;
  return 16 * Math.max(1, fusedLayers) * u * maxAbsOutput + 1e-12 * maxAbsOutput;
}
