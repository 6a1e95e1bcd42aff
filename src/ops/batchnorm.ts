// BatchNorm2d, as torch.nn.functional.batch_norm over NCHW: per channel c,
//   y = γ·(x − μ)/√(σ² + ε) + β
// training: μ, σ² are the batch statistics over (N, H, W) (σ² biased; each sum by the batch's halves,
// src/ops/batch_shards.ts), and the running statistics
// move by momentum: r ← (1 − m)·r + m·stat, with the unbiased σ²·M/(M − 1) for running_var;
// eval: μ, σ² are the running statistics. Statistics are computed in float64; outputs and input
// gradients here in float64, rounded once (the reference), on 'wasm' in float32 (backend/batchnorm.ts).

import { type FloatArray, Tensor, addInto, allocLike } from '../tensor/tensor.js';
import { workspace64 } from '../tensor/workspace.js';
import { expectRank, expectSameDtype, fmtShape } from '../tensor/check.js';
import { type BatchNormPasses, batchNormPasses, batchNormSumGradPasses, batchNormSumPasses } from '../backend/batchnorm.js';
import { relu as reluOp, reluBackward } from './relu.js';
import { batchImages, batchSums, gradientOfHalves } from './batch_shards.js';

export interface BatchNormParams {
  /** γ: (C) or null for affine=False */
  weight: Tensor | null;
  /** β: (C) or null */
  bias: Tensor | null;
  /** (C), updated in place in training mode */
  runningMean: Tensor;
  /** (C), updated in place in training mode */
  runningVar: Tensor;
}

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  /** where μ and 1/√(σ² + ε) go (C each; a module's own, written at every forward), else new arrays:
   * a Float64Array of more than 8 elements costs ~2.5 µs to allocate (its memory lies outside V8's heap) */
  stats?: { mean: Float64Array; invStd: Float64Array };
}

export interface BatchNormResult {
  y: Tensor;
  /** μ used per channel (batch or running) */
  mean: Float64Array;
  /** 1/√(σ² + ε) used per channel */
  invStd: Float64Array;
}

function checkBN(x: Tensor, p: BatchNormParams): number {
  expectRank(x, 4, 'batch_norm input');
  const C = x.shape[1];
  const named: [string, Tensor | null][] = [['weight', p.weight], ['bias', p.bias], ['running_mean', p.runningMean], ['running_var', p.runningVar]];
  for (const [name, t] of named) {
    if (t !== null && (t.shape.length !== 1 || t.shape[0] !== C)) {
      throw new Error(`batch_norm: ${name} shape ${fmtShape(t.shape)} does not match ${C} channels of input shape ${fmtShape(x.shape)}`);
    }
    if (t !== null) expectSameDtype(x, t, 'batch_norm input', `batch_norm ${name}`);
  }
  return C;
}

// Per channel, in float64: Σ x and Σ (x − μ)² over the images [n0, n1) of x: (N, C, P) (a half
// of the batch: batch_shards.ts). Each channel's terms are added in (n, i) order, one after another;
// four channels go through the loop together, so that four chains of dependent additions overlap
// (one chain waits a float64 add's latency per term) and the sums are the ones a loop over one
// channel gives, bit for bit.
function channelSums(xd: FloatArray, n0: number, n1: number, C: number, P: number, sum: Float64Array): void {
  let c = 0;
  for (; c + 4 <= C; c += 4) {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let n = n0; n < n1; n++) {
      const o0 = (n * C + c) * P, o1 = o0 + P, o2 = o1 + P, o3 = o2 + P;
      for (let i = 0; i < P; i++) {
        s0 += xd[o0 + i];
        s1 += xd[o1 + i];
        s2 += xd[o2 + i];
        s3 += xd[o3 + i];
      }
    }
    sum[c] = s0; sum[c + 1] = s1; sum[c + 2] = s2; sum[c + 3] = s3;
  }
  for (; c < C; c++) {
    let s = 0;
    for (let n = n0; n < n1; n++) {
      const off = (n * C + c) * P;
      for (let i = 0; i < P; i++) s += xd[off + i];
    }
    sum[c] = s;
  }
}

function channelSquares(xd: FloatArray, n0: number, n1: number, C: number, P: number, mean: Float64Array, ss: Float64Array): void {
  let c = 0;
  for (; c + 4 <= C; c += 4) {
    const m0 = mean[c], m1 = mean[c + 1], m2 = mean[c + 2], m3 = mean[c + 3];
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let n = n0; n < n1; n++) {
      const o0 = (n * C + c) * P, o1 = o0 + P, o2 = o1 + P, o3 = o2 + P;
      for (let i = 0; i < P; i++) {
        const d0 = xd[o0 + i] - m0, d1 = xd[o1 + i] - m1, d2 = xd[o2 + i] - m2, d3 = xd[o3 + i] - m3;
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
      }
    }
    ss[c] = s0; ss[c + 1] = s1; ss[c + 2] = s2; ss[c + 3] = s3;
  }
  for (; c < C; c++) {
    const mu = mean[c];
    let s = 0;
    for (let n = n0; n < n1; n++) {
      const off = (n * C + c) * P;
      for (let i = 0; i < P; i++) {
        const d = xd[off + i] - mu;
        s += d * d;
      }
    }
    ss[c] = s;
  }
}

interface Normalization {
  mean: Float64Array;
  invStd: Float64Array;
  /** y = x·scale + shift, per channel */
  scale: Float64Array;
  shift: Float64Array;
}

// μ and 1/√(σ² + ε) per channel (training: the batch's, and the running statistics move; eval: the
// running ones), and the factors of y = x·scale + shift (scratch, valid until the next BN). `simd`
// holds x when the passes run there.
function normalization(x: Tensor, p: BatchNormParams, opts: BatchNormOptions, simd: BatchNormPasses | null): Normalization {
  const C = checkBN(x, p);
  const [N, , H, W] = x.shape;
  const P = H * W;
  const M = batchImages(N) * P; // the whole batch's values per channel, where this thread holds half of it
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const xd = x.data;
  const stats = opts.stats;
  if (stats !== undefined && (stats.mean.length !== C || stats.invStd.length !== C)) {
    throw new Error(`batch_norm: stats hold ${stats.mean.length} and ${stats.invStd.length} values, expected ${C} (the input's channels)`);
  }
  const mean = stats?.mean ?? new Float64Array(C);
  const invStd = stats?.invStd ?? new Float64Array(C);
  if (opts.training) {
    if (M <= 1) throw new Error(`batch_norm: expected more than 1 value per channel when training, got input shape ${fmtShape(x.shape)}`);
    const rm = p.runningMean.data, rv = p.runningVar.data;
    // each sum by the batch's halves (batch_shards.ts)
    batchSums(N, mean, (n0, n1, out) => simd !== null ? simd.sums(out, undefined, n0, n1) : channelSums(xd, n0, n1, C, P, out));
    for (let c = 0; c < C; c++) mean[c] /= M;
    const ss = invStd;
    batchSums(N, ss, (n0, n1, out) => simd !== null ? simd.sums(out, mean, n0, n1) : channelSquares(xd, n0, n1, C, P, mean, out));
    for (let c = 0; c < C; c++) {
      const mu = mean[c], variance = ss[c] / M;
      rm[c] = (1 - momentum) * rm[c] + momentum * mu;
      rv[c] = (1 - momentum) * rv[c] + momentum * (ss[c] / (M - 1));
      invStd[c] = 1 / Math.sqrt(variance + eps);
    }
  } else {
    for (let c = 0; c < C; c++) {
      mean[c] = p.runningMean.data[c];
      invStd[c] = 1 / Math.sqrt(p.runningVar.data[c] + eps);
    }
  }
  const factors = workspace64('bn.factors', 2 * C);
  const scale = factors.subarray(0, C), shift = factors.subarray(C, 2 * C);
  for (let c = 0; c < C; c++) {
    scale[c] = (p.weight === null ? 1 : p.weight.data[c]) * invStd[c];
    shift[c] = (p.bias === null ? 0 : p.bias.data[c]) - mean[c] * scale[c];
  }
  return { mean, invStd, scale, shift };
}

// x: (N, C, H, W) → y: (N, C, H, W)
export function batchNorm2d(x: Tensor, p: BatchNormParams, opts: BatchNormOptions): BatchNormResult {
  const C = checkBN(x, p);
  const [N, , H, W] = x.shape;
  const xd = x.data;
  const simd = batchNormPasses([xd], N, C, H * W);
  const { mean, invStd, scale, shift } = normalization(x, p, opts, simd);
  const y = allocLike(xd, xd.length);
  if (simd !== null) simd.normalize(scale, shift, y as Float32Array);
  else normalize(xd, N, C, H * W, scale, shift, y);
  return { y: new Tensor(y, x.shape), mean, invStd };
}

/**
 * The sum of several BatchNorms' outputs, then ReLU when `relu`: y = relu(Σ_b batch_norm(x_b)), the
 * tail of a block whose branches each end in a BN. Each BN is batchNorm2d (statistics, running
 * statistics, the same rounding of each output), the outputs added in branch order in the input's
 * type: the same bits as calling batchNorm2d per branch and summing. On 'wasm' (float32) the outputs
 * are never stored: each is added into a sum kept in WebAssembly memory as it is computed.
 * xs: b × (N, C, H, W) → y: (N, C, H, W), and each BN's saved statistics (for batchNorm2dBackward).
 * into: an array of xs[0]'s length and type that y may be written into (on 'wasm' it is).
 */
export function batchNormSum(xs: Tensor[], ps: BatchNormParams[], opts: BatchNormOptions[], relu: boolean, into?: FloatArray): { y: Tensor; saved: { mean: Float64Array; invStd: Float64Array }[] } {
  const x0 = xs[0];
  if (xs.length === 0 || ps.length !== xs.length || opts.length !== xs.length) throw new Error('batch_norm sum: one set of parameters and options per input');
  for (const x of xs) {
    if (x.shape.length !== x0.shape.length || x.shape.some((d, i) => d !== x0.shape[i]) || x.dtype !== x0.dtype) {
      throw new Error(`batch_norm sum: input shapes ${xs.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(', ')} differ`);
    }
  }
  const C = checkBN(x0, ps[0]);
  if (into !== undefined && (into.length !== x0.size || (into instanceof Float64Array) !== (x0.data instanceof Float64Array))) {
    throw new Error(`batch_norm sum: into holds ${into.length} values, expected ${x0.size} ${x0.dtype}`);
  }
  const [N, , H, W] = x0.shape;
  const P = H * W;
  const sum = batchNormSumPasses(x0.data, N, C, P);
  if (sum === null) {
    const rs = xs.map((x, b) => batchNorm2d(x, ps[b], opts[b]));
    const s = rs[0].y.data;
    for (let b = 1; b < rs.length; b++) {
      addInto(s, rs[b].y.data);
    }
    return { y: relu ? reluOp(rs[0].y) : rs[0].y, saved: rs.map(({ mean, invStd }) => ({ mean, invStd })) };
  }
  const saved = xs.map((x, b) => {
    const passes = sum.branch(x.data as Float32Array);
    const { mean, invStd, scale, shift } = normalization(x, ps[b], opts[b], passes);
    passes.accumulate(scale, shift, sum, b === 0, relu && b === xs.length - 1);
    return { mean, invStd };
  });
  const y = (into ?? allocLike(x0.data, x0.size)) as Float32Array;
  sum.result(y);
  return { y: new Tensor(y, x0.shape), saved };
}

// y = x·scale[c] + shift[c], in float64, rounded once to y's type
function normalize(xd: FloatArray, N: number, C: number, P: number, scale: Float64Array, shift: Float64Array, y: FloatArray): void {
  for (let c = 0; c < C; c++) {
    const sc = scale[c], sh = shift[c];
    for (let n = 0; n < N; n++) {
      const off = (n * C + c) * P;
      for (let i = 0; i < P; i++) y[off + i] = xd[off + i] * sc + sh;
    }
  }
}

export interface BatchNormGrads {
  dx: Tensor;
  dweight: Tensor | null;
  dbias: Tensor | null;
}

// Per channel: Σ dy and Σ dy·x̂ over the images [n0, n1), each channel's terms in (n, i) order;
// two channels at a time (four chains of dependent additions), as channelSums.
function gradSums(
  g: FloatArray, xd: FloatArray, n0: number, n1: number, C: number, P: number, mean: Float64Array, invStd: Float64Array,
  sumDy: Float64Array, sumDyXhat: Float64Array,
): void {
  let c = 0;
  for (; c + 2 <= C; c += 2) {
    const m0 = mean[c], m1 = mean[c + 1], is0 = invStd[c], is1 = invStd[c + 1];
    let b0 = 0, b1 = 0, s0 = 0, s1 = 0;
    for (let n = n0; n < n1; n++) {
      const o0 = (n * C + c) * P, o1 = o0 + P;
      for (let i = 0; i < P; i++) {
        const d0 = g[o0 + i], d1 = g[o1 + i];
        b0 += d0;
        s0 += d0 * (xd[o0 + i] - m0) * is0;
        b1 += d1;
        s1 += d1 * (xd[o1 + i] - m1) * is1;
      }
    }
    sumDy[c] = b0; sumDy[c + 1] = b1; sumDyXhat[c] = s0; sumDyXhat[c + 1] = s1;
  }
  for (; c < C; c++) {
    const mu = mean[c], is = invStd[c];
    let sb = 0, sg = 0;
    for (let n = n0; n < n1; n++) {
      const off = (n * C + c) * P;
      for (let i = 0; i < P; i++) {
        const d = g[off + i];
        sb += d;
        sg += d * (xd[off + i] - mu) * is;
      }
    }
    sumDy[c] = sb;
    sumDyXhat[c] = sg;
  }
}

// dx = k·((dy − a) − ((x − μ)·invStd)·b) per channel (training; eval: dx = k·dy), in float64,
// rounded once to dx's type
function gradInput(
  g: FloatArray, xd: FloatArray, N: number, C: number, P: number, training: boolean,
  k: Float64Array, a: Float64Array, mean: Float64Array, invStd: Float64Array, b: Float64Array, dx: FloatArray,
): void {
  for (let c = 0; c < C; c++) {
    const kc = k[c], ac = a[c], mu = mean[c], is = invStd[c], bc = b[c];
    for (let n = 0; n < N; n++) {
      const off = (n * C + c) * P;
      if (training) {
        for (let i = 0; i < P; i++) dx[off + i] = kc * (g[off + i] - ac - (xd[off + i] - mu) * is * bc);
      } else {
        for (let i = 0; i < P; i++) dx[off + i] = kc * g[off + i];
      }
    }
  }
}

// dy: (N, C, H, W) → dx: (N, C, H, W), dγ: (C), dβ: (C), with x̂ = (x − μ)·invStd:
//   dβ = Σ dy,  dγ = Σ dy·x̂
//   eval:     dx = γ·invStd·dy
//   training: dx = γ·invStd·(dy − dβ/M − x̂·dγ/M)   (μ and σ² depend on x)
// dxInto: where dx goes (x's length and type), else a new array
export function batchNorm2dBackward(
  dy: Tensor, x: Tensor, weight: Tensor | null, saved: { mean: Float64Array; invStd: Float64Array }, training: boolean, dxInto?: FloatArray,
): BatchNormGrads {
  const [N, C, H, W] = x.shape;
  if (dy.shape.length !== 4 || dy.shape[0] !== N || dy.shape[1] !== C || dy.shape[2] !== H || dy.shape[3] !== W) {
    throw new Error(`batch_norm backward: grad_output shape ${fmtShape(dy.shape)} does not match input shape ${fmtShape(x.shape)}`);
  }
  return backwardWith(dy.data, x, weight, saved, training, batchNormPasses([dy.data, x.data], N, C, H * W), dxInto);
}

// simd: the passes with dy and x in place (then g is not read when training), or null; dx written
// into dxInto when given (x's length and type), else a new array
function backwardWith(
  g: FloatArray, x: Tensor, weight: Tensor | null, saved: { mean: Float64Array; invStd: Float64Array }, training: boolean, simd: BatchNormPasses | null,
  dxInto?: FloatArray,
): BatchNormGrads {
  const [N, C, H, W] = x.shape;
  const P = H * W;
  const M = batchImages(N) * P;
  const xd = x.data;
  if (dxInto !== undefined && (dxInto.length !== xd.length || (dxInto instanceof Float64Array) !== (xd instanceof Float64Array))) {
    throw new Error(`batch_norm backward: dxInto holds ${dxInto.length} values, expected ${xd.length} ${x.dtype}`);
  }
  const dx = dxInto ?? allocLike(xd, xd.length);
  const dweight = allocLike(xd, C);
  const dbias = allocLike(xd, C);
  // per channel: Σdy, Σdy·x̂, and k = γ·invStd, a = Σdy/M, b = Σdy·x̂/M (scratch: used before this returns)
  const t = workspace64('bn.backward', 5 * C);
  const sumDy = t.subarray(0, C), sumDyXhat = t.subarray(C, 2 * C), k = t.subarray(2 * C, 3 * C), a = t.subarray(3 * C, 4 * C), b = t.subarray(4 * C, 5 * C);
  // by the batch's halves (batch_shards.ts): dβ and dγ are each half's sums rounded, then added, as
  // two threads holding a half each get them; dx reads the whole batch's float64 sums
  const sumOver = (n0: number, n1: number, out: Float64Array): void => {
    const oDy = out.subarray(0, C), oDyXhat = out.subarray(C, 2 * C);
    if (simd !== null) simd.gradSums(saved.mean, saved.invStd, oDy, oDyXhat, n0, n1);
    else gradSums(g, xd, n0, n1, C, P, saved.mean, saved.invStd, oDy, oDyXhat);
  };
  batchSums(N, t.subarray(0, 2 * C), sumOver, (first, second) => {
    gradientOfHalves(dbias, first.subarray(0, C), second === null ? null : second.subarray(0, C));
    gradientOfHalves(dweight, first.subarray(C, 2 * C), second === null ? null : second.subarray(C, 2 * C));
  });
  for (let c = 0; c < C; c++) {
    k[c] = (weight === null ? 1 : weight.data[c]) * saved.invStd[c];
    a[c] = sumDy[c] / M;
    b[c] = sumDyXhat[c] / M;
  }
  if (simd !== null && training) simd.gradInput(k, a, saved.mean, saved.invStd, b, dx as Float32Array);
  else gradInput(g, xd, N, C, P, training, k, a, saved.mean, saved.invStd, b, dx);
  return {
    dx: new Tensor(dx, x.shape),
    dweight: weight === null ? null : new Tensor(dweight, [C]),
    dbias: new Tensor(dbias, [C]),
  };
}

/**
 * batchNormSum's backward: dy → each branch's gradients (training: each BN's mode in its forward), as batchNorm2dBackward gives them, from
 * d = dy, or ReLU's gradient of it when the forward applied ReLU (y: its output, else null). On
 * 'wasm' (float32, training) d is found once in WebAssembly memory and every branch reads it there.
 * dxInto: where each branch's dx goes (arrays of its x's length and type), else new arrays.
 */
export function batchNormSumBackward(
  dy: Tensor, y: Tensor | null, xs: Tensor[], weights: (Tensor | null)[], saved: { mean: Float64Array; invStd: Float64Array }[], training: boolean[],
  dxInto?: FloatArray[],
): BatchNormGrads[] {
  for (const t of [y, ...xs]) {
    if (t !== null && (t.shape.length !== dy.shape.length || t.shape.some((d, i) => d !== dy.shape[i]))) {
      throw new Error(`batch_norm sum backward: grad_output shape ${fmtShape(dy.shape)} does not match ${fmtShape(t.shape)}`);
    }
  }
  const [N, C, H, W] = dy.shape;
  const grad = training.every((t) => t) && xs.every((x) => x.data instanceof Float32Array) ? batchNormSumGradPasses(dy.data, y === null ? null : y.data, N, C, H * W) : null;
  if (grad === null) {
    const d = y === null ? dy : reluBackward(dy, y);
    return xs.map((x, b) => batchNorm2dBackward(d, x, weights[b], saved[b], training[b], dxInto?.[b]));
  }
  return xs.map((x, b) => backwardWith(dy.data, x, weights[b], saved[b], true, grad.branch(x.data as Float32Array), dxInto?.[b]));
}
