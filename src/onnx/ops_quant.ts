// ONNX's quantized ops as exact integer references (onnx/docs/Operators.md): QuantizeLinear,
// DequantizeLinear, QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger. Integers are exact
// numbers in float64 arrays; a conv or matmul of integers runs on the integer GEMM (operands less
// their zero points in 16 bits, 32-bit sums) where every sum fits in int32, else on the engine's
// float64 im2col/GEMM kernels, whose sums of integer products are exact in any order while they stay
// below 2⁵³ (|x − zp|·|w − zp| ≤ 2¹⁶ per term: 2³⁷ terms).
//
// Where ONNX leaves the arithmetic to the runtime we take onnxruntime's (MLAS), so that an INT8 kernel
// can be checked bit for bit against it:
//   quantize       q = sat(rte(fl(x / s)) + zp)       x and s as float32, fl = float32 division
//   requantize     y = sat(rte(fl(fl(acc) · M)) + zp), M = fl(fl(s_x · s_w) / s_y), acc the int32 sum
//                  with its int32 bias (fl(acc): int32 → float32, rounding beyond 2²⁴)
//   dequantize     y = (q − zp) · s, rounded to float32 in a float32 run (exact in float64)
// rte: round half to even; sat: clamp to the output type's range; NaN quantizes to the zero point.

import type { OnnxDType, OnnxNode } from '../io/onnx_read.js';
import { conv2d, convGeometry } from '../ops/conv2d.js';
import { conv2dInteger, conv2dIntegerApplies } from '../ops/conv2d_integer.js';
import { type FloatArray, Tensor } from '../tensor/tensor.js';
import { expect4d, oneD, window2d } from './ops_nn.js';
import { MATH_OPS } from './ops_math.js';
import { INT16_GEMM_MAX_K, type Int16Rows, gemmInt16 } from '../backend/gemm.js';
import { type OpContext, type Value, attrInt, input, nodeError, numel, normAxis, roundHalfEven } from './value.js';

// cacheConvs: whether the run keeps what it derives from its weights between runs (run.ts)
type Ctx = OpContext & { cacheConvs?: boolean };
type Op = (ctx: Ctx, node: OnnxNode, xs: (Value | null)[]) => Value[];

const RANGE: Readonly<Record<string, [number, number]>> = { uint8: [0, 255], int8: [-128, 127], int32: [-(2 ** 31), 2 ** 31 - 1] };
const fl = Math.fround;

function integerInput(node: OnnxNode, v: Value, what: string, types = ['uint8', 'int8']): Value {
  if (!types.includes(v.dtype)) throw nodeError(node, `${what} is ${v.dtype}; it must be ${types.join(' or ')}`);
  return v;
}

/** A scale or zero point: one value, or one per index of `axis` (length n); the other dims must be 1. */
function perAxis(node: OnnxNode, v: Value | null, n: number, what: string, dflt: number): Float64Array {
  if (v === null) return Float64Array.of(dflt);
  const len = numel(v.shape);
  if (len !== 1 && len !== n) throw nodeError(node, `${what} has ${len} values; it must have ${n === 1 ? 'one' : `1 or ${n}`}`);
  const out = Float64Array.from(v.data);
  if (what.includes('scale') && out.some((s) => !(s > 0) || !Number.isFinite(s))) throw nodeError(node, `${what} must be positive and finite`);
  return out;
}

/** Where a scale or zero point changes along a value's elements: element i takes index
 * ⌊i / inner⌋ mod n (n = 1: one for the whole tensor), so runs of `inner` elements share one. */
interface AxisRuns {
  n: number;
  inner: number;
}

const PER_TENSOR: AxisRuns = { n: 1, inner: Infinity };

/** The axis the scales run along, for a value of `shape`. */
function axisOf(node: OnnxNode, shape: readonly number[], perChannel: boolean): AxisRuns {
  if (!perChannel) return PER_TENSOR;
  const axis = normAxis(node, attrInt(node, 'axis', 1), shape.length);
  return { n: shape[axis], inner: numel(shape.slice(axis + 1)) };
}

/** f(start, end, k) for each run [start, end) of `total` elements that shares index k. */
function forRuns(total: number, r: AxisRuns, f: (start: number, end: number, k: number) => void): void {
  for (let start = 0, k = 0; start < total; start += r.inner, k = k + 1 === r.n ? 0 : k + 1) f(start, Math.min(total, start + r.inner), k);
}

function blockSizeRefused(node: OnnxNode): void {
  if (attrInt(node, 'block_size', 0) !== 0) throw nodeError(node, 'blocked quantization (block_size) is not supported');
}

// y = sat(rte(fl(x / s)) + zp), x rounded to float32 first (the op's input type)
const QuantizeLinear: Op = (ctx, node, xs) => {
  blockSizeRefused(node);
  const x = input(node, xs, 0, 'x'), s = input(node, xs, 1, 'y_scale'), z = xs[2] ?? null;
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw nodeError(node, `x is ${x.dtype}; it must be float`);
  const type = z?.dtype ?? 'uint8';
  if (type !== 'uint8' && type !== 'int8') throw nodeError(node, `the zero point is ${type}; uint8 and int8 are supported`);
  const runs = axisOf(node, x.shape, numel(s.shape) > 1);
  const scale = perAxis(node, s, runs.n, 'y_scale', 1), zp = perAxis(node, z, runs.n, 'y_zero_point', 0);
  const [lo, hi] = RANGE[type];
  const y = ctx.alloc(x.shape, 'int');
  forRuns(y.length, runs, (start, end, c) => {
    const sc = fl(scale[scale.length === 1 ? 0 : c]), z0 = zp[zp.length === 1 ? 0 : c];
    for (let i = start; i < end; i++) {
      const q = roundHalfEven(fl(fl(x.data[i]) / sc));
      y[i] = Number.isNaN(q) ? z0 : Math.min(hi, Math.max(lo, q + z0));
    }
  });
  return [{ dtype: type, shape: x.shape.slice(), data: y }];
};

// y = (x − zp)·s: exact in float64, rounded once to float32 in a float32 run
const DequantizeLinear: Op = (ctx, node, xs) => {
  blockSizeRefused(node);
  const x = integerInput(node, input(node, xs, 0, 'x'), 'x', ['uint8', 'int8', 'int32']), s = input(node, xs, 1, 'x_scale'), z = xs[2] ?? null;
  const runs = axisOf(node, x.shape, numel(s.shape) > 1);
  const scale = perAxis(node, s, runs.n, 'x_scale', 1), zp = perAxis(node, z, runs.n, 'x_zero_point', 0);
  const y = ctx.alloc(x.shape, 'float');
  forRuns(y.length, runs, (start, end, c) => {
    const z0 = zp[zp.length === 1 ? 0 : c], s0 = scale[scale.length === 1 ? 0 : c];
    for (let i = start; i < end; i++) y[i] = (x.data[i] - z0) * s0;
  });
  return [{ dtype: ctx.float, shape: x.shape.slice(), data: y }];
};

/** x − zp as a float64 tensor (exact), zp per run of elements. */
function shifted(ctx: OpContext, v: Value, zp: Float64Array, runs: AxisRuns): Float64Array {
  return shiftInto(v, zp, runs, ctx.alloc(v.shape, 'int') as Float64Array);
}

/** x − zp as 16-bit integers, zp per run of elements, where every zero point is a value of v's type
 * (then |x − zp| ≤ 255); null where one is not (a malformed zero point: the float64 path takes it). */
function shifted16(v: Value, zp: Float64Array, runs: AxisRuns, shared = false): Int16Array | null {
  const [lo, hi] = RANGE[v.dtype];
  if (!zp.every((z) => Number.isInteger(z) && z >= lo && z <= hi)) return null;
  const n = v.data.length;
  return shiftInto(v, zp, runs, shared && typeof SharedArrayBuffer === 'function' ? new Int16Array(new SharedArrayBuffer(2 * n)) : new Int16Array(n));
}

/** What a node derives from its weights, kept per node with the weight array and zero points it came
 * from: an initializer's value is the same array every run and never changes. Shifting and packing
 * RepVGG-A0's 7.8 M weights at every forward took ~35 ms of its 130 ms INT8 run. A run that frees its
 * weights after use (cacheConvs false) keeps nothing. */
type KeptPerNode<T> = WeakMap<OnnxNode, { w: Value['data']; zp: Float64Array; value: T }>;

function keptPerNode<T>(kept: KeptPerNode<T>, ctx: Ctx, node: OnnxNode, w: Value, zp: Float64Array, make: () => T): T {
  const hit = kept.get(node);
  if (hit !== undefined && hit.w === w.data && hit.zp.length === zp.length && hit.zp.every((z, i) => Object.is(z, zp[i]))) return hit.value;
  const value = make();
  if (ctx.cacheConvs !== false) kept.set(node, { w: w.data, zp, value });
  return value;
}

/** A conv's weights less their zero points in 16 bits (shifted16); conv2dInteger keeps its packing
 * with the array it is given. In shared memory where it exists when kept: conv2dInteger hands an
 * unshared one to the pool as a new shared copy at every call, whose packing would not be kept. */
const SHIFTED_WEIGHTS: KeptPerNode<Int16Array | null> = new WeakMap();

function shiftedWeights(ctx: Ctx, node: OnnxNode, w: Value, zp: Float64Array, runs: AxisRuns): Int16Array | null {
  return keptPerNode(SHIFTED_WEIGHTS, ctx, node, w, zp, () => shifted16(w, zp, runs, ctx.cacheConvs !== false));
}

// out[i] = x[i] − zp of i's run
function shiftInto<T extends Float64Array | Int16Array>(v: Value, zp: Float64Array, runs: AxisRuns, out: T): T {
  forRuns(out.length, zp.length === 1 ? PER_TENSOR : runs, (start, end, c) => shiftRun(v.data, out, start, end, zp[zp.length === 1 ? 0 : c]));
  return out;
}

// out[i] = x[i] − z for i in [start, end) (the hot loops of an INT8 run are plain functions of their
// own, which forRuns' callback calls once a run, rather than loops inside the callback)
function shiftRun(x: ArrayLike<number>, out: Float64Array | Int16Array, start: number, end: number, z: number): void {
  for (let i = start; i < end; i++) out[i] = x[i] - z;
}

// acc[i] += b over [start, end)
function addRun(acc: FloatArray, start: number, end: number, b: number): void {
  for (let i = start; i < end; i++) acc[i] += b;
}

/** Σ (x − x_zp)(w − w_zp[f]) over each window: exact (the integer GEMM's 32-bit sums, or float64's
 * where a sum could leave int32 or a zero point is not of its operand's type). */
function integerConv(ctx: Ctx, node: OnnxNode, x: Value, w: Value, xzp: Float64Array, wzp: Float64Array): Value {
  expect4d(node, x, 'x');
  expect4d(node, w, 'w');
  if (xzp.length !== 1) throw nodeError(node, 'x_zero_point must be one value');
  const F = w.shape[0], per = w.shape.slice(1).reduce((a, b) => a * b, 1);
  if (wzp.length !== 1 && wzp.length !== F) throw nodeError(node, `w_zero_point has ${wzp.length} values for ${F} output channels`);
  const win = window2d(node, x.shape[2], x.shape[3], w.shape.slice(2));
  const groups = attrInt(node, 'group', 1);
  const opts = { stride: [win.sh, win.sw] as const, dilation: [win.dh, win.dw] as const, padding: [[win.pt, win.pb], [win.pl, win.pr]] as const, groups };
  const x16 = conv2dIntegerApplies(w.shape) ? shifted16(x, xzp, PER_TENSOR) : null, w16 = x16 === null ? null : shiftedWeights(ctx, node, w, wzp, { n: F, inner: per });
  if (x16 !== null && w16 !== null) {
    try {
      const g = convGeometry(x.shape, w.shape, opts); // the output's shape, for the run's checked allocator
      const y = conv2dInteger(x16, x.shape, w16, w.shape, opts, ctx.alloc([g.N, g.F, g.Ho, g.Wo], 'int') as Float64Array);
      return { dtype: 'int32', shape: y.shape, data: y.data };
    } catch (e) {
      throw nodeError(node, (e as Error).message);
    }
  }
  const xs = new Tensor(shifted(ctx, x, xzp, PER_TENSOR), x.shape);
  const ws = new Tensor(shifted(ctx, w, wzp, { n: F, inner: per }), w.shape);
  try {
    const y = conv2d(xs, ws, null, { stride: [win.sh, win.sw], dilation: [win.dh, win.dw], padding: [[win.pt, win.pb], [win.pl, win.pr]], groups, algorithm: 'im2col' });
    return { dtype: 'int32', shape: y.shape.slice(), data: y.data };
  } catch (e) {
    throw nodeError(node, (e as Error).message);
  }
}

/** (b − b_zp)ᵀ in 16 bits as the integer GEMM's A (N rows of K), kept per node (keptPerNode), its
 * packing with it; null where a zero point is not of b's type. */
const TRANSPOSED_WEIGHTS: KeptPerNode<Int16Rows | null> = new WeakMap();

function transposedWeights(ctx: Ctx, node: OnnxNode, b: Value, zp: Float64Array): Int16Rows | null {
  return keptPerNode(TRANSPOSED_WEIGHTS, ctx, node, b, zp, () => {
    const [K, N] = b.shape;
    const b16 = shifted16(b, zp, { n: N, inner: 1 });
    if (b16 === null) return null;
    const t = new Int16Array(N * K);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) t[n * K + k] = b16[k * N + n];
    return { data: t, offset: 0, M: N, K };
  });
}

/** Σ_k (a − a_zp)(b − b_zp[n]) with NumPy matmul broadcasting: exact. A 2-D b (a layer's weights)
 * goes on the integer GEMM as yᵀ = (b − b_zp)ᵀ·(a − a_zp)ᵀ, a's rows gathered as its columns; any
 * other on the float64 GEMM. (The float64 path shifted and packed A0's 1280×1000 classifier at every
 * run: 11 ms of its INT8 forward, against ~1 ms.) */
function integerMatMul(ctx: Ctx, node: OnnxNode, a: Value, b: Value, azp: Float64Array, bzp: Float64Array): Value {
  const N = b.shape.at(-1)!;
  if (azp.length !== 1) throw nodeError(node, 'a_zero_point must be one value');
  if (bzp.length !== 1 && bzp.length !== N) throw nodeError(node, `b_zero_point has ${bzp.length} values for ${N} columns`);
  const K = b.shape[0];
  if (b.shape.length === 2 && a.shape.length >= 1 && a.shape.at(-1) === K && K >= 1 && K <= INT16_GEMM_MAX_K) {
    const rows = transposedWeights(ctx, node, b, bzp), a16 = rows === null ? null : shifted16(a, azp, PER_TENSOR);
    if (rows !== null && a16 !== null) {
      const R = a16.length / K, shape = [...a.shape.slice(0, -1), N];
      const yT = ctx.alloc([N, R], 'int') as Float64Array, y = ctx.alloc(shape, 'int');
      // B(k, r) = a16[r·K + k]: a's row r as column r
      gemmInt16(rows, R, { src: a16, taps: Int32Array.from({ length: K }, (_, k) => k), cols: Int32Array.from({ length: R }, (_, r) => r * K) }, 0, 0, yT, 0, R);
      for (let n = 0; n < N; n++) for (let r = 0; r < R; r++) y[r * N + n] = yT[n * R + r];
      return { dtype: 'int32', shape, data: y };
    }
  }
  const ctx64: OpContext = { ...ctx, float: 'float64', alloc: (shape) => ctx.alloc(shape, 'int') };
  const av: Value = { dtype: 'float64', shape: a.shape, data: shifted(ctx, a, azp, PER_TENSOR) };
  const bv: Value = { dtype: 'float64', shape: b.shape, data: shifted(ctx, b, bzp, { n: N, inner: 1 }) };
  const [y] = MATH_OPS.MatMul(ctx64, node, [av, bv]);
  return { dtype: 'int32', shape: y.shape, data: y.data };
}

/** acc (int32, s_b per channel along `runs`) → sat(rte(fl(fl(acc)·M)) + zp), M = fl(fl(s_a·s_b) / s_y). */
function requantize(ctx: OpContext, node: OnnxNode, acc: Value, sa: number, sb: Float64Array, sy: number, zy: number, type: OnnxDType, runs: AxisRuns): Value {
  const [lo, hi] = RANGE[type];
  const M = Float64Array.from(sb, (s) => fl(fl(sa * s) / sy));
  const y = ctx.alloc(acc.shape, 'int'), a = acc.data;
  forRuns(y.length, M.length === 1 ? PER_TENSOR : runs, (start, end, c) => {
    const bad = requantizeRun(a, y, start, end, M[M.length === 1 ? 0 : c], lo, hi, zy);
    if (bad >= 0) throw nodeError(node, `an accumulator reached ${a[bad]}, outside int32`);
  });
  return { dtype: type, shape: acc.shape, data: y };
}

// y[i] = sat(rte(fl(fl(a[i])·m)) + zy) for i in [start, end); the index of an accumulator outside
// int32, or −1. Where |p| < 2³⁰ (p = fl(fl(a[i])·m)), rte(p) + zy is an int32 and the clamps are
// branch-free: q − lo < 0 exactly when its sign bit is set, so q − ((q − lo) & ((q − lo) >> 31)) is
// max(q, lo), and likewise min(q, hi). Math.max and Math.min on doubles branch on data (NaN and −0),
// and a conv's outputs land on either side of lo at random: 14.5 → 6.6 ns an element here. Past 2³⁰
// the sum lies beyond either bound (|zy| ≤ 255), so it saturates by p's sign.
function requantizeRun(a: FloatArray, y: FloatArray, start: number, end: number, m: number, lo: number, hi: number, zy: number): number {
  for (let i = start; i < end; i++) {
    const v = a[i];
    if (v < -(2 ** 31) || v > 2 ** 31 - 1) return i;
    const p = fl(fl(v) * m);
    if (!(Math.abs(p) < 2 ** 30)) {
      y[i] = p < 0 ? lo : hi;
      continue;
    }
    let q = (roundHalfEven(p) | 0) + zy;
    q -= (q - lo) & ((q - lo) >> 31);
    q += (hi - q) & ((hi - q) >> 31);
    y[i] = q;
  }
  return -1;
}

const scalarOf = (node: OnnxNode, v: Value, what: string): number => {
  if (numel(v.shape) !== 1) throw nodeError(node, `${what} must be one value`);
  if (what.includes('scale') && !(v.data[0] > 0 && Number.isFinite(v.data[0]))) throw nodeError(node, `${what} must be positive and finite`);
  return v.data[0];
};

export const QUANT_OPS: Record<string, Op> = {
  QuantizeLinear,
  DequantizeLinear,

  ConvInteger: oneD((ctx, node, xs) => {
    const x = integerInput(node, input(node, xs, 0, 'x'), 'x'), w = integerInput(node, input(node, xs, 1, 'w'), 'w');
    return [integerConv(ctx, node, x, w, perAxis(node, xs[2] ?? null, 1, 'x_zero_point', 0), perAxis(node, xs[3] ?? null, w.shape[0], 'w_zero_point', 0))];
  }, [1]),

  MatMulInteger: (ctx, node, xs) => {
    const a = integerInput(node, input(node, xs, 0, 'A'), 'A'), b = integerInput(node, input(node, xs, 1, 'B'), 'B');
    return [integerMatMul(ctx, node, a, b, perAxis(node, xs[2] ?? null, 1, 'a_zero_point', 0), perAxis(node, xs[3] ?? null, b.shape.at(-1)!, 'b_zero_point', 0))];
  },

  // QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B): padding holds x_zp (real 0)
  QLinearConv: oneD((ctx, node, xs) => {
    const x = integerInput(node, input(node, xs, 0, 'x'), 'x'), w = integerInput(node, input(node, xs, 3, 'w'), 'w');
    const F = w.shape[0];
    const acc = integerConv(ctx, node, x, w, perAxis(node, input(node, xs, 2, 'x_zero_point'), 1, 'x_zero_point', 0), perAxis(node, input(node, xs, 5, 'w_zero_point'), F, 'w_zero_point', 0));
    const HW = acc.shape[2] * acc.shape[3];
    const B = xs[8] ?? null;
    if (B !== null) {
      integerInput(node, B, 'B', ['int32']);
      if (numel(B.shape) !== F) throw nodeError(node, `B has ${numel(B.shape)} values for ${F} output channels`);
      forRuns(acc.data.length, { n: F, inner: HW }, (start, end, f) => addRun(acc.data, start, end, B.data[f]));
    }
    const yzp = input(node, xs, 7, 'y_zero_point');
    return [requantize(ctx, node, acc, scalarOf(node, input(node, xs, 1, 'x_scale'), 'x_scale'), perAxis(node, input(node, xs, 4, 'w_scale'), F, 'w_scale', 1),
      scalarOf(node, input(node, xs, 6, 'y_scale'), 'y_scale'), scalarOf(node, yzp, 'y_zero_point'), integerInput(node, yzp, 'y_zero_point').dtype, { n: F, inner: HW })];
  }, [3]),

  // QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)
  QLinearMatMul: (ctx, node, xs) => {
    const a = integerInput(node, input(node, xs, 0, 'a'), 'a'), b = integerInput(node, input(node, xs, 3, 'b'), 'b');
    const N = b.shape.at(-1)!;
    const acc = integerMatMul(ctx, node, a, b, perAxis(node, input(node, xs, 2, 'a_zero_point'), 1, 'a_zero_point', 0), perAxis(node, input(node, xs, 5, 'b_zero_point'), N, 'b_zero_point', 0));
    const yzp = input(node, xs, 7, 'y_zero_point');
    return [requantize(ctx, node, acc, scalarOf(node, input(node, xs, 1, 'a_scale'), 'a_scale'), perAxis(node, input(node, xs, 4, 'b_scale'), N, 'b_scale', 1),
      scalarOf(node, input(node, xs, 6, 'y_scale'), 'y_scale'), scalarOf(node, yzp, 'y_zero_point'), integerInput(node, yzp, 'y_zero_point').dtype, { n: N, inner: 1 })];
  },
};

