// ONNX's elementwise, activation, reduction and matrix ops (onnx/docs/Operators.md), forward only.
// Each result is computed in float64 and stored in the run's precision: for +, −, ×, ÷ of two
// float32 values that is exactly float32 arithmetic (a double holds the exact result to more than
// 2·24 + 2 bits, so the one rounding to float32 is the correct one); transcendental functions differ
// from a runtime's own approximations by a few ulp, which the tolerances state.

import type { OnnxNode } from '../io/onnx_read.js';
import { type OpContext, type Value, attrFloat, attrInt, attrInts, attrString, broadcastShape, broadcastStrides, input, intsOf, isFloat, nodeError, normAxis, numel, roundHalfEven, toFloat } from './value.js';
import { showText } from '../tensor/untrusted.js';
import { gemm } from '../backend/gemm.js';

type Op = (ctx: OpContext, node: OnnxNode, xs: (Value | null)[]) => Value[];

/** out[i] = f(a[ia], b[ib]) over the broadcast shape; integer inputs stay integers (Div truncates, as C). */
function binary(f: (x: number, y: number) => number, intF: (x: number, y: number) => number = f, boolResult = false): Op {
  return (ctx, node, xs) => {
    let a = input(node, xs, 0, 'A'), b = input(node, xs, 1, 'B');
    const floats = isFloat(a) || isFloat(b);
    if (floats) { a = toFloat(ctx, a); b = toFloat(ctx, b); }
    const shape = broadcastShape(node, a.shape, b.shape);
    const out = ctx.alloc(shape, floats && !boolResult ? 'float' : 'int');
    const g = floats ? f : intF;
    const ad = a.data, bd = b.data, n = out.length;
    if (ad.length === n && bd.length === n) for (let i = 0; i < n; i++) out[i] = g(ad[i], bd[i]);
    else if (bd.length === 1) { const y = bd[0]; for (let i = 0; i < n; i++) out[i] = g(ad[i], y); }
    else if (ad.length === 1) { const x = ad[0]; for (let i = 0; i < n; i++) out[i] = g(x, bd[i]); }
    else {
      const sa = broadcastStrides(a.shape, shape), sb = broadcastStrides(b.shape, shape);
      const r = shape.length, idx = new Array<number>(r).fill(0);
      let ia = 0, ib = 0;
      for (let i = 0; i < n; i++) {
        out[i] = g(ad[ia], bd[ib]);
        for (let k = r - 1; k >= 0; k--) { // odometer over the output index
          if (++idx[k] < shape[k]) { ia += sa[k]; ib += sb[k]; break; }
          ia -= (shape[k] - 1) * sa[k]; ib -= (shape[k] - 1) * sb[k]; idx[k] = 0;
        }
      }
    }
    return [{ dtype: boolResult ? 'bool' : floats ? ctx.float : a.dtype, shape, data: out }];
  };
}

/** out[i] = f(x[i]) on the run's float precision; `ints`: an integer input keeps its type (f maps
 * integers to integers: Abs, Neg, Sign, the roundings), else it is computed as a float. */
function unary(f: (x: number, node: OnnxNode, xs: (Value | null)[]) => ((v: number) => number), ints = false): Op {
  return (ctx, node, xs) => {
    const raw = input(node, xs, 0, 'X'), keep = ints && !isFloat(raw) && raw.dtype !== 'bool';
    const x = keep ? raw : toFloat(ctx, raw);
    const g = f(0, node, xs);
    const out = ctx.alloc(x.shape, keep ? 'int' : 'float');
    for (let i = 0; i < out.length; i++) out[i] = g(x.data[i]);
    return [{ dtype: keep ? x.dtype : ctx.float, shape: x.shape, data: out }];
  };
}

/** A bool result of one float input (IsNaN, IsInf). */
function predicate(f: (node: OnnxNode) => (v: number) => boolean): Op {
  return (ctx, node, xs) => {
    const x = input(node, xs, 0, 'X'), g = f(node);
    const out = ctx.alloc(x.shape, 'int');
    for (let i = 0; i < out.length; i++) out[i] = g(x.data[i]) ? 1 : 0;
    return [{ dtype: 'bool', shape: x.shape, data: out }];
  };
}

/** And, Or, Xor: bool inputs, broadcast, a bool result. */
function logical(f: (x: boolean, y: boolean) => boolean): Op {
  const pair = binary((x, y) => (f(x !== 0, y !== 0) ? 1 : 0), undefined, true);
  return (ctx, node, xs) => {
    const a = input(node, xs, 0, 'A'), b = input(node, xs, 1, 'B');
    if (a.dtype !== 'bool' || b.dtype !== 'bool') throw nodeError(node, `inputs must be bool, got ${a.dtype} and ${b.dtype}`);
    return pair(ctx, node, [a, b]);
  };
}

// ONNX's Round: half to even, as NumPy's round; a negative that rounds to 0 gives −0, as NumPy does
const roundOp = (x: number) => { const r = roundHalfEven(x); return r === 0 ? x * 0 : r; };

// Mod: fmod = 0 takes the divisor's sign (Python's %, integers only), fmod = 1 the dividend's (C's fmod)
function mod(ctx: OpContext, node: OnnxNode, xs: (Value | null)[]): Value[] {
  const fmod = attrInt(node, 'fmod', 0);
  const a = input(node, xs, 0, 'A'), b = input(node, xs, 1, 'B');
  if (fmod === 0 && (isFloat(a) || isFloat(b))) throw nodeError(node, 'fmod = 0 is for integers; a float Mod needs fmod = 1');
  const trunc = (x: number, y: number) => { if (y === 0 && !isFloat(a)) throw new Error('integer modulo by zero'); return x % y; };
  const floored = (x: number, y: number) => { const r = trunc(x, y); return r !== 0 && (r < 0) !== (y < 0) ? r + y : r; };
  return binary(fmod === 1 ? trunc : floored)(ctx, node, [a, b]);
}

const scalarInput = (node: OnnxNode, xs: (Value | null)[], i: number, dflt: number): number => {
  const v = xs[i];
  if (v === null || v === undefined) return dflt;
  if (v.data.length !== 1) throw nodeError(node, `input ${i} must be a scalar, got shape [${v.shape.join(', ')}]`);
  return v.data[0];
};

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

// erf to a few ulp of float64, in two ranges (Abramowitz & Stegun 7.1.5 and 7.1.14):
//   |x| < 1.5:  erf(x) = (2/√π)·Σₙ (−1)ⁿ x^(2n+1) / (n!·(2n+1)), summed until a term is < 10⁻¹⁷ of the sum
//               (the largest term is under 2× the sum here, so little cancels);
//   |x| ≥ 1.5:  erf(x) = 1 − erfc(x), erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
//               evaluated from depth 12 + 240/x² back up (it converges faster as x grows; at that depth
//               it has converged to double precision from 1.5 on, where 8 + 120/x² fell short by up to
//               40 ulp), and e^(−x²) from x² split exactly into s + r (Veltkamp: x = hi + lo, hi of
//               26 bits, so hi² is exact) as e^(−s)·e^(−r);
//   |x| ≥ 6:    1 − erf(x) < 2.2·10⁻¹⁷, so erf(x) rounds to ±1.
// Against glibc's erf on 22,000 points in [−7, 7]: at most 6 ulp (the series near 1.5), 0 past it.
const SPLIT = 134217729; // 2²⁷ + 1
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
function erf(x: number): number {
  const a = Math.abs(x);
  if (!(a < 6)) return Number.isNaN(x) ? x : Math.sign(x);
  if (a < 1.5) {
    if (x === 0) return x; // ±0 keeps its sign
    const x2 = x * x;
    let term = x, sum = x;
    for (let n = 1; ; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) <= 1e-17 * Math.abs(sum)) break;
    }
    return TWO_OVER_SQRT_PI * sum;
  }
  let t = a;
  for (let k = Math.ceil(12 + 240 / (a * a)); k > 0; k--) t = a + k / 2 / t;
  const c = SPLIT * a, hi = c - (c - a), lo = a - hi;
  const erfc = (Math.exp(-hi * hi) * Math.exp(-(2 * hi * lo + lo * lo))) / (Math.sqrt(Math.PI) * t);
  return x < 0 ? erfc - 1 : 1 - erfc;
}

// ln(1 + eˣ) without overflow: x + ln(1 + e⁻ˣ) for x > 0
const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/** Max, Min, Sum, Mean: one or more inputs, broadcast together; folded pairwise in input order (the
 * order onnxruntime adds in), Mean divided by the count at the end. */
function variadic(name: string, f: (x: number, y: number) => number, mean = false): Op {
  const pair = binary(f);
  return (ctx, node, xs) => {
    if (xs.length === 0 || xs.some((v) => v === null)) throw nodeError(node, `${name} takes one or more inputs, none of them empty`);
    let acc = xs[0]!;
    for (let i = 1; i < xs.length; i++) acc = pair(ctx, node, [acc, xs[i]])[0];
    if (!mean) return [acc];
    const f64 = toFloat(ctx, acc), out = ctx.alloc(f64.shape, 'float');
    for (let i = 0; i < out.length; i++) out[i] = f64.data[i] / xs.length;
    return [{ dtype: ctx.float, shape: f64.shape, data: out }];
  };
}

// Softmax and LogSoftmax along an axis: opset < 13 flattens to 2-D at axis (default 1) and normalises
// each row; ≥ 13 normalises along axis alone (default −1). m, the row's max, keeps e^(x − m) ≤ 1.
function softmax(log: boolean): Op {
  return (ctx, node, xs) => {
    const x = toFloat(ctx, input(node, xs, 0, 'input'));
    const r = x.shape.length;
    const axis = normAxis(node, attrInt(node, 'axis', ctx.opset >= 13 ? -1 : 1), r);
    const inner = ctx.opset >= 13 ? numel(x.shape.slice(axis + 1)) : 1;
    const len = ctx.opset >= 13 ? x.shape[axis] : numel(x.shape.slice(axis));
    const outer = x.data.length / (len * inner || 1);
    const out = ctx.alloc(x.shape, 'float');
    for (let o = 0; o < outer; o++) for (let j = 0; j < inner; j++) {
      const base = o * len * inner + j;
      let m = -Infinity, s = 0;
      for (let k = 0; k < len; k++) m = Math.max(m, x.data[base + k * inner]);
      for (let k = 0; k < len; k++) s += Math.exp(x.data[base + k * inner] - m);
      const logS = Math.log(s);
      for (let k = 0; k < len; k++) {
        const v = x.data[base + k * inner] - m;
        out[base + k * inner] = log ? v - logS : Math.exp(v) / s;
      }
    }
    return [{ dtype: ctx.float, shape: x.shape, data: out }];
  };
}

// ArgMax (sign 1) and ArgMin (−1) along axis (default 0) as int64, keepdims default 1; ties go to the
// first index, or the last with select_last_index; a NaN wins, as in NumPy's argmax
function argExtreme(sign: 1 | -1): Op {
  return (ctx, node, xs) => {
    const x = input(node, xs, 0, 'data');
    const r = x.shape.length;
    const axis = normAxis(node, attrInt(node, 'axis', 0), r);
    const last = attrInt(node, 'select_last_index', 0) === 1;
    const len = x.shape[axis], inner = numel(x.shape.slice(axis + 1)), outer = numel(x.shape.slice(0, axis));
    if (len === 0) throw nodeError(node, `axis ${axis} is empty: there is no index to return`);
    const outShape = x.shape.map((d, i) => (i === axis ? 1 : d));
    const out = ctx.alloc(outShape, 'int');
    for (let o = 0; o < outer; o++) for (let j = 0; j < inner; j++) {
      const base = o * len * inner + j;
      let best = 0, bv = x.data[base];
      for (let k = 1; k < len && !Number.isNaN(bv); k++) {
        const v = x.data[base + k * inner];
        if (Number.isNaN(v) || sign * v > sign * bv || (last && v === bv)) { best = k; bv = v; }
      }
      out[o * inner + j] = best;
    }
    const keep = attrInt(node, 'keepdims', 1) === 1;
    return [{ dtype: 'int64', shape: keep ? outShape : x.shape.filter((_, i) => i !== axis), data: out }];
  };
}

type Reduction = 'mean' | 'sum' | 'max' | 'min' | 'l2' | 'sumsquare';

// The Reduce ops over `axes` (an attribute until opset 18, an input from 18; ReduceSum's an input
// from 13; none given: every axis), keepdims default 1. Sums accumulate in float64. Over an empty set
// a sum is 0, a mean NaN (0/0), a max −∞ and a min +∞ (the specification's rule). Max and min keep
// an integer input's type; NaN propagates through them.
function reduce(kind: Reduction): Op {
  const fromInput = kind === 'sum' ? 13 : 18;
  return (ctx, node, xs) => {
    const raw = input(node, xs, 0, 'data');
    const keepType = (kind === 'max' || kind === 'min' || kind === 'sum') && !isFloat(raw);
    const x = keepType ? raw : toFloat(ctx, raw);
    const r = x.shape.length;
    if (ctx.opset >= fromInput && node.attributes.has('axes')) throw nodeError(node, `axes is an input from opset ${fromInput}, not an attribute`);
    const given = ctx.opset >= fromInput ? (xs[1] ? intsOf(node, xs[1], 'axes') : undefined) : attrInts(node, 'axes');
    // with noop_with_empty_axes, no axes means no reduction (the input as it is)
    if (attrInt(node, 'noop_with_empty_axes', 0) === 1 && (given === undefined || given.length === 0)) return [x];
    const axes = given === undefined || given.length === 0 ? [...x.shape.keys()] : given.map((a) => normAxis(node, a, r));
    const keep = attrInt(node, 'keepdims', 1) === 1;
    const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const acc = new Float64Array(numel(outShape)).fill(kind === 'max' ? -Infinity : kind === 'min' ? Infinity : 0);
    const st = broadcastStrides(outShape, x.shape);
    const idx = new Array<number>(r).fill(0);
    let o = 0;
    for (let i = 0; i < x.data.length; i++) {
      const v = x.data[i];
      if (kind === 'max') acc[o] = Math.max(acc[o], v);
      else if (kind === 'min') acc[o] = Math.min(acc[o], v);
      else acc[o] += kind === 'l2' || kind === 'sumsquare' ? v * v : v;
      for (let k = r - 1; k >= 0; k--) {
        if (++idx[k] < x.shape[k]) { o += st[k]; break; }
        o -= (x.shape[k] - 1) * st[k]; idx[k] = 0;
      }
    }
    const count = numel(x.shape) / (acc.length || 1);
    if (keepType && count === 0 && acc.length > 0) throw nodeError(node, `a ${kind} over an empty set of ${x.dtype} values (the type's extreme) is not supported`);
    const out = ctx.alloc(outShape, keepType ? 'int' : 'float');
    for (let i = 0; i < out.length; i++) out[i] = kind === 'mean' ? acc[i] / count : kind === 'l2' ? Math.sqrt(acc[i]) : acc[i];
    return [{ dtype: keepType ? x.dtype : ctx.float, shape: keep ? outShape : x.shape.filter((_, i) => !axes.includes(i)), data: out }];
  };
}

export const MATH_OPS: Record<string, Op> = {
  Add: binary((x, y) => x + y),
  Sub: binary((x, y) => x - y),
  Mul: binary((x, y) => x * y),
  Div: binary((x, y) => x / y, (x, y) => { if (y === 0) throw new Error('integer division by zero'); return Math.trunc(x / y); }),
  Pow: binary((x, y) => x ** y),
  Mod: mod,
  Equal: binary((x, y) => (x === y ? 1 : 0), undefined, true),
  Less: binary((x, y) => (x < y ? 1 : 0), undefined, true),
  Greater: binary((x, y) => (x > y ? 1 : 0), undefined, true),
  LessOrEqual: binary((x, y) => (x <= y ? 1 : 0), undefined, true),
  GreaterOrEqual: binary((x, y) => (x >= y ? 1 : 0), undefined, true),
  And: logical((x, y) => x && y),
  Or: logical((x, y) => x || y),
  Xor: logical((x, y) => x !== y),
  Not: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'X');
    if (x.dtype !== 'bool') throw nodeError(node, `input must be bool, got ${x.dtype}`);
    const out = ctx.alloc(x.shape, 'int');
    for (let i = 0; i < out.length; i++) out[i] = x.data[i] === 0 ? 1 : 0;
    return [{ dtype: 'bool', shape: x.shape, data: out }];
  },
  IsNaN: predicate(() => Number.isNaN),
  IsInf: predicate((node) => {
    const neg = attrInt(node, 'detect_negative', 1) === 1, pos = attrInt(node, 'detect_positive', 1) === 1;
    return (v) => (v === Infinity && pos) || (v === -Infinity && neg);
  }),
  // max(0, x) that keeps NaN and −0 as PyTorch and onnxruntime do
  Relu: unary(() => (x) => (x < 0 ? 0 : x)),
  LeakyRelu: unary((_, node) => { const a = attrFloat(node, 'alpha', 0.01); return (x) => (x < 0 ? a * x : x); }),
  Sigmoid: unary(() => sigmoid),
  HardSigmoid: unary((_, node) => { const a = attrFloat(node, 'alpha', 0.2), b = attrFloat(node, 'beta', 0.5); return (x) => Math.max(0, Math.min(1, a * x + b)); }),
  HardSwish: unary(() => (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5))),
  Tanh: unary(() => Math.tanh),
  Exp: unary(() => Math.exp),
  Sqrt: unary(() => Math.sqrt),
  Neg: unary(() => (x) => -x, true),
  Floor: unary(() => Math.floor, true),
  Ceil: unary(() => Math.ceil, true),
  Round: unary(() => roundOp, true),
  Sign: unary(() => Math.sign, true),
  Sin: unary(() => Math.sin),
  Cos: unary(() => Math.cos),
  Abs: unary(() => Math.abs, true),
  Log: unary(() => Math.log),
  Reciprocal: unary(() => (x) => 1 / x),
  Erf: unary(() => erf),
  // GELU (opset 20): x·Φ(x) = ½x(1 + erf(x/√2)); approximate 'tanh': ½x(1 + tanh(√(2/π)·(x + 0.044715x³)))
  Gelu: unary((_, node) => {
    const how = attrString(node, 'approximate', 'none');
    if (how === 'none') return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    if (how === 'tanh') return (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    throw nodeError(node, `approximate '${showText(how, 20)}' is not one of 'none', 'tanh'`);
  }),
  Softplus: unary(() => softplus),
  Softsign: unary(() => (x) => x / (1 + Math.abs(x))),
  // Swish (opset 24): x·σ(αx), SiLU at α = 1
  Swish: unary((_, node) => { const a = attrFloat(node, 'alpha', 1); return (x) => x * sigmoid(a * x); }),
  // Mish (opset 18): x·tanh(softplus(x))
  Mish: unary(() => (x) => x * Math.tanh(softplus(x))),
  // α(eˣ − 1) below zero (expm1: no cancellation near 0)
  Elu: unary((_, node) => { const a = attrFloat(node, 'alpha', 1); return (x) => (x < 0 ? a * Math.expm1(x) : x); }),
  // γ·(x ≤ 0 ? α(eˣ − 1) : x), with the specification's float32 defaults
  Selu: unary((_, node) => {
    const a = attrFloat(node, 'alpha', 1.67326319217681884765625), g = attrFloat(node, 'gamma', 1.05070102214813232421875);
    return (x) => (x > 0 ? g * x : g * a * Math.expm1(x));
  }),
  // x where x ≥ 0, slope·x elsewhere; the slope broadcasts to X's shape (one way: the output is X's shape)
  PRelu: (ctx, node, xs) => {
    const x = input(node, xs, 0, 'X'), slope = input(node, xs, 1, 'slope');
    const to = broadcastShape(node, x.shape, slope.shape);
    if (to.length !== x.shape.length || to.some((d, i) => d !== x.shape[i])) throw nodeError(node, `slope [${slope.shape.join(', ')}] does not broadcast to X [${x.shape.join(', ')}]`);
    return binary((v, a) => (v < 0 ? a * v : v))(ctx, node, [x, slope]);
  },
  // NaN in any input gives NaN (Math.max/min, as NumPy's maximum and PyTorch's)
  Max: variadic('Max', Math.max),
  Min: variadic('Min', Math.min),
  Sum: variadic('Sum', (x, y) => x + y),
  Mean: variadic('Mean', (x, y) => x + y, true),
  // Clip: min/max as inputs 1 and 2 since opset 11 (empty: unbounded)
  // min(max(x, lo), hi): with lo > hi every element is hi, as in PyTorch's clamp, NumPy's clip and
  // onnxruntime; NaN passes through
  Clip: unary((_, node, xs) => { const lo = scalarInput(node, xs, 1, -Infinity), hi = scalarInput(node, xs, 2, Infinity); return (x) => { const t = x < lo ? lo : x; return t > hi ? hi : t; }; }),

  Softmax: softmax(false),
  // log(softmax(x)) = x − m − log Σ e^(x − m): no log of an underflowed 0
  LogSoftmax: softmax(true),
  ArgMax: argExtreme(1),
  ArgMin: argExtreme(-1),

  ReduceMean: reduce('mean'),
  ReduceSum: reduce('sum'),
  ReduceMax: reduce('max'),
  ReduceMin: reduce('min'),
  ReduceL2: reduce('l2'),
  ReduceSumSquare: reduce('sumsquare'),

  // Y = alpha·A'·B' + beta·C, A' = transA ? Aᵀ : A (2-D), C broadcast to (M, N)
  Gemm: (ctx, node, xs) => {
    const a = toFloat(ctx, input(node, xs, 0, 'A')), b = toFloat(ctx, input(node, xs, 1, 'B'));
    if (a.shape.length !== 2 || b.shape.length !== 2) throw nodeError(node, `A and B must be 2-D, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
    const tA = attrInt(node, 'transA', 0) === 1, tB = attrInt(node, 'transB', 0) === 1;
    const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
    const [M, K] = tA ? [a.shape[1], a.shape[0]] : a.shape;
    const [K2, N] = tB ? [b.shape[1], b.shape[0]] : b.shape;
    if (K !== K2) throw nodeError(node, `inner dimensions differ: A' is ${M}×${K}, B' is ${K2}×${N}`);
    const y = matmul2d(ctx, a.data, b.data, M, K, N, tA, tB);
    const c = xs[2] ?? null;
    if (alpha !== 1) for (let i = 0; i < y.length; i++) y[i] *= alpha;
    if (c !== null && beta !== 0) {
      const cf = toFloat(ctx, c);
      // C broadcasts to (M, N) one way: rank ≤ 2, each dimension 1 or the product's
      const to = broadcastShape(node, [M, N], cf.shape);
      if (to.length !== 2 || to[0] !== M || to[1] !== N) throw nodeError(node, `C [${cf.shape.join(', ')}] does not broadcast to the product's ${M}×${N}`);
      const st = broadcastStrides(cf.shape, [M, N]);
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) y[m * N + n] += beta * cf.data[m * st[0] + n * st[1]];
    }
    return [{ dtype: ctx.float, shape: [M, N], data: y }];
  },

  // NumPy matmul: 1-D operands promoted and their axis dropped; leading dims broadcast
  MatMul: (ctx, node, xs) => {
    const a = toFloat(ctx, input(node, xs, 0, 'A')), b = toFloat(ctx, input(node, xs, 1, 'B'));
    const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape, bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
    const [M, K] = as.slice(-2), [K2, N] = bs.slice(-2);
    if (K !== K2) throw nodeError(node, `inner dimensions differ: [${a.shape.join(', ')}] × [${b.shape.join(', ')}]`);
    const batch = broadcastShape(node, as.slice(0, -2), bs.slice(0, -2));
    const sa = broadcastStrides(as.slice(0, -2), batch), sb = broadcastStrides(bs.slice(0, -2), batch);
    const nb = numel(batch);
    const out = ctx.alloc([...batch, M, N], 'float');
    const idx = new Array<number>(batch.length).fill(0);
    for (let t = 0; t < nb; t++) {
      let ia = 0, ib = 0;
      for (let k = 0; k < batch.length; k++) { ia += idx[k] * sa[k]; ib += idx[k] * sb[k]; }
      out.set(matmul2d(ctx, a.data.subarray(ia * M * K, (ia + 1) * M * K), b.data.subarray(ib * K * N, (ib + 1) * K * N), M, K, N, false, false), t * M * N);
      for (let k = batch.length - 1; k >= 0; k--) { if (++idx[k] < batch[k]) break; idx[k] = 0; }
    }
    const shape = [...batch, ...(a.shape.length === 1 ? [] : [M]), ...(b.shape.length === 1 ? [] : [N])];
    return [{ dtype: ctx.float, shape, data: out }];
  },
};

/** (M×K)·(K×N) on the engine's GEMM (the same kernel the convolutions use), operands transposed by strides. */
function matmul2d(ctx: OpContext, a: Float32Array | Float64Array, b: Float32Array | Float64Array, M: number, K: number, N: number, tA: boolean, tB: boolean): Float32Array | Float64Array {
  const y = ctx.alloc([M, N], 'float');
  // stored A is K×M when transposed (A(i,k) = a[k·M + i]), B is N×K (B(k,j) = b[j·K + k])
  gemm(M, N, K, { data: a, offset: 0, ld: tA ? M : K, trans: tA }, { data: b, offset: 0, ld: tB ? K : N, trans: tB }, y, 0, N, false);
  return y;
}
