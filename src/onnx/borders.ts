// Padding runs in an exported graph: a Pad (constant mode) and ScatterND writes that pad each channel
// of a tensor with one value, the form torch.onnx.export gives DBB's BNAndPad. fuse-onnx takes such a
// run as one branch stage (a ChannelPad2d); finding it is this file's job (see findBorders).

import type { OnnxModel, OnnxNode, OnnxTensor } from '../io/onnx_read.js';
import { Tensor } from '../tensor/tensor.js';
import { probeInput } from './check.js';
import type { SkippedPattern } from './fuse.js';
import { type Value, runOnnx } from './run.js';
import { attrString, numel } from './value.js';

/**
 * A run of Pad (constant mode) and ScatterND nodes from `start` that pads each channel with one value,
 * as evaluating it showed (borderOf). `side`: the nodes that only compute its indices and updates
 * (from shapes and constants); they go when it goes.
 */
export interface Border {
  start: string;
  nodes: OnnxNode[];
  side: Set<OnnxNode>;
  pad: [number, number];
  values: Float64Array;
}

/**
 * Every run of Pad (constant mode) / ScatterND nodes that pads a 4-D tensor with one value per
 * channel. Exporters write DBB's BNAndPad as a Pad then four ScatterND writes whose indices and
 * updates come from Shape arithmetic; rather than match that text, each run is evaluated (float64)
 * on two inputs of distinct values 2³⁰ + j and −2³¹ − 3j: Pad and ScatterND only copy input elements
 * or write constants, so an output element equal to its input element in both runs is that element,
 * and one equal in both runs to the same small number is a constant. The run is a border when the
 * interior is the input shifted by (ph, pw) and each channel's border is one constant. Its indices
 * and updates are computed on a probe of the graph's input, so the graph must declare static dims.
 */
export function findBorders(model: OnnxModel, producer: Map<string, OnnxNode>, readers: Map<string, OnnxNode[]>, skipped: SkippedPattern[]): Border[] {
  const member = (n: OnnxNode) => (n.opType === 'Pad' && attrString(n, 'mode', 'constant') === 'constant') || (n.opType === 'ScatterND' && attrString(n, 'reduction', 'none') === 'none');
  const runs: OnnxNode[][] = [];
  const taken = new Set<OnnxNode>();
  for (const n of model.nodes) {
    if (!member(n) || taken.has(n)) continue;
    const run = [n];
    taken.add(n);
    for (;;) {
      const next = (readers.get(run.at(-1)!.outputs[0]) ?? []).filter((r) => member(r) && r.inputs[0] === run.at(-1)!.outputs[0]);
      if (next.length !== 1 || taken.has(next[0])) break;
      run.push(next[0]);
      taken.add(next[0]);
    }
    runs.push(run);
  }
  if (runs.length === 0) return [];
  // the nodes that only feed a run's side inputs (indices, pads, updates), and whether those come from shapes and constants alone
  const index = new Map(model.nodes.map((n, i) => [n, i]));
  const shapeOnly = new Map<string, boolean>();
  const isShapeOnly = (t: string): boolean => {
    if (t === '' || model.initializers.has(t)) return true;
    const known = shapeOnly.get(t);
    if (known !== undefined) return known;
    const stack = [t]; // iterative: a file may chain 10⁵ nodes
    while (stack.length > 0) {
      const u = stack.at(-1)!;
      const p = producer.get(u);
      if (p === undefined) { shapeOnly.set(u, model.initializers.has(u)); stack.pop(); continue; }
      if (p.opType === 'Shape' || p.opType === 'Size' || p.opType === 'Constant') { shapeOnly.set(u, true); stack.pop(); continue; }
      const todo = p.inputs.filter((i) => i !== '' && !model.initializers.has(i) && !shapeOnly.has(i));
      if (todo.length > 0) { stack.push(...todo); continue; }
      shapeOnly.set(u, p.inputs.every((i) => i === '' || model.initializers.has(i) || shapeOnly.get(i) === true));
      stack.pop();
    }
    return shapeOnly.get(t)!;
  };
  const candidates: { run: OnnxNode[]; side: Set<OnnxNode> }[] = [];
  // The side nodes are found walking back from the side inputs through shape-only tensors to the
  // Shape/Size nodes (and a node right before one, whose output only a Shape reads: the exporter
  // slices the padded tensor to measure it); the walks together may visit 10⁶ + 20·nodes steps.
  let budget = 1e6 + 20 * model.nodes.length;
  for (const run of runs) {
    const inRun = new Set(run);
    const sideInputs = run.flatMap((n) => n.inputs.slice(1)).filter((t) => t !== '');
    if (!sideInputs.every(isShapeOnly)) continue;
    const cone: OnnxNode[] = [], seen = new Set<OnnxNode>(), stack = [...sideInputs];
    while (stack.length > 0 && budget-- > 0) {
      const t = stack.pop()!;
      const p = producer.get(t);
      if (p === undefined || seen.has(p) || inRun.has(p)) continue;
      seen.add(p);
      cone.push(p);
      if ((p.opType === 'Shape' || p.opType === 'Size') && !isShapeOnly(p.inputs[0])) {
        const q = producer.get(p.inputs[0]);
        if (q !== undefined && !inRun.has(q) && !seen.has(q) && q.outputs.every((o) => (readers.get(o) ?? []).every((r) => r.opType === 'Shape' || r.opType === 'Size'))) { seen.add(q); cone.push(q); }
        continue;
      }
      for (const i of p.inputs) if (i !== '' && isShapeOnly(i)) stack.push(i);
    }
    if (budget <= 0) {
      skipped.push({ at: run[0].name, why: 'padding runs whose index computations are too large to trace (over 10⁶ steps); not fused' });
      break;
    }
    cone.sort((a, b) => index.get(b)! - index.get(a)!);
    const side = new Set<OnnxNode>();
    const sideRead = (r: OnnxNode, t: string) => side.has(r) || (inRun.has(r) && r.inputs.indexOf(t, 1) >= 1 && r.inputs[0] !== t);
    for (const p of cone) {
      if (p.outputs.every((o) => o === '' || (!model.outputs.some((g) => g.name === o) && (readers.get(o) ?? []).length > 0 && readers.get(o)!.every((r) => sideRead(r, o))))) side.add(p);
    }
    // every tensor inside the run is read only by the next member and side nodes; its input may have
    // other readers (a ZeroPad2d → Conv branch beside a 1×1 one, both reading the block's input), but
    // the first member reads it as its data only
    const inner = run.slice(0, -1).map((n) => n.outputs[0]);
    const ok = run[0].inputs.indexOf(run[0].inputs[0], 1) < 0
      && inner.every((t, i) => (readers.get(t) ?? []).every((r) => r === run[i + 1] ? r.inputs.indexOf(t, 1) < 0 : side.has(r)) && !model.outputs.some((g) => g.name === t));
    if (ok) candidates.push({ run, side });
  }
  if (candidates.length === 0) return [];
  const dims = model.inputs.map((v) => v.dims);
  if (dims.some((d) => d === null || d.some((x) => typeof x !== 'number' || x <= 0))) {
    for (const c of candidates) skipped.push({ at: c.run[0].name, why: 'a padding run whose values are computed from shapes; the graph declares symbolic input dims, so it is not evaluated (export with static shapes to fuse it)' });
    return [];
  }
  // one float64 probe of the whole graph gives each run's input shape and side values
  const want = new Set(candidates.flatMap((c) => c.run));
  const seenValues = new Map<OnnxNode, (Value | null)[]>();
  try {
    runOnnx(model, [probeInput(model)], { dtype: 'float64', algorithm: 'im2col', cache: false, onNode: (_i, _n, node, xs) => { if (want.has(node)) seenValues.set(node, xs.map((x, i) => (x === null ? null : { ...x, data: i === 0 ? new Float64Array(0) : x.data.slice() }))); } });
  } catch (e) {
    for (const c of candidates) skipped.push({ at: c.run[0].name, why: `a padding run not evaluated: ${(e as Error).message}` });
    return [];
  }
  const borders: Border[] = [];
  for (const { run, side } of candidates) {
    const x = seenValues.get(run[0])![0]!;
    if (x.shape.length !== 4) continue;
    const inits = new Map<string, OnnxTensor>();
    for (const n of run) {
      n.inputs.forEach((t, i) => {
        const v = seenValues.get(n)![i];
        if (i > 0 && t !== '' && v !== null) inits.set(t, { name: t, dtype: v.dtype === 'float32' ? 'float64' : v.dtype as OnnxTensor['dtype'], dims: v.shape, data: v.data });
      });
    }
    const sub: OnnxModel = { ...model, nodes: run, initializers: inits, inputs: [{ name: run[0].inputs[0], dtype: 'float64', dims: x.shape }], outputs: [{ name: run.at(-1)!.outputs[0], dtype: null, dims: null }], valueInfo: new Map() };
    const distinct = (f: (j: number) => number) => { const t = new Float64Array(numel(x.shape)); for (let j = 0; j < t.length; j++) t[j] = f(j); return new Tensor(t, x.shape); };
    const a = distinct((j) => 2 ** 30 + j), b = distinct((j) => -(2 ** 31) - 3 * j);
    const [ya, yb] = [a, b].map((t) => runOnnx(sub, [t], { dtype: 'float64', cache: false }).values().next().value as Value);
    const border = borderFrom(x.shape, a.data, b.data, ya, yb);
    if (typeof border === 'string') { skipped.push({ at: run[0].name, why: border }); continue; }
    borders.push({ start: run[0].inputs[0], nodes: run, side, ...border });
  }
  return borders;
}

/** From the two evaluations: the padding and each channel's border value, or why the run is not a border. */
function borderFrom(shape: readonly number[], xa: ArrayLike<number>, xb: ArrayLike<number>, ya: Value, yb: Value): { pad: [number, number]; values: Float64Array } | string {
  const [N, C, H, W] = shape;
  const [n2, c2, Ho, Wo] = ya.shape;
  if (ya.shape.length !== 4 || n2 !== N || c2 !== C || (Ho - H) % 2 !== 0 || (Wo - W) % 2 !== 0 || Ho < H || Wo < W) {
    return `a padding run from [${shape.join(', ')}] to [${ya.shape.join(', ')}]: not the same padding on both sides of H and W only`;
  }
  const ph = (Ho - H) / 2, pw = (Wo - W) / 2;
  const values = new Float64Array(C).fill(NaN);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    const o = ((n * C + c) * Ho + i) * Wo + j;
    const inside = i >= ph && i < H + ph && j >= pw && j < W + pw;
    if (inside) {
      const s = ((n * C + c) * H + i - ph) * W + j - pw;
      if (ya.data[o] !== xa[s] || yb.data[o] !== xb[s]) return `a padding run that does not keep its input in place (at [${n}, ${c}, ${i}, ${j}] of its output)`;
    } else {
      if (ya.data[o] !== yb.data[o] || Number.isNaN(ya.data[o])) return `a padding run whose border is not a constant (at [${n}, ${c}, ${i}, ${j}] of its output)`;
      if (Number.isNaN(values[c])) values[c] = ya.data[o];
      else if (values[c] !== ya.data[o]) return `a padding run whose border differs within channel ${c}`;
    }
  }
  for (let c = 0; c < C; c++) if (Number.isNaN(values[c])) values[c] = 0; // no border at all
  return { pad: [ph, pw], values };
}
