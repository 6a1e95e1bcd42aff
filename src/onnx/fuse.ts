// Structural re-parameterization of any ONNX graph: every set of branches that read one tensor and
// meet in Add, Sum or Sub (a sum may be scaled by a constant Mul) with nothing nonlinear between
// becomes one Conv, through the same fuser the modules use (src/reparam/fuse.ts: fuseLinearBranches).
// A branch is a chain of linear stages with constant parameters: Conv (2-D, or 1-D fused as 2-D of
// height 1; dilated ones as their plain kernels), BatchNormalization, Identity, AveragePool (the
// padding counted), Mul, Div and Add (or Sub) of a constant scalar or per-channel vector, Neg, a
// border (Pad / ScatterND writes that pad each channel with one value: DBB's BNAndPad as exporters
// write it, a ZeroPad2d), or no stage at all (the tensor itself). BN, constant Mul and Add right
// after the sum are folded in as the block's post map; a lone chain (Conv → BN, BN → Conv when the
// BN's border is zero-padding-safe, a Conv scaled by a Mul) is the one-branch case, and ConvTranspose
// → BN and Gemm → BN pairs (which exporters leave) fold into the first. Everything else (SiLU, SE,
// detection heads, a residual add across a ReLU, whose branches start from different tensors) is
// left exactly as it was, and node names, inputs and outputs are kept.
//
//   X ─┬─ Conv ─ BN ─┐                       X ─ Conv(K, b) ─ Y
//      ├─ Conv ─ BN ─┼─ Add ─ Add ─ Y   ⇒      K = Σ centred(K_i·s_i), b = Σ β_i + (b_i − μ_i)·s_i
//      └──────── BN ─┘

import type { OnnxModel, OnnxNode, OnnxTensor } from '../io/onnx_read.js';
import type { LinearBranches } from '../nn/branch_block.js';
import type { Module } from '../nn/module.js';
import { AvgPool2d, BatchNorm2d, Conv2d, affineAsBN } from '../nn/layers.js';
import { ChannelPad2d } from '../nn/dbb_layers.js';
import { type FuseTrace, bnStats, fuseLinearBranches } from '../reparam/fuse.js';
import { type KernelBias, fuseConvBN, undilateKernel } from '../reparam/kernels.js';
import { Tensor } from '../tensor/tensor.js';
import { type StoredFloat, storedFloats } from '../io/dtypes.js';
import { showText } from '../tensor/untrusted.js';
import { type Border, findBorders } from './borders.js';
import { attrFloat, attrInt, attrInts, attrString, numel, readersOf } from './value.js';

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
  /** what the sum tree does to this term after the chain: a Sub's −1, a constant Mul on a sum */
  factors?: Factor[];
}

/** A term's coefficient in a sum tree: the Sub it is subtracted by, or the constant Mul it is scaled by. */
type Factor = { negatedBy: OnnxNode } | { scaledBy: OnnxNode };
/** The most factors a sum tree gives a term (FastViT's RepMixer gives two). */
const MAX_FACTORS = 16;

/** A fused weight is stored in its conv's float type: float32, float64, or float16 and bfloat16 (held widened, rounded once as the file will hold them). */
const fileFloat = (w: OnnxTensor): StoredFloat => (w.dtype === 'float64' || w.dtype === 'float16' || w.dtype === 'bfloat16' ? w.dtype : 'float32');

/** Ops whose output has their first input's shape (a rank read through them). */
const SAME_SHAPE = new Set(['Identity', 'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Gelu', 'Elu', 'Selu', 'Softplus', 'Mish', 'Clip', 'Dropout', 'BatchNormalization', 'Erf', 'Neg', 'Abs']);

/** The ops a scale stage may be (a Mul or Div by a constant, a Neg: scaleInput says whether this one is). */
const isScale = (n: OnnxNode) => n.opType === 'Mul' || n.opType === 'Div' || n.opType === 'Neg';


/** A constant operand: an initializer, or a Constant node's tensor, or either through Identity nodes
 * (torch.onnx.export writes one initializer for equal ones and Identity nodes for the others). */
function constantOf(model: OnnxModel, producer: Map<string, OnnxNode>, name: string): OnnxTensor | undefined {
  let p = producer.get(name);
  for (let hops = 0; p?.opType === 'Identity' && hops < 64; hops++) { name = p.inputs[0]; p = producer.get(name); }
  const t = model.initializers.get(name);
  if (t !== undefined) return t;
  if (p?.opType !== 'Constant') return undefined;
  const a = p.attributes.get('value') ?? p.attributes.get('value_float');
  if (a?.kind === 'tensor') return a.value;
  if (a?.kind === 'float') return { name, dtype: 'float32', dims: [], data: Float32Array.of(a.value) };
  return undefined;
}

/**
 * The fused graph; `model` is not changed. `trace` sees the fuser's steps for the first pattern fused
 * (repvgg explain --onnx); `progress` is called after each pattern fused, with how far through the
 * graph's nodes the search is (two passes: sums, then single chains).
 */
/**
 * opts.reuseStorage: the input model is consumed: a fused kernel is written over the storage of a conv
 * weight it replaces when that weight is a float32 or float64 initializer of the same shape that no
 * other node reads (RepVGG's 3×3 branch), so a large graph does not hold its old and new kernels at
 * once. The input model must not be used afterwards (the CLI probes it first).
 */
export function fuseOnnx(model: OnnxModel, opts: { trace?: FuseTrace; progress?: (fraction: number) => void; reuseStorage?: boolean } = {}): FuseOnnxResult {
  let r = fusePass(model, opts);
  const fused = [...r.fused];
  // Again until a pass fuses nothing: a sum whose terms a pass fused into one conv, x + BN(conv(x) +
  // conv₁(x)), is a sum of the identity and a conv for the next. What is left is the last pass's.
  let passes = 1, budget = PASS_BUDGET;
  for (; r.fused.length > 0 && budget >= r.model.nodes.length; passes++) {
    budget -= r.model.nodes.length;
    r = fusePass(r.model, { reuseStorage: opts.reuseStorage });
    fused.push(...r.fused);
  }
  const skipped = r.fused.length === 0 ? r.skipped
    : [...r.skipped, { at: 'fuse-onnx', why: `stopped after ${passes} passes over the graph (sums nested that deep fuse a level a pass): fuse-onnx on the output fuses more` }];
  return { model: r.model, fused, skipped };
}

/** Nodes the passes after the first may visit in all (~17 µs a node a pass): real graphs nest their
 * sums a few levels deep and have ≤ 10⁴ nodes; 10⁵ levels of x + BN(…) would otherwise take 10⁵ passes. */
const PASS_BUDGET = 200_000;

function fusePass(model: OnnxModel, opts: { trace?: FuseTrace; progress?: (fraction: number) => void; reuseStorage?: boolean }): FuseOnnxResult {
  const producer = new Map<string, OnnxNode>();
  const readers = readersOf(model.nodes);
  for (const n of model.nodes) for (const o of n.outputs) producer.set(o, n);
  const graphOutputs = new Set(model.outputs.map((o) => o.name));
  const constant = (t: string) => constantOf(model, producer, t);
  const fused: FusedPattern[] = [], skipped: SkippedPattern[] = [];
  const borders = findBorders(model, producer, readers, skipped);
  const borderOf = new Map<OnnxNode, Border>(); // every member → its border
  for (const b of borders) for (const n of b.nodes) borderOf.set(n, b);
  // a border's input read only by the border and its side nodes (which measure it: Shape), so private to it
  const borderStarts = new Set(borders.filter((b) => (readers.get(b.start) ?? []).every((r) => b.nodes.includes(r) || b.side.has(r))).map((b) => b.start));
  /** read by exactly one node (a border's side nodes aside) and not a graph output: it can disappear into a fused conv */
  const private1 = (t: string) => !graphOutputs.has(t) && ((readers.get(t)?.length ?? 0) === 1 || borderStarts.has(t));
  const consumed = new Set<OnnxNode>(); // nodes already inside a fused pattern
  const index = new Map(model.nodes.map((n, i) => [n, i]));
  const replace = new Map<OnnxNode, OnnxNode | null>(); // node → its replacement (null: removed)
  const newInits = new Map<string, OnnxTensor>();

  /** The one input of a two-input node that is a constant scalar or per-channel (C,1,1)/(1,C,1,1) vector, else -1. */
  const channelConstant = (n: OnnxNode): number => {
    if (n.inputs.length !== 2) return -1;
    const k = [0, 1].filter((i) => constant(n.inputs[i]) !== undefined);
    if (k.length !== 1) return -1;
    const d = constant(n.inputs[k[0]])!.dims;
    const perChannel = (d.length === 3 || d.length === 4) && d.every((v, i) => v === 1 || i === d.length - 3);
    return numel(d) === 1 && d.length <= 4 || perChannel ? k[0] : -1;
  };
  /** Mul by a constant scalar or per-channel vector, Div by one (on its right), or Neg: the index of its data input, else -1. */
  const scaleInput = (n: OnnxNode): number => {
    if (n.opType === 'Neg') return n.inputs.length === 1 ? 0 : -1;
    const k = n.opType === 'Mul' || n.opType === 'Div' ? channelConstant(n) : -1;
    return k < 0 || (n.opType === 'Div' && k !== 1) ? -1 : 1 - k;
  };
  /** Add of a constant scalar or per-channel vector (PP-HGNet's learnable affine block: s·x + b), or Sub of one on its right: the index of its data input, else -1. */
  const shiftInput = (n: OnnxNode): number => {
    if (n.opType !== 'Add' && n.opType !== 'Sub') return -1;
    const k = channelConstant(n);
    return k < 0 || (n.opType === 'Sub' && k !== 1) ? -1 : 1 - k;
  };
  /** The input a stage transforms. */
  const dataInput = (n: OnnxNode) => n.inputs[isScale(n) ? scaleInput(n) : n.opType === 'Add' || n.opType === 'Sub' ? shiftInput(n) : 0];

  /** A node that is linear with constant parameters (a candidate branch stage). */
  const linearStage = (n: OnnxNode): boolean =>
    (n.opType === 'Conv' && constant(n.inputs[1]) !== undefined && (n.inputs[2] === undefined || n.inputs[2] === '' || constant(n.inputs[2]) !== undefined))
    || (n.opType === 'BatchNormalization' && n.outputs.filter((o) => o !== '').length === 1 && [1, 2, 3, 4].every((i) => constant(n.inputs[i]) !== undefined))
    || n.opType === 'Identity' || scaleInput(n) >= 0 || shiftInput(n) >= 0 || averagePoolStage(n) || borderOf.has(n);

  /** Walk back from a term through private linear stages to the tensor the branch reads (`kept`: the term stays, as the fused conv's output, so others may read it). */
  const branchOf = (term: string, kept = false): Branch => {
    const nodes: OnnxNode[] = [];
    let cur = term;
    for (;;) {
      const p = producer.get(cur);
      if (p === undefined || consumed.has(p) || !linearStage(p) || (cur !== term && !private1(cur))) break;
      if (cur === term && !kept && !private1(cur)) break;
      const border = borderOf.get(p);
      if (border !== undefined) {
        if (p !== border.nodes.at(-1)) break; // entered a border in the middle
        for (let k = border.nodes.length - 1; k >= 0; k--) nodes.push(border.nodes[k]);
        cur = border.start;
        continue;
      }
      nodes.push(p);
      cur = dataInput(p);
    }
    return { nodes: nodes.reverse(), root: cur }; // walked from the term back: reversed once (unshift per stage is quadratic)
  };

  /** A sum of branches: Add, or Sum (any number of terms: what tf2onnx makes of Keras' Add layer with three inputs, TensorFlow's AddN). */
  const isSum = (n: OnnxNode) => ((n.opType === 'Add' || n.opType === 'Sub') && shiftInput(n) < 0) || (n.opType === 'Sum' && n.inputs.length > 0 && n.inputs.every((i) => i !== ''));
  /** A constant Mul of a private sum (FastViT's layer_scale·(mixer(x) − norm(x))): it scales every term of the sum. */
  const scaledSum = (n: OnnxNode) => {
    const k = scaleInput(n);
    if (k < 0) return false;
    const p = producer.get(n.inputs[k]);
    return p !== undefined && isSum(p) && private1(n.inputs[k]) && !consumed.has(p);
  };
  const sumLike = (n: OnnxNode) => isSum(n) || scaledSum(n);

  /**
   * The terms of a tree of Add, Sum and Sub nodes and constant Muls of them, whose inner nodes are
   * private (Add(Add(a, b), c) → a, b, c; Sub(a, b) → a, −b; s·(a − b) → s·a, −s·b), in order, each
   * with its factors; iterative (a file may chain 10⁵ Adds).
   */
  const addTerms = (root: OnnxNode, adds: OnnxNode[]): { term: string; factors: Factor[] }[] => {
    const terms: { term: string; factors: Factor[] }[] = [];
    const todo: [OnnxNode | string, Factor[]][] = [[root, []]];
    while (todo.length > 0) {
      const [item, factors] = todo.pop()!;
      if (typeof item === 'string') { terms.push({ term: item, factors }); continue; }
      adds.push(item);
      if (isScale(item)) { todo.push([producer.get(item.inputs[scaleInput(item)])!, [...factors, { scaledBy: item }]]); continue; }
      // past MAX_FACTORS factors a sum is taken as a term (a file may nest 10⁵ Subs or scaled sums: each
      // term's factors would be copied at every level, and each made a stage)
      for (let k = item.inputs.length - 1; k >= 0; k--) {
        const t = item.inputs[k], p = producer.get(t);
        const f = item.opType === 'Sub' && k === 1 ? [...factors, { negatedBy: item }] : factors;
        todo.push([p !== undefined && sumLike(p) && private1(t) && !consumed.has(p) && f.length <= MAX_FACTORS ? p : t, f]);
      }
    }
    return terms;
  };

  // Visit sums from the last backwards, so an Add tree is taken whole from its root.
  for (const add of [...model.nodes].reverse()) {
    if (!sumLike(add) || consumed.has(add)) continue;
    const outerAdd = readers.get(add.outputs[0]);
    if (outerAdd?.length === 1 && sumLike(outerAdd[0]) && private1(add.outputs[0]) && !consumed.has(outerAdd[0])) continue; // an inner sum: its root takes it
    const adds: OnnxNode[] = [];
    const terms = addTerms(add, adds);
    const branches = terms.map(({ term, factors }) => ({ ...branchOf(term), factors }));
    const roots = new Set(branches.map((b) => b.root));
    if (roots.size !== 1) continue; // e.g. a residual add across a ReLU: the branches start from different tensors
    if (!branches.some((b) => b.nodes.some((n) => n.opType === 'Conv'))) continue;
    // per-channel affine stages right after the sum (QARepVGG's BN; PP-HGNet's and PP-LCNetV3's
    // learnable affine block s·x + b) are the block's post map
    let out = add.outputs[0];
    const post: OnnxNode[] = [];
    for (let after = readers.get(out); after?.length === 1 && private1(out) && !consumed.has(after[0]); after = readers.get(out)) {
      const a = after[0];
      if (!((a.opType === 'BatchNormalization' && linearStage(a)) || scaleInput(a) >= 0 || shiftInput(a) >= 0) || dataInput(a) !== out) break;
      post.push(a);
      out = a.outputs[0];
    }
    const why = tryFuse(adds[0].name, branches, adds, post, out);
    if (why !== null) skipped.push({ at: adds[0].name, why });
    else opts.progress?.(0.5 * (1 - index.get(add)! / model.nodes.length));
  }
  // The one-branch case: a chain with a Conv and something to fold into it (BN, Mul, a border), taken
  // from its last stage; if the whole chain does not fuse (BN → Conv with a nonzero border), its
  // longest tail that does. An exporter in eval mode has usually folded Conv → BN already.
  for (const n of [...model.nodes].reverse()) {
    if (consumed.has(n) || !linearStage(n) || (borderOf.has(n) && borderOf.get(n)!.nodes.at(-1) !== n)) continue;
    const next = readers.get(n.outputs[0]);
    if (next?.length === 1 && private1(n.outputs[0]) && linearStage(next[0]) && dataInput(next[0]) === n.outputs[0] && !consumed.has(next[0])) continue; // not the chain's end
    const b = branchOf(n.outputs[0], true);
    const folds = (nodes: OnnxNode[]) => nodes.some((x) => x.opType === 'Conv') && nodes.some((x) => x.opType === 'BatchNormalization' || isScale(x) || x.opType === 'Add' || x.opType === 'Sub' || borderOf.has(x));
    let first: string | null = null;
    // at most 8 tails (a file may chain 10⁵ BNs before a padded conv: every tail would fail)
    for (let k = 0, tries = 0; k < b.nodes.length && tries < 8 && folds(b.nodes.slice(k)); k++) {
      if (k > 0 && borderOf.get(b.nodes[k]) === borderOf.get(b.nodes[k - 1]) && borderOf.has(b.nodes[k])) continue; // a border is one stage
      const tail = b.nodes.slice(k);
      const root = borderOf.get(tail[0])?.start ?? dataInput(tail[0]);
      tries++;
      const why = tryFuse(n.name, [{ nodes: tail, root }], [], [], n.outputs[0]);
      if (why === null) { first = null; opts.progress?.(1 - 0.5 * index.get(n)! / model.nodes.length); break; }
      first ??= why;
    }
    if (first !== null) skipped.push({ at: n.name, why: first });
  }

  // ConvTranspose → BatchNormalization, Gemm → BatchNormalization and MatMul → BatchNormalization (a
  // bias-free Linear before BatchNorm1d): the BN folded into the weights and bias. A MatMul's BN scales
  // its output columns only when its A is 2-D (BN normalizes axis 1): A from a Flatten or a Gemm, or
  // declared so; it becomes a Gemm, which has the bias.
  const rankOf = (t: string): number | undefined => {
    for (let hops = 0; hops < 64; hops++) {
      const declared = (model.valueInfo.get(t) ?? model.inputs.find((v) => v.name === t))?.dims?.length;
      if (declared !== undefined) return declared;
      const p = producer.get(t);
      if (p?.opType === 'Flatten' || p?.opType === 'Gemm') return 2;
      if (p === undefined || !SAME_SHAPE.has(p.opType)) return undefined;
      t = p.inputs[0]; // an op whose output has its first input's shape
    }
    return undefined;
  };
  for (const n of model.nodes) {
    if ((n.opType !== 'ConvTranspose' && n.opType !== 'Gemm' && n.opType !== 'MatMul') || consumed.has(n)) continue;
    const bn = readers.get(n.outputs[0]);
    if (bn?.length !== 1 || !private1(n.outputs[0]) || bn[0].opType !== 'BatchNormalization' || !linearStage(bn[0]) || bn[0].inputs[0] !== n.outputs[0] || consumed.has(bn[0])) continue;
    const matMul = n.opType === 'MatMul';
    if (matMul) {
      const r = rankOf(n.inputs[0]);
      if (r === undefined) skipped.push({ at: bn[0].name, why: `${showText(n.name)}: its A's rank is not stated (no Flatten or Gemm before it, no declared shape): the BN scales the MatMul's output columns only for a 2-D A` });
      if (r !== 2) continue;
    }
    try {
      const { weight, bias, attributes, folded } = n.opType === 'ConvTranspose' ? { ...foldTransposedBN(n, bn[0], constant), attributes: n.attributes } : foldGemmBN(n, bn[0], constant);
      if (fused.length === 0) opts.trace?.({ at: showText(bn[0].name), what: `fold the BN into the ${n.opType}'s output channels (${n.opType !== 'ConvTranspose' ? "B's columns" : "W's second axis"}, shown as a conv's rows): K' = K·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε)`, kb: folded });
      const wName = uniqueName(`${bn[0].name}.fused.weight`), bName = uniqueName(`${bn[0].name}.fused.bias`);
      newInits.set(wName, { ...weight, name: wName });
      newInits.set(bName, { ...bias, name: bName });
      for (const m of [n, bn[0]]) consumed.add(m);
      replace.set(n, null);
      replace.set(bn[0], { ...n, opType: matMul ? 'Gemm' : n.opType, name: bn[0].name, inputs: [n.inputs[0], wName, bName], outputs: [bn[0].outputs[0]], attributes, at: -1 });
      const k = n.opType === 'ConvTranspose' ? ` ${weight.dims.slice(2).join('×')}` : '';
      fused.push({ at: bn[0].name, pattern: `${n.opType}${k}+BN ⇒ ${matMul ? 'Gemm' : n.opType}${k}`, nodesBefore: 2 });
    } catch (e) {
      skipped.push({ at: bn[0].name, why: (e as Error).message });
    }
  }

  /** Fuse one pattern; the reason it does not fuse, or null. */
  function tryFuse(at: string, branches: Branch[], adds: OnnxNode[], post: OnnxNode[], out: string): string | null {
    const root = branches[0].root;
    const convs = branches.flatMap((b) => b.nodes.filter((n) => n.opType === 'Conv'));
    try {
      const lb = linearBranchesOf(branches, post, convs, constant, borderOf);
      const fusedKb = fuseLinearBranches(lb, adds.length > 0 ? at : '', fused.length === 0 ? opts.trace : undefined); // a chain's stage names are its nodes'
      const oneD = constant(convs[0].inputs[1])!.dims.length === 3;
      // (F, C/g, K, K), or the 1-D block's middle row as (F, C/g, 1, K)
      const dense = oneD ? middleRow(fusedKb.kernel) : fusedKb.kernel;
      // branches whose spatial convs all have one dilation r > 1 (and 1×1 ones, the same at any r) sum
      // to a kernel that is zero off the lattice r·(i, j): written back dilated, r² fewer taps
      const rs = new Set(convs.filter((c) => constant(c.inputs[1])!.dims.slice(2).some((d) => d > 1)).map((c) => (attrInts(c, 'dilations') ?? [1])[0]));
      const r = rs.size === 1 ? [...rs][0] : 1;
      const lattice = r > 1 ? undilateKernel(dense, r) : null;
      const dilation = lattice === null ? 1 : r;
      const k4 = lattice ?? dense, K = k4.shape[3];
      const kb = { kernel: oneD ? k4.reshape([k4.shape[0], k4.shape[1], K]) : k4, bias: fusedKb.bias };
      const dtype = fileFloat(constant(convs[0].inputs[1])!);
      const wName = uniqueName(`${at}.fused.weight`), bName = uniqueName(`${at}.fused.bias`);
      newInits.set(wName, { name: wName, dtype, dims: kb.kernel.shape.slice(), data: kernelStorage(convs, kb.kernel.shape, dtype, kb.kernel.data) });
      newInits.set(bName, { name: bName, dtype, dims: kb.bias.shape.slice(), data: storedFloats(dtype, kb.bias.data) });
      const P = lb.padding;
      const conv: OnnxNode = {
        name: at, opType: 'Conv', domain: '', inputs: [root, wName, bName], outputs: [out], at: -1,
        attributes: new Map([['kernel_shape', { kind: 'ints', value: oneD ? [K] : [K, K] }], ['pads', { kind: 'ints', value: oneD ? [P, P] : [P, P, P, P] }],
          ['strides', { kind: 'ints', value: oneD ? [lb.stride] : [lb.stride, lb.stride] }], ['dilations', { kind: 'ints', value: oneD ? [dilation] : [dilation, dilation] }], ['group', { kind: 'int', value: lb.groups }]]),
      };
      const gone = [...branches.flatMap((b) => b.nodes), ...adds, ...post];
      const last = gone.reduce((a, n) => (index.get(n)! > index.get(a)! ? n : a));
      for (const n of gone) { consumed.add(n); replace.set(n, n === last ? conv : null); }
      for (const b of new Set(gone.map((n) => borderOf.get(n)).filter((b) => b !== undefined))) for (const n of b.side) replace.set(n, null);
      const postName = post.map((n) => stageName(n, constant)).join('+');
      fused.push({ at, pattern: `${branches.map((b) => describe(b, constant, borderOf)).join(' | ')}${post.length === 0 ? '' : ` → ${postName}`} ⇒ Conv ${oneD ? K : `${K}×${K}`}${dilation > 1 ? ` dilation ${dilation}` : ''}`, nodesBefore: gone.length });
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  /** The fused kernel's array: a replaced conv weight's own storage when opts.reuseStorage allows, else new. */
  function kernelStorage(convs: OnnxNode[], shape: readonly number[], dtype: StoredFloat, values: ArrayLike<number>): Float32Array | Float64Array {
    const own = opts.reuseStorage !== true ? undefined : convs.map((c) => model.initializers.get(c.inputs[1])).find((t) => t !== undefined && t.dtype === dtype &&
      t.dims.length === shape.length && t.dims.every((d, i) => d === shape[i]) && readers.get(t.name)?.length === 1 && !graphOutputs.has(t.name));
    return storedFloats(dtype, values, own?.data as Float32Array | Float64Array | undefined);
  }

  function uniqueName(base: string): string {
    let n = base;
    for (let k = 1; model.initializers.has(n) || newInits.has(n) || producer.has(n); k++) n = `${base}.${k}`;
    return n;
  }

  let nodes: OnnxNode[] = [];
  for (const n of model.nodes) {
    const r = replace.get(n);
    if (r === undefined) nodes.push(n);
    else if (r !== null) nodes.push(r);
  }
  nodes = withoutNewlyDead(model, nodes);
  // initializers no node reads any more are dropped; the rest are kept as they were, then the new ones
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const initializers = new Map<string, OnnxTensor>();
  for (const [k, t] of model.initializers) if (used.has(k) || graphOutputs.has(k)) initializers.set(k, t);
  for (const [k, t] of newInits) initializers.set(k, t);
  const alive = new Set([...nodes.flatMap((n) => n.outputs), ...model.inputs.map((v) => v.name)]);
  for (const n of nodes) {
    const lost = n.inputs.find((i) => i !== '' && !alive.has(i) && !initializers.has(i));
    if (lost !== undefined) throw new Error(`fuse-onnx: node '${showText(n.name)}' would read '${showText(lost)}', which the fused graph no longer computes; nothing was written`);
  }
  const gone = model.outputs.find((o) => !alive.has(o.name) && !initializers.has(o.name));
  if (gone !== undefined) throw new Error(`fuse-onnx: the graph output '${showText(gone.name)}' would no longer be computed; nothing was written`);
  const valueInfo = new Map([...model.valueInfo].filter(([k]) => alive.has(k)));
  return { model: { ...model, nodes, initializers, valueInfo }, fused, skipped };
}

/** Drop the nodes (Constant nodes of a Mul's scale) whose every output nobody reads any more but somebody did; dead nodes of the original stay. */
function withoutNewlyDead(model: OnnxModel, nodes: OnnxNode[]): OnnxNode[] {
  const outputs = new Set(model.outputs.map((o) => o.name));
  const readBefore = new Set(model.nodes.flatMap((n) => n.inputs));
  let out = nodes;
  for (;;) {
    const read = new Set(out.flatMap((n) => n.inputs));
    const keep = out.filter((n) => n.outputs.some((o) => o !== '' && (read.has(o) || outputs.has(o) || !readBefore.has(o))));
    if (keep.length === out.length) return out;
    out = keep;
  }
}

// A 1-D block's fused (F, C/g, K, K) kernel → (F, C/g, 1, K): its middle row, where every branch's 1×k
// kernel was centred (the other rows are zeros, and must be: they would read rows a 1-D map has not).
function middleRow(k: Tensor): Tensor {
  const [F, Cg, K] = k.shape, mid = (K - 1) / 2, out = new Float64Array(F * Cg * K);
  for (let fc = 0; fc < F * Cg; fc++) {
    for (let i = 0; i < K * K; i++) if (Math.floor(i / K) !== mid && k.data[fc * K * K + i] !== 0) throw new Error('a 1-D block\'s fused kernel has taps off its middle row');
    for (let j = 0; j < K; j++) out[fc * K + j] = k.data[fc * K * K + mid * K + j];
  }
  return new Tensor(out, [F, Cg, 1, K]);
}

/**
 * A conv's auto_pad (tf2onnx writes it for Keras' 'same' and 'valid') as explicit [top, left, bottom,
 * right] pads, or undefined for NOTSET (the pads attribute holds them). VALID pads nothing. SAME pads
 * (⌈n/s⌉ − 1)·s + (k − 1)·d + 1 − n in all, which at stride 1 is (k − 1)·d whatever the input's size
 * n: split evenly for an odd kernel, so the explicit pads compute the same function on every input.
 * At a larger stride the total depends on n (and on an even kernel SAME puts the odd one on one side):
 * refused, since the fused conv would then be right for one input size only.
 */
function autoPads(n: OnnxNode, k: readonly [number, number], s: readonly [number, number], d: readonly [number, number]): number[] | undefined {
  const mode = attrString(n, 'auto_pad', 'NOTSET');
  if (mode === 'NOTSET') return undefined;
  if (mode === 'VALID') return [0, 0, 0, 0];
  if (mode !== 'SAME_UPPER' && mode !== 'SAME_LOWER') throw new Error(`${showText(n.name)}: auto_pad '${showText(mode)}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID`);
  const total = [0, 1].map((a) => (k[a] - 1) * d[a]);
  if (s[0] !== 1 || s[1] !== 1 || total.some((t) => t % 2 !== 0)) {
    throw new Error(`${showText(n.name)}: auto_pad ${showText(mode)} with strides ${s.join('×')} and a ${k.join('×')} kernel pads by the input's size or unevenly; only stride 1 with an odd kernel fuses (export with explicit pads)`);
  }
  return [total[0] / 2, total[1] / 2, total[0] / 2, total[1] / 2];
}

/**
 * Per-channel affine maps in a row (BNs: x ↦ a·x + c with a = γ/√(σ² + ε), c = β − μ·a) as one BN of
 * γ = a₂·a₁, β = a₂·c₁ + c₂, μ = 0, σ² = 1, ε = 0 (float64: a rounding or two on each term).
 */
function composedAffine(bns: BatchNorm2d[]): BatchNorm2d {
  const C = bns[0].weight.data.size, a = new Float64Array(C).fill(1), c = new Float64Array(C);
  for (const bn of bns) {
    const st = bnStats(bn, 'post');
    for (let i = 0; i < C; i++) {
      const s = st.gamma.data[i] / Math.sqrt(st.variance.data[i] + st.eps);
      a[i] *= s;
      c[i] = s * c[i] + st.beta.data[i] - st.mean.data[i] * s;
    }
  }
  return affineAsBN(a, c);
}

/** A BatchNormalization node (inference, constant parameters) as a float64 BatchNorm2d of `channels` channels. */
function batchNormOf(n: OnnxNode, channels: number, constant: Constant): BatchNorm2d {
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => constant(n.inputs[i])!);
  if (attrInt(n, 'training_mode', 0) !== 0) throw new Error(`${showText(n.name)}: a BatchNormalization in training mode does not fuse`);
  if (gamma.data.length !== channels) throw new Error(`${showText(n.name)}: a BatchNormalization of ${gamma.data.length} channels on ${channels}`);
  const bn = new BatchNorm2d(channels, { dtype: 'float64', eps: attrFloat(n, 'epsilon', 1e-5) }).eval();
  bn.weight.data.data.set(gamma.data);
  bn.bias.data.data.set(beta.data);
  bn.runningMean.data.set(mean.data);
  bn.runningVar.data.set(variance.data);
  return bn;
}

/**
 * A ConvTranspose's BN after it, folded (torch.onnx.export folds Conv → BN but leaves this pair:
 * decoders, pose and detection heads). With s = γ/√(σ² + ε) per output channel f, BN(W ⊛ᵀ x + b) =
 * (W·s) ⊛ᵀ x + β + (b − μ)·s: fuseConvBN's step, on W viewed as a conv's (F, C/g, taps) (a ConvTranspose
 * holds W as (C, F/g, taps): channel c of group c·g/C to that group's outputs).
 */
function foldTransposedBN(ct: OnnxNode, bnNode: OnnxNode, constant: Constant): FoldedBN {
  const w = constant(ct.inputs[1]), b = ct.inputs[2] ? constant(ct.inputs[2]) : undefined;
  if (w === undefined || (ct.inputs[2] && b === undefined)) throw new Error(`${showText(ct.name)}: its weight or bias is computed in the graph, not a constant`);
  const g = attrInt(ct, 'group', 1), [C, Fg] = w.dims, F = Fg * g, Cg = C / g, taps = numel(w.dims.slice(2));
  if (!Number.isInteger(Cg) || w.dims.length < 3) throw new Error(`${showText(ct.name)}: a weight of shape [${w.dims.join(', ')}] for ${g} groups`);
  const place = new Int32Array(w.data.length); // W[c, j, t] → the conv view's [g_c·F/g + j, c mod C/g, t]
  for (let c = 0; c < C; c++) {
    const gi = Math.floor(c / Cg), cl = c - gi * Cg;
    for (let j = 0; j < Fg; j++) for (let t = 0; t < taps; t++) place[(c * Fg + j) * taps + t] = ((gi * Fg + j) * Cg + cl) * taps + t;
  }
  return foldThroughView(w, place, [F, Cg, ...(w.dims.length === 4 ? w.dims.slice(2) : [1, taps])], b === undefined ? new Float64Array(F) : Float64Array.from(b.data), bnNode, constant);
}

/**
 * A Gemm's BN after it (Linear → BatchNorm1d: insightface's embedding head, projection MLPs), folded.
 * Y = α·A·B + β_g·C, so BN(Y) = α·A·(B·s) + s·(β_g·C − μ) + β per output column f: fuseConvBN's step
 * on B's columns as a (F, K) kernel with bias β_g·C, laid back as B is stored (transB); beta becomes 1.
 */
function foldGemmBN(gemm: OnnxNode, bnNode: OnnxNode, constant: Constant): FoldedBN & { attributes: OnnxNode['attributes'] } {
  const B = constant(gemm.inputs[1]), C = gemm.inputs[2] ? constant(gemm.inputs[2]) : undefined;
  if (B === undefined || (gemm.inputs[2] && C === undefined)) throw new Error(`${showText(gemm.name)}: its B or C is computed in the graph, not a constant`);
  const transB = attrInt(gemm, 'transB', 0) !== 0;
  if (B.dims.length !== 2) throw new Error(`${showText(gemm.name)}: a B of shape [${B.dims.join(', ')}]`);
  const [K, F] = transB ? [B.dims[1], B.dims[0]] : B.dims;
  // C broadcasts over the rows: one value, or one per output column ([F] or [1, F]); a C per row does not fold into a per-column bias
  const perColumn = C !== undefined && numel(C.dims) === F && C.dims[C.dims.length - 1] === F;
  if (C !== undefined && numel(C.dims) !== 1 && !perColumn) throw new Error(`${showText(gemm.name)}: a C of shape [${C.dims.join(', ')}] differs per row; only one value or one per output column folds`);
  const betaG = attrFloat(gemm, 'beta', 1);
  const place = new Int32Array(F * K), b = new Float64Array(F); // B[k, f] (or B[f, k] with transB) → the view's [f, k]
  for (let f = 0; f < F; f++) {
    for (let k = 0; k < K; k++) place[transB ? f * K + k : k * F + f] = f * K + k;
    b[f] = C === undefined ? 0 : betaG * C.data[perColumn ? f : 0];
  }
  return { ...foldThroughView(B, place, [F, K, 1, 1], b, bnNode, constant), attributes: new Map([...gemm.attributes, ['beta', { kind: 'float', value: 1 }]]) };
}

interface FoldedBN {
  /** the folded weight, laid out as the file's, and bias, in the file's precision */
  weight: OnnxTensor;
  bias: OnnxTensor;
  /** the folded kernel and bias as a conv's (F, C/g, kh, kw), float64 (for repvgg explain) */
  folded: KernelBias;
}

// w's values moved to a conv's layout (element i to place[i]), with this bias; the BN folded by
// fuseConvBN (float64); moved back and rounded once to w's precision.
function foldThroughView(w: OnnxTensor, place: Int32Array, viewShape: number[], bias: Float64Array, bnNode: OnnxNode, constant: Constant): FoldedBN {
  const view = new Float64Array(place.length);
  for (let i = 0; i < place.length; i++) view[place[i]] = w.data[i];
  const f = fuseConvBN({ kernel: new Tensor(view, viewShape), bias: new Tensor(bias, [viewShape[0]]) }, bnStats(batchNormOf(bnNode, viewShape[0], constant), showText(bnNode.name)), 'float64', true);
  const dtype = fileFloat(w);
  const moved = new Float64Array(place.length);
  for (let i = 0; i < place.length; i++) moved[i] = f.kernel.data[place[i]];
  return {
    weight: { name: '', dtype, dims: w.dims.slice(), data: storedFloats(dtype, moved) },
    bias: { name: '', dtype, dims: [viewShape[0]], data: storedFloats(dtype, f.bias.data) },
    folded: f,
  };
}

/** AveragePool as a conv (1/k² on each tap): a square window, square strides, equal pads counted in the mean (or none), no ceil_mode or dilation. */
function averagePoolStage(n: OnnxNode): boolean {
  if (n.opType !== 'AveragePool') return false;
  const k = attrInts(n, 'kernel_shape') ?? [], s = attrInts(n, 'strides') ?? [1, 1], p = attrInts(n, 'pads') ?? [0, 0, 0, 0], d = attrInts(n, 'dilations') ?? [1, 1];
  return k.length === 2 && k[0] === k[1] && s.length === 2 && s[0] === s[1] && p.length === 4 && p.every((v) => v === p[0]) && d.every((v) => v === 1)
    && (p[0] === 0 || attrInt(n, 'count_include_pad', 0) === 1) && attrInt(n, 'ceil_mode', 0) === 0 && attrString(n, 'auto_pad', 'NOTSET') === 'NOTSET';
}

/** A branch for messages: 'Conv 1×1+BN+pad+AvgPool 3×3+BN'. */
function describe(b: Branch, constant: Constant, borderOf: Map<OnnxNode, Border>): string {
  const sign = (b.factors ?? []).filter((f) => 'negatedBy' in f).length % 2 === 1 ? '−' : '';
  const scaled = (b.factors ?? []).some((f) => 'scaledBy' in f) ? '·scale' : '';
  return `${sign}${chainOf(b, constant, borderOf)}${scaled}`;
}

function chainOf(b: Branch, constant: Constant, borderOf: Map<OnnxNode, Border>): string {
  if (b.nodes.length === 0) return 'identity';
  const parts: string[] = [];
  b.nodes.forEach((n, i) => {
    const border = borderOf.get(n);
    if (border !== undefined) { if (border.nodes.at(-1) === n) parts.push(`pad ${border.pad.join('×')}`); return; }
    if (i > 0 && borderOf.has(b.nodes[i - 1]) && borderOf.get(b.nodes[i - 1]) === border) return;
    parts.push(stageName(n, constant));
  });
  return parts.join('+');
}

/** A stage for messages: 'BN', 'Conv 3×3 dilation 2', 'AvgPool 3×3', 'scale', 'negate', 'shift'. */
function stageName(n: OnnxNode, constant: Constant): string {
  if (n.opType === 'BatchNormalization') return 'BN';
  if (n.opType === 'Conv') return `Conv ${convKernel(n, constant)}`;
  if (n.opType === 'AveragePool') return `AvgPool ${attrInts(n, 'kernel_shape')!.join('×')}`;
  if (n.opType === 'Neg') return 'negate';
  return isScale(n) ? 'scale' : n.opType === 'Add' || n.opType === 'Sub' ? 'shift' : n.opType;
}

type Constant = (name: string) => OnnxTensor | undefined;
const convKernel = (n: OnnxNode, constant: Constant) => {
  const d = (attrInts(n, 'dilations') ?? [1])[0];
  return `${constant(n.inputs[1])!.dims.slice(2).join('×')}${d > 1 ? ` dilation ${d}` : ''}`;
};

/** The branches as the fuser's LinearBranches: ONNX nodes become float64 Conv2d / BatchNorm2d / AvgPool2d / ChannelPad2d modules. */
function linearBranchesOf(branches: Branch[], post: OnnxNode[], convs: OnnxNode[], constant: Constant, borderOf: Map<OnnxNode, Border>): LinearBranches {
  const init = (name: string) => constant(name)!;
  const f64 = (t: OnnxTensor) => new Tensor(new Float64Array(t.data), t.dims); // the typed-array constructor converts natively; .from iterates
  // 1-D convs (weights (F, C/g, k)) fuse as 2-D ones of height 1: (F, C/g, 1, k), the stride on both
  // axes (a map of height 1 keeps height 1 under any stride when the fused padding is (K − 1)/2), no
  // padding on the height; tryFuse writes the fused kernel's middle row back as a 1-D conv
  const oneD = convs.length > 0 && init(convs[0].inputs[1]).dims.length === 3;
  const geometry = convs.map((n) => {
    const w0 = init(n.inputs[1]);
    if (w0.dims.length !== 3 && w0.dims.length !== 4) throw new Error(`${showText(n.name)}: a ${w0.dims.length - 2}-D convolution; only 1-D and 2-D ones fuse`);
    if (w0.dims.length !== (oneD ? 3 : 4)) throw new Error(`${showText(n.name)}: a ${w0.dims.length - 2}-D convolution among ${oneD ? '1' : '2'}-D ones; one fused conv needs one kind`);
    const w = oneD ? { ...w0, dims: [w0.dims[0], w0.dims[1], 1, w0.dims[2]] } : w0;
    // a 1-D conv's [v] as the 2-D one of height 1 has it: strides and dilations [v, v] (the height
    // has one tap and one row), pads [0, a, 0, b]
    const as2d = (name: string, dflt: number[]) => { const v = attrInts(n, name); return v === undefined ? dflt : name === 'pads' ? [0, v[0], 0, v[1]] : [v[0], v[0]]; };
    const [sh, sw] = oneD ? as2d('strides', [1, 1]) : attrInts(n, 'strides') ?? [1, 1];
    const [dh, dw] = oneD ? as2d('dilations', [1, 1]) : attrInts(n, 'dilations') ?? [1, 1];
    const [pt, pl, pb, pr] = autoPads(n, [w.dims[2], w.dims[3]], [sh, sw], [dh, dw]) ?? (oneD ? as2d('pads', [0, 0, 0, 0]) : attrInts(n, 'pads') ?? [0, 0, 0, 0]);
    if (sh !== sw || dh !== dw || pt !== pb || pl !== pr) throw new Error(`${showText(n.name)}: strides ${sh}×${sw}, dilations ${dh}×${dw}, pads [${pt}, ${pl}, ${pb}, ${pr}]: only square strides and dilations and symmetric pads fuse`);
    // the extent of its window: a dilated kernel reads (k − 1)·d + 1 rows and columns
    const span = [dh * (w.dims[2] - 1) + 1, dh * (w.dims[3] - 1) + 1];
    return { n, w, stride: sh, dilation: dh, span, pad: [pt, pl] as [number, number], groups: attrInt(n, 'group', 1) };
  });
  // each branch's extent: its one spatial stage's kernel (conv or pool; the stages before it are 1×1),
  // the padding of all its stages (a border's too) and their strides' product
  const extent = branches.map((b) => {
    let kh = 1, kw = 1, ph = 0, pw = 0, stride = 1, out = -1;
    for (const n of b.nodes) {
      const g = geometry.find((x) => x.n === n);
      const border = borderOf.get(n);
      if (g !== undefined) { kh = Math.max(kh, g.span[0]); kw = Math.max(kw, g.span[1]); ph += g.pad[0]; pw += g.pad[1]; stride *= g.stride; out = g.w.dims[0]; }
      else if (n.opType === 'AveragePool') { const k = attrInts(n, 'kernel_shape')![0], p = (attrInts(n, 'pads') ?? [0])[0]; kh = Math.max(kh, k); kw = Math.max(kw, k); ph += p; pw += p; stride *= (attrInts(n, 'strides') ?? [1])[0]; }
      else if (border !== undefined && border.nodes.at(-1) === n) { ph += border.pad[0]; pw += border.pad[1]; }
    }
    return { kh, kw, ph, pw, stride, out };
  });
  const K = Math.max(...extent.map((e) => Math.max(e.kh, e.kw)));
  // a dilation sets the dense kernel's size, not the file's bytes: estimated before anything is
  // allocated (UniRepLKNet's largest, 13×13 on 1024 depthwise channels, is 1.4 MB in float64)
  const dilated = geometry.find((g) => g.dilation > 1);
  if (dilated !== undefined) {
    const bytes = 8 * extent.reduce((m, e) => Math.max(m, e.out), 1) * dilated.w.dims[1] * K * K;
    if (bytes > 2 ** 28) throw new Error(`${showText(dilated.n.name)}: dilation ${dilated.dilation} makes the fused kernel ${K}×${K}, ${(bytes / 2 ** 30).toFixed(2)} GiB in float64 (over 0.25 GiB); not fused`);
  }
  const widest = oneD ? extent.find((e) => e.kw === K) : extent.find((e) => e.kh === K && e.kw === K && e.ph === e.pw);
  if (widest === undefined) throw new Error(`no branch has a square ${K}×${K} kernel with equal padding on both axes to fuse into`);
  if (oneD && widest.pw !== (K - 1) / 2) throw new Error(`a 1-D block fuses with 'same' padding only: its widest kernel ${K} has padding ${widest.pw}, not ${(K - 1) / 2}`);
  const groups = geometry[0].groups;
  if (geometry.some((g) => g.groups !== groups)) throw new Error(`the branches' convs have groups ${[...new Set(geometry.map((g) => g.groups))].join(' and ')}; one fused conv needs one value`);
  // the input's channels: the first conv's, through the stages before it (which keep the count)
  const inChannels = geometry[0].w.dims[1] * groups;
  const outChannels = widest.out >= 0 ? widest.out : extent.find((e) => e.out >= 0)!.out;
  // a constant operand's values per channel: one for all, or one each; on a 1-D map (N, C, L) only one
  // (a (C,1,1) constant there would broadcast (N, C, L) to another shape, not scale its channels)
  const perChannel = (n: OnnxNode, channels: number, what: string): (c: number) => number => {
    const t = n.inputs.map((i) => constant(i)).find((c) => c !== undefined)!;
    if (t.data.length !== 1 && (oneD || t.data.length !== channels)) throw new Error(`${showText(n.name)}: a ${what} of ${t.data.length} values on ${channels} channels${oneD ? ' of a 1-D map' : ''}`);
    return (c) => t.data[t.data.length === 1 ? 0 : c];
  };
  // constant Mul by s: γ = s (Div by c: γ = 1/c, one rounding in float64; Neg: γ = −1)
  const scaleAsBN = (n: OnnxNode, channels: number): BatchNorm2d => {
    const s = n.opType === 'Neg' ? () => -1 : perChannel(n, channels, 'scale');
    const gamma = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      const v = s(c);
      if (n.opType === 'Div' && v === 0) throw new Error(`${showText(n.name)}: divides channel ${c} by 0; no finite scale`);
      gamma[c] = n.opType === 'Div' ? 1 / v : v;
    }
    return affineAsBN(gamma, new Float64Array(channels));
  };
  // an Add (or Sub) of a constant c: γ = 1, β = ±c
  const shiftAsBN = (n: OnnxNode, channels: number): BatchNorm2d => {
    const v = perChannel(n, channels, 'shift'), sign = n.opType === 'Sub' ? -1 : 1;
    const beta = new Float64Array(channels);
    for (let c = 0; c < channels; c++) beta[c] = sign * v(c);
    return affineAsBN(new Float64Array(channels).fill(1), beta);
  };
  const negationAsBN = (channels: number): BatchNorm2d => affineAsBN(new Float64Array(channels).fill(-1), new Float64Array(channels));
  const module = (n: OnnxNode, channels: number): Module => {
    if (n.opType === 'BatchNormalization') return batchNormOf(n, channels, constant);
    if (isScale(n)) return scaleAsBN(n, channels);
    if (n.opType === 'Add' || n.opType === 'Sub') return shiftAsBN(n, channels);
    if (n.opType === 'AveragePool') {
      const [k] = attrInts(n, 'kernel_shape')!;
      return new AvgPool2d(k, { stride: (attrInts(n, 'strides') ?? [1])[0], padding: (attrInts(n, 'pads') ?? [0])[0] });
    }
    const border = borderOf.get(n);
    if (border !== undefined) {
      if (border.values.length !== channels) throw new Error(`${showText(n.name)}: a border of ${border.values.length} channels on ${channels}`);
      return new ChannelPad2d(border.values, border.pad);
    }
    const g = geometry.find((x) => x.n === n)!;
    const bias = n.inputs[2] ? constant(n.inputs[2]) : undefined;
    // the conv holds the file's float32 or float64 weights themselves (no copy: a B3 layer is 59 MB in
    // float32); the fuser widens them to float64 once, exactly, as it starts the branch
    const dtype = g.w.dtype === 'float32' && (bias === undefined || bias.dtype === 'float32') ? 'float32' : 'float64';
    const c = new Conv2d(g.w.dims[1] * g.groups, g.w.dims[0], [g.w.dims[2], g.w.dims[3]], { stride: g.stride, padding: g.pad, dilation: g.dilation, groups: g.groups, bias: bias !== undefined, dtype, init: false });
    c.weight.data = new Tensor(dtype === 'float32' ? g.w.data as Float32Array : new Float64Array(g.w.data), g.w.dims);
    if (bias !== undefined) c.bias!.data = new Tensor(dtype === 'float32' ? bias.data as Float32Array : f64(bias).data as Float64Array, bias.dims);
    return c;
  };
  const stagesOf = (b: Branch): [string, Module][] => {
    const stages: [string, Module][] = [];
    let channels = inChannels;
    for (const n of b.nodes) {
      if (n.opType === 'Identity') continue;
      const border = borderOf.get(n);
      if (border !== undefined && border.nodes.at(-1) !== n) continue; // a border is one stage, at its last node
      const m = module(n, channels);
      if (m instanceof Conv2d) channels = m.weight.data.shape[0];
      stages.push([showText(n.name), m]);
    }
    // the sum tree's factors on this term, as BNs of γ = the factor (−1 for a Sub's right side), β = μ = 0, σ² = 1, ε = 0: exact scalings
    for (const f of b.factors ?? []) stages.push('scaledBy' in f ? [showText(f.scaledBy.name), scaleAsBN(f.scaledBy, channels)] : [`${showText(f.negatedBy.name)} (−)`, negationAsBN(channels)]);
    return stages;
  };
  return {
    inChannels, outChannels, groups, stride: widest.stride, kernelSize: K, padding: widest.pw,
    branches: branches.map(stagesOf),
    post: post.length === 0 ? null : post.length === 1 ? [showText(post[0].name), module(post[0], outChannels) as BatchNorm2d]
      : [post.map((n) => showText(n.name)).join(' → '), composedAffine(post.map((n) => module(n, outChannels) as BatchNorm2d))],
  };
}
