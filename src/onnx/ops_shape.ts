// ONNX's layout and shape ops (onnx/docs/Operators.md), forward only: they move values, never change
// them, so float32 and float64 runs give the same bits. Shape → Gather → Unsqueeze → Concat →
// Reshape chains, which exporters emit for flatten and upsampling, are evaluated like any data.

import { ONNX_DTYPES, type OnnxNode, type OnnxTensor } from '../io/onnx_read.js';
import { showText } from '../tensor/untrusted.js';
import { type OpContext, type Value, attrInt, attrInts, attrString, broadcastShape, input, intsOf, isFloat, nodeError, normAxis, numel } from './value.js';

type Op = (ctx: OpContext, node: OnnxNode, xs: (Value | null)[]) => Value[];

const same = (v: Value, shape: number[]): Value => ({ dtype: v.dtype, shape, data: v.data });
const stridesOf = (shape: readonly number[]): number[] => {
  const st = new Array<number>(shape.length);
  for (let i = shape.length - 1, s = 1; i >= 0; i--) { st[i] = s; s *= shape[i]; }
  return st;
};
// DepthToSpace's and SpaceToDepth's input (4-D) and their required blocksize (≥ 1): [N, C, H, W, b]
function blocks4d(node: OnnxNode, x: Value): number[] {
  if (x.shape.length !== 4) throw nodeError(node, `input must be 4-D (N, C, H, W); got shape [${x.shape.join(', ')}]`);
  if (!node.attributes.has('blocksize')) throw nodeError(node, 'attribute blocksize is required');
  const b = attrInt(node, 'blocksize', 0);
  if (!(b >= 1)) throw nodeError(node, `blocksize ${b} must be at least 1`);
  return [...x.shape, b];
}
/** An integer tensor built from numbers. */
const ints = (ctx: OpContext, values: number[], shape = [values.length]): Value => {
  const data = ctx.alloc(shape, 'int');
  data.set(values);
  return { dtype: 'int64', shape, data };
};

/**
 * A value from a TensorProto (Constant's value, an initializer): floats in the run's precision.
 * Floats already in it are the tensor's own array, not a copy: values are never written in place
 * (Reshape's output already shares its input's array), and a one-shot run of a model with 33 MB of
 * weights then holds them once, in the shared memory the file was read into.
 */
export function valueOfTensor(ctx: OpContext, t: OnnxTensor): Value {
  const float = t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16' || t.dtype === 'bfloat16';
  if ((t.dtype === 'float32' && ctx.float === 'float32' && t.data instanceof Float32Array) || (t.dtype === 'float64' && ctx.float === 'float64' && t.data instanceof Float64Array)) {
    return { dtype: ctx.float, shape: t.dims.slice(), data: t.data };
  }
  const data = ctx.alloc(t.dims, float ? 'float' : 'int');
  data.set(t.data);
  return { dtype: float ? ctx.float : t.dtype, shape: t.dims.slice(), data };
}

/** Gather along `axis` the indices at(0) … at(m − 1) (each in [−n, n)) for an index tensor of shape
 * idxShape (m elements), in row-major order of (outer, index, inner); no list of the indices is made. */
function take(ctx: OpContext, node: OnnxNode, x: Value, axis: number, idxShape: number[], at: (j: number) => number): Value {
  const n = x.shape[axis], m = numel(idxShape);
  const outer = numel(x.shape.slice(0, axis)), inner = numel(x.shape.slice(axis + 1));
  const shape = [...x.shape.slice(0, axis), ...idxShape, ...x.shape.slice(axis + 1)];
  const out = ctx.alloc(shape, isFloat(x) ? 'float' : 'int');
  let o = 0;
  for (let a = 0; a < outer; a++) for (let j = 0; j < m; j++) {
    const i = at(j);
    if (!Number.isInteger(i) || i < -n || i >= n) throw nodeError(node, `index ${i} is out of range for a dimension of ${n}`);
    const src = (a * n + (i < 0 ? i + n : i)) * inner;
    out.set(x.data.subarray(src, src + inner), o);
    o += inner;
  }
  return { dtype: x.dtype, shape, data: out };
}

/** out (of `shape`, x's rank) with out[i₀, i₁, …] = x[from(0, i₀), from(1, i₁), …], allocated once, so
 * that the memory guard sees the whole output before any work (Expand: 0 on a broadcast axis; Tile:
 * i mod n). */
function replicate(ctx: OpContext, x: Value, shape: number[], from: (axis: number, i: number) => number): Value {
  const out = ctx.alloc(shape, isFloat(x) ? 'float' : 'int');
  const r = shape.length, st = stridesOf(x.shape), idx = new Array<number>(r).fill(0);
  for (let i = 0; i < out.length; i++) {
    let src = 0;
    for (let k = 0; k < r; k++) src += from(k, idx[k]) * st[k];
    out[i] = x.data[src];
    for (let k = r - 1; k >= 0; k--) { if (++idx[k] < shape[k]) break; idx[k] = 0; }
  }
  return { dtype: x.dtype, shape, data: out };
}

/** Copy x into out, with out's axes permuted: out[i₀…] = x[i_perm…]. */
function transpose(ctx: OpContext, x: Value, perm: number[]): Value {
  const shape = perm.map((p) => x.shape[p]);
  const xs = stridesOf(x.shape), st = perm.map((p) => xs[p]);
  const out = ctx.alloc(shape, isFloat(x) ? 'float' : 'int');
  const r = shape.length, idx = new Array<number>(r).fill(0);
  let src = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = x.data[src];
    for (let k = r - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) { src += st[k]; break; }
      src -= (shape[k] - 1) * st[k]; idx[k] = 0;
    }
  }
  return { dtype: x.dtype, shape, data: out };
}

// axes given twice (3 and −1 of a rank-4 output name one axis): the specification makes that an
// invalid graph, and inserting or removing one axis twice would change the rank
function distinctAxes(node: OnnxNode, given: readonly number[], axes: readonly number[]): void {
  const seen = axes.findIndex((a, i) => axes.indexOf(a) !== i);
  if (seen >= 0) throw nodeError(node, `axes [${given.join(', ')}] name axis ${axes[seen]} more than once`);
}

export const SHAPE_OPS: Record<string, Op> = {
  Identity: (_, node, xs) => [input(node, xs, 0, 'input')],
  // inference: the identity (the mask output is not produced); training_mode true (opset 12's third
  // input) would drop at random, which no reference can reproduce
  Dropout: (_, node, xs) => {
    if (xs[2] && xs[2].data.length > 0 && xs[2].data[0] !== 0) throw nodeError(node, 'training_mode is true: a random dropout, not an inference op');
    return [input(node, xs, 0, 'data')];
  },

  Constant: (ctx, node) => {
    const [name, a] = [...node.attributes][0] ?? [];
    if (a === undefined) throw nodeError(node, 'has no value attribute');
    if (a.kind === 'tensor') return [valueOfTensor(ctx, a.value)];
    if (name === 'value_float' && a.kind === 'float') return [{ dtype: ctx.float, shape: [], data: ctx.float === 'float32' ? Float32Array.of(a.value) : Float64Array.of(a.value) }];
    if (name === 'value_floats' && a.kind === 'floats') { const d = ctx.alloc([a.value.length], 'float'); d.set(a.value); return [{ dtype: ctx.float, shape: [a.value.length], data: d }]; }
    if (name === 'value_int' && a.kind === 'int') return [ints(ctx, [a.value], [])];
    if (name === 'value_ints' && a.kind === 'ints') return [ints(ctx, a.value)];
    throw nodeError(node, `value attribute ${name} of kind ${a.kind} is not supported`);
  },

  // Shape(x)[start:end] (start/end attributes since opset 15)
  Shape: (ctx, node, xs) => {
    const s = input(node, xs, 0, 'data').shape, r = s.length;
    const clamp = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
    return [ints(ctx, s.slice(clamp(attrInt(node, 'start', 0)), clamp(attrInt(node, 'end', r))))];
  },

  ConstantOfShape: (ctx, node, xs) => {
    const shape = intsOf(node, input(node, xs, 0, 'input'), 'shape');
    const a = node.attributes.get('value');
    const t = a?.kind === 'tensor' ? a.value : null;
    const float = t === null || t.dtype.startsWith('float') || t.dtype === 'bfloat16';
    const data = ctx.alloc(shape, float ? 'float' : 'int');
    if (t !== null) data.fill(t.data[0]);
    return [{ dtype: float ? ctx.float : t!.dtype, shape, data }];
  },

  Cast: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'input');
    const to = attrInt(node, 'to', 1);
    // float types run in the run's precision; integers truncate toward zero, as C casts do (+ 0: an
    // integer has no −0, which a later cast back to float would otherwise keep); bool is x ≠ 0
    if (to === 1 || to === 10 || to === 11 || to === 16) {
      const d = ctx.alloc(x.shape, 'float');
      d.set(x.data);
      return [{ dtype: ctx.float, shape: x.shape, data: d }];
    }
    const dtype = ONNX_DTYPES[to];
    if (dtype === undefined || dtype === 'float32') throw nodeError(node, `cast to data type ${to} is not supported`);
    const d = ctx.alloc(x.shape, 'int');
    for (let i = 0; i < d.length; i++) d[i] = dtype === 'bool' ? (x.data[i] !== 0 ? 1 : 0) : Math.trunc(x.data[i]) + 0;
    return [{ dtype, shape: x.shape, data: d }];
  },

  Flatten: (_, node, xs) => {
    const x = input(node, xs, 0, 'input');
    // axis in [−r, r] (r itself: everything in the first dimension); a negative one counts from the
    // back of the input's r axes, not of r + 1
    const r = x.shape.length, a = attrInt(node, 'axis', 1);
    if (!Number.isInteger(a) || a < -r || a > r) throw nodeError(node, `axis ${a} is out of range [${-r}, ${r}] for rank ${r}`);
    const axis = a < 0 ? a + r : a;
    return [same(x, [numel(x.shape.slice(0, axis)), numel(x.shape.slice(axis))])];
  },

  // shape: 0 copies the input's dimension (unless allowzero), −1 is inferred
  Reshape: (_, node, xs) => {
    const x = input(node, xs, 0, 'data');
    const want = intsOf(node, input(node, xs, 1, 'shape'), 'shape');
    const allowZero = attrInt(node, 'allowzero', 0) === 1;
    const shape = want.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
    const unknown = shape.indexOf(-1);
    if (shape.some((d, i) => d === undefined || d < -1 || (d === -1 && i !== unknown))) throw nodeError(node, `shape [${want.join(', ')}] is not valid for input [${x.shape.join(', ')}]`);
    if (unknown >= 0) {
      const known = numel(shape.filter((d) => d !== -1));
      if (known === 0 || x.data.length % known !== 0) throw nodeError(node, `cannot infer −1 in [${want.join(', ')}] for input [${x.shape.join(', ')}]`);
      shape[unknown] = x.data.length / known;
    }
    if (numel(shape) !== x.data.length) throw nodeError(node, `shape [${shape.join(', ')}] holds ${numel(shape)} elements, the input [${x.shape.join(', ')}] ${x.data.length}`);
    return [same(x, shape)];
  },

  Transpose: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'data');
    const perm = attrInts(node, 'perm') ?? [...x.shape.keys()].reverse();
    if (perm.length !== x.shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw nodeError(node, `perm [${perm.join(', ')}] is not a permutation of ${x.shape.length} axes`);
    return [transpose(ctx, x, perm)];
  },

  // (N, C, H, W) → (N, C/b², H·b, W·b), as the specification writes it: a reshape, a transpose, a
  // reshape. DCR (the default) takes the b×b offsets from the outer channel index, CRD (PyTorch's
  // PixelShuffle) from the inner one.
  DepthToSpace: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'input');
    const [N, C, H, W, b] = blocks4d(node, x);
    const mode = attrString(node, 'mode', 'DCR');
    if (C % (b * b) !== 0) throw nodeError(node, `${C} channels do not divide into blocks of ${b}×${b}`);
    const c = C / (b * b);
    if (mode !== 'DCR' && mode !== 'CRD') throw nodeError(node, `mode '${showText(mode, 20)}' is not one of 'DCR', 'CRD'`);
    const t = mode === 'DCR'
      ? transpose(ctx, same(x, [N, b, b, c, H, W]), [0, 3, 4, 1, 5, 2])
      : transpose(ctx, same(x, [N, c, b, b, H, W]), [0, 1, 4, 2, 5, 3]);
    return [same(t, [N, c, H * b, W * b])];
  },

  // (N, C, H, W) → (N, C·b², H/b, W/b): DepthToSpace's DCR undone
  SpaceToDepth: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'input');
    const [N, C, H, W, b] = blocks4d(node, x);
    if (H % b !== 0 || W % b !== 0) throw nodeError(node, `a ${H}×${W} map does not divide into blocks of ${b}×${b}`);
    return [same(transpose(ctx, same(x, [N, C, H / b, b, W / b, b]), [0, 3, 5, 1, 2, 4]), [N, C * b * b, H / b, W / b])];
  },

  // each axis repeated: out[i] = x[i mod shape] (repeats: one non-negative int64 per axis)
  Tile: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'input'), reps = intsOf(node, input(node, xs, 1, 'repeats'), 'repeats');
    if (reps.length !== x.shape.length) throw nodeError(node, `repeats has ${reps.length} values for an input of rank ${x.shape.length}`);
    if (reps.some((v) => !(v >= 0))) throw nodeError(node, `repeats [${reps.join(', ')}] must be non-negative`);
    return [replicate(ctx, x, x.shape.map((d, k) => d * reps[k]), (k, i) => i % x.shape[k])];
  },

  Concat: (ctx, node, xs) => {
    const parts = xs.filter((v): v is Value => v !== null && v !== undefined);
    if (parts.length === 0) throw nodeError(node, 'has no inputs');
    const r = parts[0].shape.length;
    const axis = normAxis(node, attrInt(node, 'axis', 0), r);
    for (const p of parts) if (p.shape.length !== r || p.shape.some((d, i) => i !== axis && d !== parts[0].shape[i])) throw nodeError(node, `inputs [${parts.map((q) => q.shape.join('×')).join('], [')}] differ outside axis ${axis}`);
    const shape = parts[0].shape.slice();
    shape[axis] = parts.reduce((s, p) => s + p.shape[axis], 0);
    const float = parts.some(isFloat);
    const out = ctx.alloc(shape, float ? 'float' : 'int');
    const outer = numel(shape.slice(0, axis)), inner = numel(shape.slice(axis + 1));
    let o = 0;
    for (let a = 0; a < outer; a++) for (const p of parts) {
      const len = p.shape[axis] * inner;
      out.set(p.data.subarray(a * len, (a + 1) * len), o);
      o += len;
    }
    return [{ dtype: float ? ctx.float : parts[0].dtype, shape, data: out }];
  },

  // sizes from the 'split' input (opset ≥ 13) or attribute, else equal parts (num_outputs or the outputs' count)
  Split: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'input');
    const axis = normAxis(node, attrInt(node, 'axis', 0), x.shape.length);
    const n = x.shape[axis];
    let sizes = ctx.opset >= 13 ? (xs[1] ? intsOf(node, xs[1], 'split') : undefined) : attrInts(node, 'split');
    if (sizes === undefined) {
      // equal parts; from opset 18 the last may be smaller (⌈n/k⌉ each before it), never absent
      const k = attrInt(node, 'num_outputs', node.outputs.length);
      if (k !== node.outputs.length) throw nodeError(node, `num_outputs ${k} but ${node.outputs.length} outputs`);
      const part = Math.ceil(n / k);
      if (ctx.opset < 18 ? n % k !== 0 : k > 1 && (k - 1) * part >= n) throw nodeError(node, `an axis of ${n} does not split into ${k} parts${ctx.opset < 18 ? ' of equal size (before opset 18)' : ` of ${part} with a smaller last one`}`);
      sizes = Array.from({ length: k }, (_, i) => Math.min(part, n - i * part));
    }
    if (sizes.reduce((a, b) => a + b, 0) !== n || sizes.some((s) => s < 0)) throw nodeError(node, `split sizes [${sizes.join(', ')}] do not add up to ${n}`);
    const outs: Value[] = [];
    let start = 0;
    for (const s of sizes) {
      const first = start;
      outs.push(take(ctx, node, x, axis, [s], (i) => first + i));
      start += s;
    }
    return outs;
  },

  // starts/ends/axes/steps as inputs (opset ≥ 10); ends clamp like Python slicing (INT64_MAX: to the end)
  Slice: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'data');
    const starts = intsOf(node, input(node, xs, 1, 'starts'), 'starts'), ends = intsOf(node, input(node, xs, 2, 'ends'), 'ends');
    const r = x.shape.length;
    const axes = xs[3] ? intsOf(node, xs[3], 'axes').map((a) => normAxis(node, a, r)) : starts.map((_, i) => i);
    const steps = xs[4] ? intsOf(node, xs[4], 'steps') : starts.map(() => 1);
    let v = x;
    axes.forEach((axis, k) => {
      const n = v.shape[axis], step = steps[k];
      if (step === 0) throw nodeError(node, 'a step of 0');
      const clamp = (p: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, p < 0 ? p + n : p));
      // Operators.md: a start is clamped to [0, n] stepping forward, [0, n − 1] stepping back; an end to
      // [0, n] and [−1, n − 1] (−1 there: past the first element, not the last)
      const s = step > 0 ? clamp(starts[k], 0, n) : clamp(starts[k], 0, n - 1);
      const e = step > 0 ? clamp(ends[k], 0, n) : clamp(ends[k], -1, n - 1);
      const count = Math.max(0, Math.ceil((e - s) / step)); // s, s + step, … short of e
      v = take(ctx, node, v, axis, [count], (j) => s + j * step);
    });
    return [v];
  },

  // Gather(data, indices, axis): out = data[..., indices[...], ...]
  Gather: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'data'), ind = input(node, xs, 1, 'indices');
    if (isFloat(ind)) throw nodeError(node, 'indices must be integers');
    return [take(ctx, node, x, normAxis(node, attrInt(node, 'axis', 0), x.shape.length), ind.shape, (j) => ind.data[j])];
  },

  // axes as an attribute before opset 13, an input from 13
  Unsqueeze: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'data');
    const raw = ctx.opset >= 13 ? intsOf(node, input(node, xs, 1, 'axes'), 'axes') : attrInts(node, 'axes') ?? [];
    const axes = raw.map((a) => normAxis(node, a, x.shape.length + raw.length)); // axes index the output
    distinctAxes(node, raw, axes);
    const shape = x.shape.slice();
    for (const a of [...axes].sort((p, q) => p - q)) shape.splice(a, 0, 1);
    return [same(x, shape)];
  },

  Squeeze: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'data');
    const given = ctx.opset >= 13 ? (xs[1] ? intsOf(node, xs[1], 'axes') : undefined) : attrInts(node, 'axes');
    const axes = given === undefined ? x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0) : given.map((a) => normAxis(node, a, x.shape.length));
    if (given !== undefined) distinctAxes(node, given, axes);
    for (const a of axes) if (x.shape[a] !== 1) throw nodeError(node, `axis ${a} has size ${x.shape[a]}, not 1`);
    return [same(x, x.shape.filter((_, i) => !axes.includes(i)))];
  },

  Expand: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'input');
    const want = intsOf(node, input(node, xs, 1, 'shape'), 'shape');
    const r = Math.max(want.length, x.shape.length);
    const shape: number[] = [];
    for (let i = 0; i < r; i++) {
      const a = x.shape[x.shape.length - r + i] ?? 1, b = want[want.length - r + i] ?? 1;
      if (a !== b && a !== 1 && b !== 1) throw nodeError(node, `cannot expand [${x.shape.join(', ')}] to [${want.join(', ')}]`);
      shape.push(a === 1 ? b : a);
    }
    const v = same(x, [...new Array<number>(r - x.shape.length).fill(1), ...x.shape]);
    return [replicate(ctx, v, shape, (k, i) => (v.shape[k] === 1 ? 0 : i))];
  },

  // Pad(data, pads [x1_begin, x2_begin, …, x1_end, …], constant_value, axes): constant, reflect or edge
  Pad: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'data');
    const r = x.shape.length;
    const mode = attrString(node, 'mode', 'constant');
    const raw = intsOf(node, input(node, xs, 1, 'pads'), 'pads');
    const axes = xs[3] ? intsOf(node, xs[3], 'axes').map((a) => normAxis(node, a, r)) : [...x.shape.keys()];
    if (raw.length !== 2 * axes.length) throw nodeError(node, `pads has ${raw.length} values for ${axes.length} axes`);
    const begin = new Array<number>(r).fill(0), end = new Array<number>(r).fill(0);
    axes.forEach((a, k) => { begin[a] = raw[k]; end[a] = raw[k + axes.length]; });
    const shape = x.shape.map((d, i) => d + begin[i] + end[i]);
    if (shape.some((d) => d < 0)) throw nodeError(node, `pads [${raw.join(', ')}] leave a negative size`);
    if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') throw nodeError(node, `mode '${mode}' is not supported`);
    // A negative pad crops first, and the positive pads then extend what is left, as onnxruntime does
    // (np.pad of the slice): axis k keeps input elements [lo, lo + kept) and edge or reflect read only those.
    const lo = begin.map((b) => Math.max(0, -b));
    const kept = x.shape.map((d, k) => d - lo[k] - Math.max(0, -end[k]));
    const before = begin.map((b) => Math.max(0, b));
    // reflect and edge copy kept elements outwards: an axis with none left has nothing to copy (NumPy refuses too)
    const empty = kept.findIndex((m, k) => m <= 0 && shape[k] > 0);
    if (mode !== 'constant' && empty >= 0) throw nodeError(node, `mode '${mode}' cannot pad axis ${empty}, which has no elements${x.shape[empty] > 0 ? ' left after the negative pads' : ''}`);
    const cv = xs[2] && xs[2].data.length > 0 ? xs[2].data[0] : 0;
    const out = ctx.alloc(shape, isFloat(x) ? 'float' : 'int');
    const xst = stridesOf(x.shape);
    const idx = new Array<number>(r).fill(0);
    for (let i = 0; i < out.length; i++) {
      let src = 0, inside = true;
      for (let k = 0; k < r; k++) {
        let j = idx[k] - before[k];
        const m = kept[k];
        if (j < 0 || j >= m) {
          if (mode === 'constant') { inside = false; break; }
          if (mode === 'edge') j = j < 0 ? 0 : m - 1;
          else { const period = 2 * (m - 1) || 1; j = ((j % period) + period) % period; if (j >= m) j = period - j; }
        }
        src += (lo[k] + j) * xst[k];
      }
      out[i] = inside ? x.data[src] : cv;
      for (let k = r - 1; k >= 0; k--) { if (++idx[k] < shape[k]) break; idx[k] = 0; }
    }
    return [{ dtype: x.dtype, shape, data: out }];
  },

  // Range(start, limit, delta): start, start + delta, … while before limit
  Range: (ctx, node, xs) => {
    const [start, limit, delta] = [0, 1, 2].map((i) => input(node, xs, i, ['start', 'limit', 'delta'][i]));
    const [a, b, d] = [start.data[0], limit.data[0], delta.data[0]];
    if (d === 0) throw nodeError(node, 'delta is 0');
    const n = Math.max(0, Math.ceil((b - a) / d));
    const float = isFloat(start);
    const out = ctx.alloc([n], float ? 'float' : 'int');
    for (let i = 0; i < n; i++) out[i] = a + i * d;
    return [{ dtype: start.dtype, shape: [n], data: out }];
  },

  // ScatterND(data, indices, updates), reduction 'none': a copy of data with data[indices[i]] = updates[i]
  ScatterND: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'data'), ind = input(node, xs, 1, 'indices'), upd = input(node, xs, 2, 'updates');
    if ((node.attributes.get('reduction')?.value ?? 'none') !== 'none') throw nodeError(node, 'only reduction = none is supported');
    const k = ind.shape[ind.shape.length - 1];
    if (k === undefined || k > x.shape.length) throw nodeError(node, `indices of shape [${ind.shape.join(', ')}] do not index data of rank ${x.shape.length}`);
    const slice = numel(x.shape.slice(k)), st = stridesOf(x.shape);
    if (upd.data.length !== (ind.data.length / k) * slice) throw nodeError(node, `updates of shape [${upd.shape.join(', ')}] for indices [${ind.shape.join(', ')}] into data [${x.shape.join(', ')}]: need indices.shape[:-1] + data.shape[${k}:]`);
    const out = ctx.alloc(x.shape, isFloat(x) ? 'float' : 'int');
    out.set(x.data);
    for (let u = 0; u < ind.data.length / k; u++) {
      let at = 0;
      for (let j = 0; j < k; j++) {
        const n = x.shape[j], i = ind.data[u * k + j];
        if (!Number.isInteger(i) || i < -n || i >= n) throw nodeError(node, `index ${i} is out of range for a dimension of ${n}`);
        at += (i < 0 ? i + n : i) * st[j];
      }
      out.set(upd.data.subarray(u * slice, (u + 1) * slice), at);
    }
    return [{ dtype: x.dtype, shape: x.shape, data: out }];
  },

  Where: (ctx, node, xs) => {
    const c = input(node, xs, 0, 'condition'), a = input(node, xs, 1, 'X'), b = input(node, xs, 2, 'Y');
    if (c.dtype !== 'bool') throw nodeError(node, `condition is ${c.dtype}; it must be bool`);
    if (a.dtype !== b.dtype) throw nodeError(node, `X is ${a.dtype} and Y is ${b.dtype}; they must be one type`);
    // the three shapes broadcast together (NumPy's rule, each pair checked)
    const shape = broadcastShape(node, broadcastShape(node, c.shape, a.shape), b.shape);
    const float = isFloat(a);
    const out = ctx.alloc(shape, float ? 'float' : 'int');
    const at = (v: Value, i: number) => { // broadcast read by unravelling i
      let src = 0, rest = i, mul = 1;
      for (let k = shape.length - 1, j = v.shape.length - 1; k >= 0; k--, j--) {
        const d = rest % shape[k]; rest = (rest - d) / shape[k];
        if (j >= 0) { if (v.shape[j] !== 1) src += d * mul; mul *= v.shape[j]; }
      }
      return v.data[src];
    };
    for (let i = 0; i < out.length; i++) out[i] = at(c, i) !== 0 ? at(a, i) : at(b, i);
    return [{ dtype: float ? ctx.float : a.dtype, shape, data: out }];
  },
};
