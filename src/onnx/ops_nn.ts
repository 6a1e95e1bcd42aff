// ONNX's convolution, normalisation, pooling and resampling ops (onnx/docs/Operators.md), 2-D
// (NCHW), forward only. Conv runs on the engine's conv2d (im2col/Winograd/direct, SIMD and threads
// in float32; the float64 reference in float64); the others are plain loops accumulating in float64.

import type { OnnxNode } from '../io/onnx_read.js';
import { type FloatArray, type OpContext, type Value, attrFloat, attrInt, attrInts, attrString, broadcastShape, broadcastStrides, input, intsOf, nodeError, normAxis, numel, toFloat } from './value.js';
import { type ConvAlgorithm, conv2d, convGeometry } from '../ops/conv2d.js';
import { Conv2d } from '../nn/layers.js';
import { Tensor } from '../tensor/tensor.js';
import { showText } from '../tensor/untrusted.js';

type Ctx = OpContext & { algorithm: ConvAlgorithm; reluAfter?: OnnxNode; cacheConvs?: boolean };
type Op = (ctx: Ctx, node: OnnxNode, xs: (Value | null)[]) => Value[];

/** Conv2d modules per node and precision, sharing the weight and bias arrays (an initializer's value is the same array every run). */
const CONVS = new WeakMap<OnnxNode, Map<string, { conv: Conv2d; w: Value['data']; b: Value['data'] | null }>>();

function preparedConv(node: OnnxNode, w: Value, b: Value | null, win: Window, groups: number, dtype: 'float32' | 'float64', keep: boolean): Conv2d {
  let byDtype = CONVS.get(node);
  if (!keep) byDtype = new Map(); // a run that frees its weights after use must not keep them here
  if (byDtype === undefined) CONVS.set(node, byDtype = new Map());
  const hit = byDtype.get(dtype);
  if (hit !== undefined && hit.w === w.data && hit.b === (b?.data ?? null)) return hit.conv;
  const conv = new Conv2d(w.shape[1] * groups, w.shape[0], [w.shape[2], w.shape[3]], {
    stride: [win.sh, win.sw], dilation: [win.dh, win.dw], padding: [[win.pt, win.pb], [win.pl, win.pr]], groups, bias: b !== null, dtype, init: false,
  }).eval();
  conv.weight.data = new Tensor(w.data, w.shape);
  if (b !== null) conv.bias!.data = new Tensor(b.data, b.shape);
  if (keep) byDtype.set(dtype, { conv, w: w.data, b: b?.data ?? null });
  return conv;
}

// A node whose window lists are rewritten for the 2-D ops, made once per node (so the prepared-conv
// cache, keyed by node, keeps working across runs): `list` rewrites kernel_shape, strides, dilations,
// output_padding and output_shape, `pads` the pads; each returns undefined to keep a list as it is.
const WINDOW_LISTS = ['kernel_shape', 'strides', 'dilations', 'output_padding', 'output_shape'];
function rewritten(cache: WeakMap<OnnxNode, OnnxNode>, node: OnnxNode, list: (name: string, v: number[]) => number[] | undefined, pads: (v: number[]) => number[] | undefined): OnnxNode {
  let out = cache.get(node);
  if (out === undefined) {
    const attributes = new Map(node.attributes);
    for (const [name, a] of node.attributes) {
      if (a.kind !== 'ints') continue;
      const v = name === 'pads' ? pads(a.value) : WINDOW_LISTS.includes(name) ? list(name, a.value) : undefined;
      if (v !== undefined) attributes.set(name, { kind: 'ints', value: v });
    }
    cache.set(node, out = { ...node, attributes });
  }
  return out;
}

// 1-D windows (N, C, L) run as 2-D ones of height 1: the window lists widened to two axes ([v] →
// [1, v], output_padding [p] → [0, p], pads [a, b] → [0, a, 0, b]), X and W given a unit axis 2 and
// the outputs' taken away again.
const WIDENED = new WeakMap<OnnxNode, OnnxNode>();
const widened = (node: OnnxNode) => rewritten(WIDENED, node, (name, v) => (v.length === 1 ? [name === 'output_padding' ? 0 : 1, v[0]] : undefined), (v) => (v.length === 2 ? [0, v[0], 0, v[1]] : undefined));
/** `op` for 1-D input too: a 3-D X (and the weights at `weights`) through the 2-D op with a unit height. */
export function oneD<C extends OpContext & { reluAfter?: OnnxNode }>(op: (ctx: C, node: OnnxNode, xs: (Value | null)[]) => Value[], weights: number[]): (ctx: C, node: OnnxNode, xs: (Value | null)[]) => Value[] {
  return (ctx, node, xs) => {
    if (xs[0]?.shape.length !== 3) return op(ctx, node, xs);
    for (const i of weights) if (xs[i] && xs[i]!.shape.length !== 3) throw nodeError(node, `a 1-D input (N, C, L) needs a 3-D weight, got [${xs[i]!.shape.join(', ')}]`);
    const wide = widened(node);
    const unit = (v: Value | null, i: number): Value | null => (v !== null && v.shape.length === 3 && (i === 0 || weights.includes(i)) ? { ...v, shape: [v.shape[0], v.shape[1], 1, v.shape[2]] } : v);
    const ys = op(ctx.reluAfter === node ? { ...ctx, reluAfter: wide } : ctx, wide, xs.map(unit)); // a ReLU fused into this conv stays fused
    return ys.map((y) => (y.shape.length === 4 ? { ...y, shape: [y.shape[0], y.shape[1], y.shape[3]] } : y));
  };
}

// 3-D windows (N, C, D, H, W): the depth axis is looped here and each depth slice goes through the
// 2-D kernels on the node's height and width attributes (`plane`: the node with its 3-value lists cut
// to their last two, pads [d₀, h₀, w₀, d₁, h₁, w₁] to [h₀, w₀, h₁, w₁]), so a 3-D conv runs on the
// same SIMD GEMM as a 2-D one.
const PLANES = new WeakMap<OnnxNode, OnnxNode>();
const plane = (node: OnnxNode) => rewritten(PLANES, node, (_, v) => (v.length === 3 ? v.slice(1) : undefined), (v) => (v.length === 6 ? [v[1], v[2], v[4], v[5]] : undefined));
interface Axis { k: number; s: number; d: number; p0: number; p1: number }
/** The depth axis of a 3-D window op (its first kernel, stride, dilation and pads), auto_pad resolved for depth D. */
function depthAxis(node: OnnxNode, D: number, kernel: number | undefined): Axis {
  const list = (name: string, n: number, dflt: number[]) => {
    const v = attrInts(node, name) ?? dflt;
    if (v.length !== n) throw nodeError(node, `${name} must have ${n} values for 3-D input, got [${v.join(', ')}]`);
    return v;
  };
  const ks = attrInts(node, 'kernel_shape');
  if (ks === undefined && kernel === undefined) throw nodeError(node, 'kernel_shape is required');
  const k = ks === undefined ? kernel! : list('kernel_shape', 3, [])[0], s = list('strides', 3, [1, 1, 1])[0], d = list('dilations', 3, [1, 1, 1])[0];
  let [p0, , , p1] = list('pads', 6, [0, 0, 0, 0, 0, 0]);
  const auto = attrString(node, 'auto_pad', 'NOTSET');
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') { // as window2d
    [p0, p1] = splitPad(samePad(D, s, k, d), auto);
  } else if (auto === 'VALID') [p0, p1] = [0, 0];
  if (![k, s, d].every((v) => Number.isInteger(v) && v >= 1) || ![p0, p1].every((v) => Number.isInteger(v) && v >= 0)) throw nodeError(node, 'kernel, strides, dilations and pads must be positive (pads non-negative) integers');
  return { k, s, d, p0, p1 };
}
/** x[:, :, i] of a 5-D value as a 4-D one (N, C, H, W). */
function depthSlice(ctx: OpContext, x: Value, i: number): Value {
  const [N, C, D, H, W] = x.shape, P = H * W, out = ctx.alloc([N, C, H, W], 'float');
  for (let nc = 0; nc < N * C; nc++) out.set(x.data.subarray((nc * D + i) * P, (nc * D + i + 1) * P), nc * P);
  return { dtype: x.dtype, shape: [N, C, H, W], data: out };
}

// y[:, :, o] = b + Σₖ conv2d(x[:, :, o·s − p + k·d], W[:, :, k]) over the depth taps inside the input
// (the depth padding adds nothing), summed in float64 and rounded once
function conv3d(ctx: Ctx, node: OnnxNode, x: Value, w: Value, b: Value | null): Value {
  if (w.shape.length !== 5) throw nodeError(node, `a 3-D input needs a 5-D weight, got [${w.shape.join(', ')}]`);
  const [N, , D, H, W] = x.shape, [F, Cg, KD, KH, KW] = w.shape;
  const ax = depthAxis(node, D, KD);
  if (ax.k !== KD) throw nodeError(node, `kernel_shape's depth ${ax.k} does not match W [${w.shape.join(', ')}]`);
  const win = window2d(plane(node), H, W, [KH, KW]);
  const Do = Math.floor((D + ax.p0 + ax.p1 - ((KD - 1) * ax.d + 1)) / ax.s) + 1;
  if (Do < 1) throw nodeError(node, `input depth ${D} (padded ${D + ax.p0 + ax.p1}) is smaller than the kernel's ${(KD - 1) * ax.d + 1}`);
  const opts = { stride: [win.sh, win.sw] as [number, number], dilation: [win.dh, win.dw] as [number, number], padding: [[win.pt, win.pb], [win.pl, win.pr]] as [[number, number], [number, number]], groups: attrInt(node, 'group', 1), algorithm: ctx.algorithm };
  // W[:, :, k] as (F, C/g, kH, kW) tensors
  const taps = Array.from({ length: KD }, (_, k) => {
    const t = ctx.alloc([F, Cg, KH, KW], 'float');
    for (let fc = 0; fc < F * Cg; fc++) t.set(w.data.subarray((fc * KD + k) * KH * KW, (fc * KD + k + 1) * KH * KW), fc * KH * KW);
    return new Tensor(t, [F, Cg, KH, KW]);
  });
  let Ho: number, Wo: number;
  try { ({ Ho, Wo } = convGeometry([N, x.shape[1], H, W], [F, Cg, KH, KW], opts)); } catch (e) { throw nodeError(node, (e as Error).message); }
  const acc = ctx.alloc([N, F, Do, Ho, Wo], 'int'), P = Ho * Wo; // a float64 accumulator ('int' values are float64); a depth in the padding keeps 0
  for (let o = 0; o < Do; o++) {
    for (let k = 0; k < KD; k++) {
      const i = o * ax.s - ax.p0 + k * ax.d;
      if (i < 0 || i >= D) continue;
      const xs = depthSlice(ctx, x, i);
      const y = conv2d(new Tensor(xs.data, xs.shape), taps[k], null, opts);
      for (let nf = 0; nf < N * F; nf++) for (let q = 0, to = (nf * Do + o) * P, from = nf * P; q < P; q++) acc[to + q] += y.data[from + q];
    }
  }
  const out = ctx.alloc([N, F, Do, Ho, Wo], 'float'), per = Do * Ho * Wo, relu = ctx.reluAfter === node; // a ReLU that alone reads y, in this pass
  for (let i = 0; i < out.length; i++) {
    const v = acc[i] + (b === null ? 0 : b.data[Math.floor(i / per) % F]);
    out[i] = relu && v < 0 ? 0 : v;
  }
  return { dtype: ctx.float, shape: [N, F, Do, Ho, Wo], data: out };
}

// The adjoint of conv3d: each input depth i scatters through depth tap k to output depth
// i·s − p₀ + k·d, as the 2-D transposed conv of its slice with W[:, :, k] (no bias; added once at the
// end), summed in float64. The depth's output size as for 2-D: s·(D − 1) + output_padding + (k − 1)·d + 1
// less the pads, or output_shape / SAME (D·s) with the pads split as the specification says.
function convTranspose3d(ctx: Ctx, node: OnnxNode, x: Value, w: Value, b: Value | null, convTranspose2d: Op): Value {
  if (w.shape.length !== 5) throw nodeError(node, `a 3-D input needs a 5-D weight, got [${w.shape.join(', ')}]`);
  const [N, , D] = x.shape, [Cw, Fg, KD, KH, KW] = w.shape;
  const auto = attrString(node, 'auto_pad', 'NOTSET');
  const ax = depthAxis(auto === 'NOTSET' || auto === 'VALID' ? node : { ...node, attributes: new Map([...node.attributes].filter(([k]) => k !== 'auto_pad')) }, D, KD);
  if (ax.k !== KD) throw nodeError(node, `kernel_shape's depth ${ax.k} does not match W [${w.shape.join(', ')}]`);
  const op = (attrInts(node, 'output_padding') ?? [0, 0, 0])[0], target = attrInts(node, 'output_shape');
  if (!(Number.isInteger(op) && op >= 0 && op < Math.max(ax.s, ax.d))) throw nodeError(node, `output_padding's depth ${op} must be non-negative and smaller than the depth stride or dilation`);
  const full = ax.s * (D - 1) + op + (KD - 1) * ax.d + 1;
  let [p0, p1] = [ax.p0, ax.p1];
  const want = target !== undefined ? target.at(-3) : auto === 'SAME_UPPER' || auto === 'SAME_LOWER' ? D * ax.s : undefined;
  if (want !== undefined) {
    if (!(Number.isInteger(want) && want >= 1 && want <= full)) throw nodeError(node, `output depth ${want} must be from 1 to what the transposed conv reaches, ${full}`);
    [p0, p1] = splitPad(full - want, auto);
  }
  const Do = full - p0 - p1;
  if (Do < 1) throw nodeError(node, `the output depth would be ${Do}`);
  const flat = plane(node);
  const tapOf = (k: number): Value => { // W[:, :, k] as (C, F/g, kH, kW)
    const t = ctx.alloc([Cw, Fg, KH, KW], 'float');
    for (let cf = 0; cf < Cw * Fg; cf++) t.set(w.data.subarray((cf * KD + k) * KH * KW, (cf * KD + k + 1) * KH * KW), cf * KH * KW);
    return { dtype: w.dtype, shape: [Cw, Fg, KH, KW], data: t };
  };
  // the plane's output size from one 2-D call (the 2-D op resolves its pads, output_shape and SAME)
  const first = convTranspose2d(ctx, flat, [depthSlice(ctx, x, 0), tapOf(0)])[0];
  const [, F, Ho, Wo] = first.shape, P = Ho * Wo, shape = [N, F, Do, Ho, Wo];
  const acc = ctx.alloc(shape, 'int'); // float64; an output depth no input reaches keeps 0 (then the bias)
  for (let k = 0; k < KD; k++) {
    const tap = tapOf(k);
    for (let i = 0; i < D; i++) {
      const o = i * ax.s - p0 + k * ax.d;
      if (o < 0 || o >= Do) continue;
      const y = k === 0 && i === 0 ? first : convTranspose2d(ctx, flat, [depthSlice(ctx, x, i), tap])[0];
      for (let nf = 0; nf < N * F; nf++) for (let q = 0, to = (nf * Do + o) * P, from = nf * P; q < P; q++) acc[to + q] += y.data[from + q];
    }
  }
  const out = ctx.alloc(shape, 'float'), per = Do * P;
  for (let i = 0; i < out.length; i++) out[i] = acc[i] + (b === null ? 0 : b.data[Math.floor(i / per) % F]);
  return { dtype: ctx.float, shape, data: out };
}

// Max and average pooling of (N, C, D, H, W): the 2-D pool of each depth slice, then over the depth
// window: the max of those maxima, or the mean of those means divided by the depth taps counted
// (inside the input, or with count_include_pad inside the padded input): a box window's count is the
// product of its axes' counts, so Σ_d sum_hw / (count_d·count_hw) = Σ_d mean_hw / count_d
function pool3d(ctx: Ctx, node: OnnxNode, x: Value, kind: 'max' | 'avg', pool2d: Op): Value {
  const [N, C, D] = x.shape;
  const ax = depthAxis(node, D, undefined);
  const ceil = attrInt(node, 'ceil_mode', 0) === 1, includePad = attrInt(node, 'count_include_pad', 0) === 1;
  const extent = (ax.k - 1) * ax.d + 1;
  if (Math.max(ax.p0, ax.p1) >= extent) throw nodeError(node, `depth pads [${ax.p0}, ${ax.p1}] must be smaller than the depth window ${extent}`);
  const Do = pooledLength(D, ax.k, ax.s, ax.d, ax.p0, ax.p1, ceil);
  if (Do < 1) throw nodeError(node, `input depth ${D} (padded ${D + ax.p0 + ax.p1}) is smaller than the depth window ${extent}`);
  const slices = new Map<number, Value>(); // each input depth's 2-D pool, made once
  const slice = (i: number) => { let v = slices.get(i); if (v === undefined) slices.set(i, v = pool2d(ctx, plane(node), [depthSlice(ctx, x, i)])[0]); return v; };
  let out: FloatArray | null = null, P = 0, shape: number[] = [];
  for (let o = 0; o < Do; o++) {
    let inside = 0, padded = 0;
    for (let k = 0; k < ax.k; k++) {
      const i = o * ax.s - ax.p0 + k * ax.d;
      if (i >= D + ax.p1) break;
      padded++;
      if (i < 0 || i >= D) continue;
      const y = slice(i);
      if (out === null) { P = y.shape[2] * y.shape[3]; shape = [N, C, Do, y.shape[2], y.shape[3]]; out = ctx.alloc(shape, 'float').fill(kind === 'max' ? -Infinity : 0); }
      for (let nc = 0; nc < N * C; nc++) for (let q = 0, to = (nc * Do + o) * P, from = nc * P; q < P; q++) {
        const v = y.data[from + q];
        if (kind === 'avg') out[to + q] += v;
        else if (v > out[to + q] || Number.isNaN(v)) out[to + q] = Number.isNaN(out[to + q]) ? out[to + q] : v; // NaN propagates
      }
      inside++;
    }
    if (kind === 'avg' && out !== null) for (let nc = 0; nc < N * C; nc++) for (let q = 0, to = (nc * Do + o) * P; q < P; q++) out[to + q] /= includePad ? padded : inside;
  }
  if (out === null) throw nodeError(node, 'every output depth lies in the padding');
  return { dtype: ctx.float, shape, data: out };
}

export const expect4d = (node: OnnxNode, v: Value, what: string): void => {
  if (v.shape.length !== 4) throw nodeError(node, `${what} must be 4-D (N, C, H, W); got shape [${v.shape.join(', ')}] (1-D (N, C, L) runs too, and 3-D (N, C, D, H, W) in Conv, ConvTranspose, MaxPool and AveragePool)`);
};

export interface Window { kh: number; kw: number; sh: number; sw: number; dh: number; dw: number; pt: number; pl: number; pb: number; pr: number }

// an ints attribute of a 2-D op, of the length its spatial rank asks for (a short list would leave
// an axis undefined, not default)
function attrList(node: OnnxNode, name: string, otherwise: number[]): number[] {
  const v = attrInts(node, name) ?? otherwise;
  if (v.length !== otherwise.length) throw nodeError(node, `${name} must have ${otherwise.length} values for 2-D input, got [${v.join(', ')}]`);
  return v;
}

// auto_pad: the total padding SAME gives a conv axis of n (so that out = ⌈n / s⌉; none where the
// stride exceeds the window, as TensorFlow), and how a total splits: the odd one at the end for
// SAME_UPPER, at the start otherwise (SAME_LOWER, and a transposed conv's output_shape)
const samePad = (n: number, s: number, k: number, d: number): number => Math.max(0, (Math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n);
const splitPad = (total: number, auto: string): [number, number] =>
  (auto === 'SAME_UPPER' ? [Math.floor(total / 2), total - Math.floor(total / 2)] : [total - Math.floor(total / 2), Math.floor(total / 2)]);

/** kernel, strides, dilations and pads of a 2-D window op, with auto_pad resolved for input H×W. */
export function window2d(node: OnnxNode, H: number, W: number, kernel: number[] | undefined): Window {
  const k = attrInts(node, 'kernel_shape') ?? kernel;
  if (k === undefined || k.length !== 2) throw nodeError(node, `kernel_shape must have 2 values, got ${k === undefined ? 'none' : `[${k.join(', ')}]`}`);
  const [sh, sw] = attrList(node, 'strides', [1, 1]);
  const [dh, dw] = attrList(node, 'dilations', [1, 1]);
  let [pt, pl, pb, pr] = attrList(node, 'pads', [0, 0, 0, 0]);
  const auto = attrString(node, 'auto_pad', 'NOTSET');
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    [pt, pb] = splitPad(samePad(H, sh, k[0], dh), auto);
    [pl, pr] = splitPad(samePad(W, sw, k[1], dw), auto);
  } else if (auto === 'VALID') [pt, pl, pb, pr] = [0, 0, 0, 0];
  else if (auto !== 'NOTSET') throw nodeError(node, `auto_pad '${auto}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`);
  for (const v of [k[0], k[1], sh, sw, dh, dw]) if (!Number.isInteger(v) || v < 1) throw nodeError(node, 'kernel, strides and dilations must be positive integers');
  for (const v of [pt, pl, pb, pr]) if (!Number.isInteger(v) || v < 0) throw nodeError(node, 'pads must be non-negative integers');
  return { kh: k[0], kw: k[1], sh, sw, dh, dw, pt, pl, pb, pr };
}

/** Output length of a pooling window: floor, or ceil where the last window still starts inside the input or its left padding (PyTorch's rule). */
function pooledLength(n: number, k: number, s: number, d: number, p0: number, p1: number, ceil: boolean): number {
  const span = n + p0 + p1 - ((k - 1) * d + 1);
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= n + p0) out--;
  return out;
}

/** Max or average over each window; windows are clipped to the padded input, and padding never wins a max. */
function pool(kind: 'max' | 'avg'): Op {
  const self: Op = (ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'X'));
    if (x.shape.length === 5) return [pool3d(ctx, node, x, kind, self)];
    expect4d(node, x, 'X');
    const [N, C, H, W] = x.shape;
    const w = window2d(node, H, W, undefined);
    const ceil = attrInt(node, 'ceil_mode', 0) === 1, includePad = attrInt(node, 'count_include_pad', 0) === 1;
    // the window's extent, dilated: (k − 1)·d + 1
    const eh = (w.kh - 1) * w.dh + 1, ew = (w.kw - 1) * w.dw + 1, extent = `${eh}×${ew}${w.dh > 1 || w.dw > 1 ? ` (${w.kh}×${w.kw} dilated)` : ''}`;
    // a pad as wide as the window puts a whole window in the padding: no input to take a max or mean of
    // (onnxruntime refuses it too; PyTorch allows at most half the window)
    if (Math.max(w.pt, w.pb) >= eh || Math.max(w.pl, w.pr) >= ew) throw nodeError(node, `pads [${w.pt}, ${w.pl}, ${w.pb}, ${w.pr}] must be smaller than the ${extent} window`);
    const Ho = pooledLength(H, w.kh, w.sh, w.dh, w.pt, w.pb, ceil), Wo = pooledLength(W, w.kw, w.sw, w.dw, w.pl, w.pr, ceil);
    if (Ho < 1 || Wo < 1) throw nodeError(node, `input ${H}×${W} (padded ${H + w.pt + w.pb}×${W + w.pl + w.pr}) is smaller than the ${extent} window`);
    const y = ctx.alloc([N, C, Ho, Wo], 'float');
    for (let nc = 0; nc < N * C; nc++) {
      const xo = nc * H * W, yo = nc * Ho * Wo;
      for (let oh = 0; oh < Ho; oh++) for (let ow = 0; ow < Wo; ow++) {
        const h0 = oh * w.sh - w.pt, w0 = ow * w.sw - w.pl;
        let m = -Infinity, s = 0, inside = 0, padded = 0;
        for (let i = 0; i < w.kh; i++) {
          const h = h0 + i * w.dh;
          if (h >= H + w.pb) break;
          for (let j = 0; j < w.kw; j++) {
            const c = w0 + j * w.dw;
            if (c >= W + w.pr) break;
            padded++;
            if (h < 0 || h >= H || c < 0 || c >= W) continue;
            const v = x.data[xo + h * W + c];
            inside++;
            s += v;
            if (v > m || Number.isNaN(v)) m = Number.isNaN(m) ? m : v; // NaN propagates, as in PyTorch
          }
        }
        y[yo + oh * Wo + ow] = kind === 'max' ? m : s / (includePad ? padded : inside);
      }
    }
    return [{ dtype: ctx.float, shape: [N, C, Ho, Wo], data: y }];
  };
  return self;
}

/** Mean (or max) over every spatial position, keeping the axes as size 1. */
function globalPool(kind: 'max' | 'avg'): Op {
  return (ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'X'));
    if (x.shape.length < 3) throw nodeError(node, `X must be at least 3-D, got [${x.shape.join(', ')}]`);
    const NC = x.shape[0] * x.shape[1], P = x.data.length / (NC || 1);
    const shape = [x.shape[0], x.shape[1], ...x.shape.slice(2).map(() => 1)];
    const y = ctx.alloc(shape, 'float');
    for (let nc = 0; nc < NC; nc++) {
      let s = 0, m = -Infinity;
      for (let i = nc * P; i < (nc + 1) * P; i++) { s += x.data[i]; m = Math.max(m, x.data[i]); }
      y[nc] = kind === 'avg' ? s / P : m;
    }
    return [{ dtype: ctx.float, shape, data: y }];
  };
}

// [μ, 1/√(σ² + ε)] of data[off … off + len − 1]: the mean, then the biased variance around it (two
// passes in float64, no cancellation of E[x²] − μ²)
function meanInvStd(data: ArrayLike<number>, off: number, len: number, eps: number): [number, number] {
  let sum = 0;
  for (let i = off; i < off + len; i++) sum += data[i];
  const m = sum / len;
  let sq = 0;
  for (let i = off; i < off + len; i++) sq += (data[i] - m) * (data[i] - m);
  return [m, 1 / Math.sqrt(sq / len + eps)];
}

export const NN_OPS: Record<string, Op> = {
  // On a Conv2d module built once per node and precision (prepared filters kept across runs, as a
  // deploy model keeps them); a ReLU that alone reads the output runs in the conv's output pass
  // (the same bits as a separate ReLU).
  Conv: oneD((ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'X')), w = toFloat(ctx, input(node, xs, 1, 'W'));
    const b = xs[2] ? toFloat(ctx, xs[2]) : null;
    if (x.shape.length === 5) return [conv3d(ctx, node, x, w, b)];
    expect4d(node, x, 'X');
    expect4d(node, w, 'W');
    const win = window2d(node, x.shape[2], x.shape[3], w.shape.slice(2));
    if (win.kh !== w.shape[2] || win.kw !== w.shape[3]) throw nodeError(node, `kernel_shape [${win.kh}, ${win.kw}] does not match W [${w.shape.join(', ')}]`);
    const groups = attrInt(node, 'group', 1);
    try {
      // the engine's own geometry (channel and group checks, output size) before the output is allocated
      const g = convGeometry(x.shape, w.shape, { stride: [win.sh, win.sw], dilation: [win.dh, win.dw], padding: [[win.pt, win.pb], [win.pl, win.pr]], groups });
      const shape = [g.N, g.F, g.Ho, g.Wo];
      const conv = preparedConv(node, w, b, win, groups, ctx.float, ctx.cacheConvs !== false);
      conv.algorithm = ctx.algorithm;
      const y = conv.forward(new Tensor(x.data, x.shape), new Tensor(ctx.alloc(shape, 'float'), shape), ctx.reluAfter === node);
      return [{ dtype: ctx.float, shape: y.shape.slice(), data: y.data }];
    } catch (e) {
      throw nodeError(node, (e as Error).message);
    }
  }, [1]),

  // y = s·(H−1) + output_padding + (k−1)·d + 1 − pads; each input element scatters its kernel-weighted
  // values into the output (the adjoint of Conv), accumulated in float64
  ConvTranspose: oneD(function convTranspose(ctx, node, xs): Value[] {
    const x = toFloat(ctx, input(node, xs, 0, 'X')), w = toFloat(ctx, input(node, xs, 1, 'W'));
    if (x.shape.length === 5) return [convTranspose3d(ctx, node, x, w, xs[2] ? toFloat(ctx, xs[2]) : null, convTranspose)];
    expect4d(node, x, 'X');
    expect4d(node, w, 'W');
    const [N, C, H, W] = x.shape, [Cw, Fg, KH, KW] = w.shape;
    const groups = attrInt(node, 'group', 1);
    if (!Number.isInteger(groups) || groups < 1) throw nodeError(node, `group must be a positive integer, got ${groups}`);
    if (Cw !== C || C % groups !== 0) throw nodeError(node, `W [${w.shape.join(', ')}] does not match ${C} input channels in ${groups} groups`);
    // kernel (as W has it), strides, dilations and pads checked as every window op's are (auto_pad
    // below: a transposed conv's SAME is not Conv's)
    const auto = attrString(node, 'auto_pad', 'NOTSET'), target = attrInts(node, 'output_shape');
    if (!['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'].includes(auto)) throw nodeError(node, `auto_pad '${showText(auto, 20)}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`);
    const win = window2d(auto === 'NOTSET' ? node : { ...node, attributes: new Map([...node.attributes].filter(([k]) => k !== 'auto_pad')) }, H, W, [KH, KW]);
    const { kh, kw, sh, sw, dh, dw } = win;
    let { pt, pl, pb, pr } = win;
    if (kh !== KH || kw !== KW) throw nodeError(node, `kernel_shape [${kh}, ${kw}] does not match W [${w.shape.join(', ')}]`);
    // PyTorch's rule: output padding below the stride or the dilation (it adds rows no input reaches otherwise)
    const [oph, opw] = attrList(node, 'output_padding', [0, 0]);
    if (!(Number.isInteger(oph) && oph >= 0 && oph < Math.max(sh, dh) && Number.isInteger(opw) && opw >= 0 && opw < Math.max(sw, dw))) {
      throw nodeError(node, `output_padding [${oph}, ${opw}] must be non-negative and smaller than the stride or the dilation on each axis (strides [${sh}, ${sw}], dilations [${dh}, ${dw}])`);
    }
    // the unpadded output s·(n − 1) + output_padding + (k − 1)·d + 1, padded down to output_shape (its
    // spatial dims), or with SAME to n·s; the pads then split as the specification says: the odd one
    // at the end for SAME_UPPER, at the start otherwise
    const full = [sh * (H - 1) + oph + (KH - 1) * dh + 1, sw * (W - 1) + opw + (KW - 1) * dw + 1];
    if (auto === 'VALID') [pt, pl, pb, pr] = [0, 0, 0, 0];
    const want = target !== undefined ? target.slice(-2) : auto === 'SAME_UPPER' || auto === 'SAME_LOWER' ? [H * sh, W * sw] : null;
    if (want !== null) {
      if (want.length !== 2 || want.some((v, i) => !Number.isInteger(v) || v < 1 || v > full[i])) throw nodeError(node, `output_shape [${want.join(', ')}] must be 2 spatial sizes from 1 to what the transposed conv reaches, [${full.join(', ')}]`);
      [pt, pb] = splitPad(full[0] - want[0], auto);
      [pl, pr] = splitPad(full[1] - want[1], auto);
    }
    const Ho = full[0] - pt - pb, Wo = full[1] - pl - pr;
    const F = Fg * groups, Cg = C / groups;
    if (Ho < 1 || Wo < 1) throw nodeError(node, `the output would be ${Ho}×${Wo}`);
    const y = ctx.alloc([N, F, Ho, Wo], 'float');
    const acc = ctx.alloc([N, F, Ho, Wo], 'int'); // a float64 accumulator ('int' values are float64)
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
      const g = Math.floor(c / Cg);
      for (let h = 0; h < H; h++) for (let ww = 0; ww < W; ww++) {
        const v = x.data[((n * C + c) * H + h) * W + ww];
        for (let f = 0; f < Fg; f++) {
          const yo = (n * F + g * Fg + f) * Ho * Wo, wo = (c * Fg + f) * KH * KW;
          for (let i = 0; i < KH; i++) {
            const oh = h * sh - pt + i * dh;
            if (oh < 0 || oh >= Ho) continue;
            for (let j = 0; j < KW; j++) {
              const ow = ww * sw - pl + j * dw;
              if (ow >= 0 && ow < Wo) acc[yo + oh * Wo + ow] += v * w.data[wo + i * KW + j];
            }
          }
        }
      }
    }
    const b = xs[2] ? toFloat(ctx, xs[2]) : null;
    for (let i = 0; i < y.length; i++) y[i] = acc[i] + (b === null ? 0 : b.data[Math.floor(i / (Ho * Wo)) % F]);
    return [{ dtype: ctx.float, shape: [N, F, Ho, Wo], data: y }];
  }, [1]),

  // inference: y = scale·(x − mean)/√(var + ε) + B per channel (axis 1), in float64 then rounded once
  BatchNormalization: (ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'X'));
    const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => toFloat(ctx, input(node, xs, i, ['', 'scale', 'B', 'input_mean', 'input_var'][i])));
    if (attrInt(node, 'training_mode', 0) !== 0) throw nodeError(node, 'training_mode = 1 is not supported (export the model in eval mode)');
    const eps = attrFloat(node, 'epsilon', 1e-5);
    const C = x.shape[1], P = x.data.length / ((x.shape[0] * C) || 1);
    for (const [name, v] of [['scale', scale], ['B', bias], ['input_mean', mean], ['input_var', variance]] as const) if (v.data.length !== C) throw nodeError(node, `${name} has ${v.data.length} values for ${C} channels`);
    const y = ctx.alloc(x.shape, 'float');
    for (let c = 0; c < C; c++) {
      const k = scale.data[c] / Math.sqrt(variance.data[c] + eps), mu = mean.data[c], beta = bias.data[c];
      for (let n = 0; n < x.shape[0]; n++) for (let i = (n * C + c) * P, e = i + P; i < e; i++) y[i] = (x.data[i] - mu) * k + beta;
    }
    return [{ dtype: ctx.float, shape: x.shape, data: y }];
  },

  // y = (x − μ)/√(σ² + ε)·Scale + B over the axes from `axis` on (μ, σ² their mean and biased
  // variance); Scale and B cover those axes (broadcast within them). Optional outputs Mean and
  // InvStdDev, shaped as X with the normalised axes kept as 1. stash_type (the precision of μ and σ²)
  // has no effect here: they are float64 either way.
  LayerNormalization: (ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'X')), scale = toFloat(ctx, input(node, xs, 1, 'Scale'));
    const b = xs[2] ? toFloat(ctx, xs[2]) : null;
    const r = x.shape.length, axis = normAxis(node, attrInt(node, 'axis', -1), r);
    const eps = attrFloat(node, 'epsilon', 1e-5);
    const inner = x.shape.slice(axis), len = numel(inner), rows = numel(x.shape.slice(0, axis));
    const within = (v: Value, what: string): number[] => { // v's strides over the normalised axes
      const to = v.shape.length <= inner.length ? broadcastShape(node, inner, v.shape) : null;
      if (to === null || to.some((d, i) => d !== inner[i])) throw nodeError(node, `${what} [${v.shape.join(', ')}] does not broadcast to the normalised shape [${inner.join(', ')}]`);
      return broadcastStrides(v.shape, inner);
    };
    const sScale = within(scale, 'Scale'), sB = b === null ? null : within(b, 'B');
    const offsetIn = (st: number[], i: number) => { let o = 0; for (let k = inner.length - 1; k >= 0; k--) { o += (i % inner[k]) * st[k]; i = Math.floor(i / inner[k]); } return o; };
    const scaleAt = Float64Array.from({ length: len }, (_, i) => scale.data[offsetIn(sScale, i)]);
    const biasAt = Float64Array.from({ length: len }, (_, i) => (b === null ? 0 : b.data[offsetIn(sB!, i)]));
    const y = ctx.alloc(x.shape, 'float');
    const statShape = x.shape.map((d, i) => (i < axis ? d : 1));
    const mean = ctx.alloc(statShape, 'float'), invStd = ctx.alloc(statShape, 'float');
    for (let row = 0; row < rows; row++) {
      const [m, inv] = meanInvStd(x.data, row * len, len, eps);
      mean[row] = m;
      invStd[row] = inv;
      for (let i = 0, o = row * len; i < len; i++) y[o + i] = (x.data[o + i] - m) * inv * scaleAt[i] + biasAt[i];
    }
    return [{ dtype: ctx.float, shape: x.shape, data: y }, { dtype: ctx.float, shape: statShape, data: mean }, { dtype: ctx.float, shape: statShape, data: invStd }];
  },

  // y = scale·(x − μ)/√(σ² + ε) + B per image and channel, μ and σ² over that channel's map
  InstanceNormalization: (ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'input'));
    const scale = toFloat(ctx, input(node, xs, 1, 'scale')), b = toFloat(ctx, input(node, xs, 2, 'B'));
    if (x.shape.length < 3) throw nodeError(node, `input must be (N, C, D1, …); got shape [${x.shape.join(', ')}]`);
    const eps = attrFloat(node, 'epsilon', 1e-5);
    const [N, C] = x.shape, P = numel(x.shape.slice(2));
    for (const [name, v] of [['scale', scale], ['B', b]] as const) if (v.data.length !== C) throw nodeError(node, `${name} has ${v.data.length} values for ${C} channels`);
    const y = ctx.alloc(x.shape, 'float');
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
      const o = (n * C + c) * P;
      const [m, inv] = meanInvStd(x.data, o, P, eps);
      for (let i = o; i < o + P; i++) y[i] = scale.data[c] * (x.data[i] - m) * inv + b.data[c];
    }
    return [{ dtype: ctx.float, shape: x.shape, data: y }];
  },

  // local response normalisation across channels (AlexNet, GoogLeNet): y = x/(bias + α/size·Σ x²)^β,
  // the sum over channels c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉ that exist
  LRN: (ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'X'));
    if (x.shape.length < 3) throw nodeError(node, `X must be (N, C, D1, …); got shape [${x.shape.join(', ')}]`);
    if (!node.attributes.has('size')) throw nodeError(node, 'attribute size is required');
    const size = attrInt(node, 'size', 1);
    if (!(size >= 1)) throw nodeError(node, `size ${size} must be at least 1`);
    const alpha = attrFloat(node, 'alpha', 1e-4), beta = attrFloat(node, 'beta', 0.75), bias = attrFloat(node, 'bias', 1);
    const [N, C] = x.shape, P = numel(x.shape.slice(2));
    const below = Math.floor((size - 1) / 2), above = Math.ceil((size - 1) / 2);
    const y = ctx.alloc(x.shape, 'float');
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
      const c0 = Math.max(0, c - below), c1 = Math.min(C - 1, c + above), o = (n * C + c) * P;
      for (let p = 0; p < P; p++) {
        let sq = 0;
        for (let k = c0; k <= c1; k++) { const v = x.data[(n * C + k) * P + p]; sq += v * v; }
        y[o + p] = x.data[o + p] / Math.pow(bias + (alpha / size) * sq, beta);
      }
    }
    return [{ dtype: ctx.float, shape: x.shape, data: y }];
  },

  MaxPool: oneD(pool('max'), []),
  AveragePool: oneD(pool('avg'), []),
  GlobalAveragePool: globalPool('avg'),
  GlobalMaxPool: globalPool('max'),

  // Resize(X, roi, scales, sizes), 4-D, on H and W: nearest (four rounding modes) or linear, with the
  // coordinate transformations PyTorch and TensorFlow export
  Resize: (ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'X'));
    expect4d(node, x, 'X');
    const [N, C, H, W] = x.shape;
    const scales = xs[2] && xs[2].data.length > 0 ? Array.from(xs[2].data) : null;
    const sizes = xs[3] && xs[3].data.length > 0 ? intsOf(node, xs[3], 'sizes') : null;
    if ((scales === null) === (sizes === null)) throw nodeError(node, 'give exactly one of scales and sizes');
    if ((scales ?? sizes)!.length !== 4) throw nodeError(node, 'scales/sizes must have 4 values (N, C, H, W)');
    const [Ho, Wo] = sizes !== null ? [sizes[2], sizes[3]] : [Math.floor(H * scales![2]), Math.floor(W * scales![3])];
    if ((sizes !== null && (sizes[0] !== N || sizes[1] !== C)) || (scales !== null && (scales[0] !== 1 || scales[1] !== 1))) throw nodeError(node, 'only H and W may be resized');
    const [fh, fw] = scales !== null ? [scales[2], scales[3]] : [Ho / H, Wo / W];
    const mode = attrString(node, 'mode', 'nearest'), ct = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
    const nearest = attrString(node, 'nearest_mode', 'round_prefer_floor');
    const source = (o: number, scale: number, inLen: number, outLen: number): number => {
      switch (ct) {
        case 'half_pixel': return (o + 0.5) / scale - 0.5;
        case 'pytorch_half_pixel': return outLen > 1 ? (o + 0.5) / scale - 0.5 : 0;
        case 'align_corners': return outLen === 1 ? 0 : (o * (inLen - 1)) / (outLen - 1);
        case 'asymmetric': return o / scale;
        default: throw nodeError(node, `coordinate_transformation_mode '${ct}' is not supported`);
      }
    };
    const round = (v: number): number => {
      switch (nearest) {
        case 'round_prefer_floor': return Math.ceil(v - 0.5);
        case 'round_prefer_ceil': return Math.floor(v + 0.5);
        case 'floor': return Math.floor(v);
        case 'ceil': return Math.ceil(v);
        default: throw nodeError(node, `nearest_mode '${nearest}' is not supported`);
      }
    };
    if (mode !== 'nearest' && mode !== 'linear' && mode !== 'cubic') throw nodeError(node, `mode '${mode}' is not supported (nearest, linear, cubic)`);
    // cubic: Keys' kernel with a = cubic_coeff_a (−0.75, PyTorch's; TensorFlow's is −0.5) at the four
    // taps ⌊s⌋ − 1 … ⌊s⌋ + 2, indices clamped to the edge (PyTorch and onnxruntime), or with
    // exclude_outside the taps outside dropped and the rest renormalised to sum 1
    const a = attrFloat(node, 'cubic_coeff_a', -0.75), exclude = attrInt(node, 'exclude_outside', 0) === 1;
    const keys = (d: number) => (d <= 1 ? ((a + 2) * d - (a + 3)) * d * d + 1 : d < 2 ? ((a * d - 5 * a) * d + 8 * a) * d - 4 * a : 0);
    // per output row/column, its taps: [source index, weight] — one (nearest), two (linear, the
    // coordinate clamped to the input) or four (cubic)
    const axis = (outLen: number, inLen: number, scale: number): [number, number][][] => Array.from({ length: outLen }, (_, o) => {
      const s = source(o, scale, inLen, outLen);
      if (mode === 'nearest') return [[Math.min(inLen - 1, Math.max(0, round(s))), 1]];
      if (mode === 'linear') {
        const c = Math.min(inLen - 1, Math.max(0, s)), i0 = Math.floor(c);
        return [[i0, 1 - (c - i0)], [Math.min(i0 + 1, inLen - 1), c - i0]];
      }
      const i0 = Math.floor(s);
      let taps: [number, number][] = [-1, 0, 1, 2].map((k) => [i0 + k, keys(Math.abs(s - (i0 + k)))]);
      if (exclude) {
        taps = taps.filter(([i]) => i >= 0 && i < inLen);
        const sum = taps.reduce((t, [, w]) => t + w, 0);
        taps = taps.map(([i, w]) => [i, w / sum]);
      }
      return taps.map(([i, w]) => [Math.min(inLen - 1, Math.max(0, i)), w]);
    });
    const ah = axis(Ho, H, fh), aw = axis(Wo, W, fw);
    const y = ctx.alloc([N, C, Ho, Wo], 'float');
    // y = Σᵢ wᵢ·(Σⱼ wⱼ·x[hᵢ, wⱼ]): each row's taps first, then the rows (linear: the two rows' values, then between them)
    for (let nc = 0; nc < N * C; nc++) {
      const xo = nc * H * W, yo = nc * Ho * Wo;
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          const th = ah[oh], tw = aw[ow];
          let v = 0;
          for (let i = 0; i < th.length; i++) {
            const r = xo + th[i][0] * W;
            let row = x.data[r + tw[0][0]] * tw[0][1]; // from the first term, not 0 + it: a −0 stays −0
            for (let j = 1; j < tw.length; j++) row += x.data[r + tw[j][0]] * tw[j][1];
            v = i === 0 ? row * th[i][1] : v + row * th[i][1];
          }
          y[yo + oh * Wo + ow] = v;
        }
      }
    }
    return [{ dtype: ctx.float, shape: [N, C, Ho, Wo], data: y }];
  },
};
