// Test helpers: golden fixtures, comparisons and error-model magnitudes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, tensorOf, type SafeEntry } from '../src/io/safetensors.js';
import { Tensor } from '../src/tensor/tensor.js';
import type { Rng } from '../src/tensor/rng.js';
import { conv2d, conv2dBackward, type Conv2dOptions } from '../src/ops/conv2d.js';
import { modelFromStateDict, stateDict } from '../src/io/state_dict.js';
import { convert } from '../src/reparam/repvgg.js';
import type { RepVGG, RepVGGBlock } from '../src/nn/repvgg.js';
import type { BatchNorm2d } from '../src/nn/layers.js';
import type { Module } from '../src/nn/module.js';
import { type Backend, setBackend } from '../src/backend/backend.js';

/** Unit roundoff of float32. */
export const U32 = 2 ** -24;
/** Unit roundoff of float64. */
export const U64 = 2 ** -53;

export const fixturePath = (rel: string): string => fileURLToPath(new URL(`../fixtures/${rel}`, import.meta.url));

export interface Fixture {
  t(key: string): Tensor;
  raw(key: string): SafeEntry;
  has(key: string): boolean;
  keys: string[];
  meta: Record<string, unknown>;
}

/** 'repvgg_small' → fixtures/torch/repvgg_small.safetensors; 'pth/expected' → fixtures/pth/expected.safetensors */
export function loadTorchFixture(name: string): Fixture {
  const file = parseSafetensors(new Uint8Array(readFileSync(fixturePath(name.includes('/') ? `${name}.safetensors` : `torch/${name}.safetensors`))));
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(file.metadata)) meta[k] = JSON.parse(v);
  const raw = (key: string): SafeEntry => {
    const e = file.tensors.get(key);
    if (e === undefined) throw new Error(`fixture ${name}: no key ${key}`);
    return e;
  };
  return { raw, t: (key) => tensorOf(raw(key), key), has: (key) => file.tensors.has(key), keys: [...file.tensors.keys()], meta };
}

export function maxAbsDiff(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>): number {
  const x = a instanceof Tensor ? a.data : a;
  const y = b instanceof Tensor ? b.data : b;
  if (x.length !== y.length) throw new Error(`length ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}

export function maxAbs(a: Tensor | ArrayLike<number>): number {
  const x = a instanceof Tensor ? a.data : a;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

export function absTensor(t: Tensor): Tensor {
  const d = new Float64Array(t.size);
  for (let i = 0; i < d.length; i++) d[i] = Math.abs(t.data[i]);
  return new Tensor(d, t.shape);
}

/** S = Σ|x·w| + |b| per output: the magnitude that bounds the rounding error of any summation order. */
export function absConv(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOptions): Tensor {
  return conv2d(absTensor(x), absTensor(w), b === null ? null : absTensor(b), { ...opts, algorithm: 'direct' });
}

/** Elementwise |a − b| ≤ bound[i] check; returns the first violation as text, or null. */
export function firstViolation(a: Tensor, b: Tensor, bound: (i: number) => number): string | null {
  for (let i = 0; i < a.size; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    if (!(d <= bound(i))) return `index ${i}: |${a.data[i]} − ${b.data[i]}| = ${d} > ${bound(i)}`;
  }
  return null;
}

/**
 * A module's backward against finite differences, on the loss L = Σ r ⊙ m(x) (one scalar covers
 * every output): gradError for the input (xSamples coordinates) and for every parameter (pSamples
 * each), named ('input' or the state-dict key). Runs m in its current mode; float64 tensors.
 */
export function moduleGradErrors(m: Module, x: Tensor, r: Tensor, rng: Rng, xSamples: number, pSamples: number): { dx: Tensor; errors: [string, number][] } {
  const L = () => {
    const y = m.forward(x);
    let s = 0;
    for (let i = 0; i < y.size; i++) s += y.data[i] * r.data[i];
    return s;
  };
  L();
  m.zeroGrad();
  const dx = m.backward(r);
  const errors: [string, number][] = [['input', gradError(x, dx, L, rng, xSamples)]];
  for (const [name, p] of m.namedParameters()) errors.push([name, gradError(p.data, p.grad, L, rng, pSamples)]);
  return { dx, errors };
}

/** Central-difference step for float64 gradient checks (see test/ops/gradcheck.test.ts for its error). */
const H = 1e-6;

/** max_i |analytic_i − numeric_i| / max(1, max|numeric|) over sampled coordinates of `wrt`. */
export function gradError(wrt: Tensor, analytic: Tensor, loss: () => number, rng: Rng, samples = 12): number {
  let worst = 0, scale = 1;
  const idx = Array.from({ length: Math.min(samples, wrt.size) }, () => rng.int(wrt.size));
  const nums: number[] = [];
  for (const i of idx) {
    const v = wrt.data[i];
    wrt.data[i] = v + H; const lp = loss();
    wrt.data[i] = v - H; const lm = loss();
    wrt.data[i] = v;
    nums.push((lp - lm) / (2 * H));
  }
  for (const n of nums) scale = Math.max(scale, Math.abs(n));
  idx.forEach((i, k) => { worst = Math.max(worst, Math.abs(analytic.data[i] - nums[k])); });
  return worst / scale;
}


/**
 * An elementwise bound on |logits − exact logits| for an eval-mode float32 forward of `model` on x,
 * whatever the summation order and whether or not BN is folded into the convs first (as
 * onnxruntime's optimizer does). First-order forward error analysis:
 *  - block l computes z_l = Σ_b s_b·(W_b ⊛ h − μ_b) + β_b, h_l = ReLU(z_l) (identity branch: W = I;
 *    deploy block: one branch, s = 1, μ = 0, β = bias). Its rounding error, given its input, is at most
 *    r_l = γ_{K+8}·(A ⊛ |h_{l−1}| + B), A = Σ_b |s_b·W_b|, B = Σ_b |s_b·μ_b| + |β_b| (Higham,
 *    Accuracy and Stability §3.1: an n-term sum of products is within γₙ·Σ|terms|, γₙ = nu/(1 − nu);
 *    K products, ≤ 4 roundings in BN, 2 branch adds);
 *  - an error δz_l reaches logit k as Σᵢ (∂y_k/∂z_l[i])·δz_l[i] + O(u²), with the Jacobian of the exact
 *    network (backprop through the float64-fused model); ReLU's kink counts as open wherever
 *    z_l > −r_l, since rounding can move z across zero by up to r_l;
 *  - pooling adds γ_{HW}·mean|h| per channel, the classifier γ_{C+2}·(|W|·p + |b|).
 * So |δy_k| ≤ Σ_l Σᵢ |∂y_k/∂z_l[i]|·r_l[i] + (pool and classifier terms). Unlike a bound through the
 * network of absolute values (which multiplies by Σ|w| ≈ 4 per layer), signs in the Jacobian cancel
 * as they do in the real computation. Two implementations each within it differ by at most twice it.
 */
export function forwardErrorBound(model: RepVGG, x: Tensor): Float64Array {
  const u = 2 ** -24;
  const g = (n: number) => (n * u) / (1 - n * u);
  const f64 = modelFromStateDict(stateDict(model), { dtype: 'float64' }).eval();
  const exact = f64.deploy ? f64 : convert(f64);
  const blocks = exact.blocks(), absB = model.blocks().map(absoluteBlock);
  const hs: Tensor[] = [x.to('float64')], zs: Tensor[] = [], rs: Float64Array[] = [];
  blocks.forEach((b, l) => {
    const opts = { stride: b.spec.stride, padding: 1, groups: b.spec.groups, algorithm: 'direct' as const };
    const h = hs[l];
    const z = conv2d(h, b.rbrReparam!.weight.data, b.rbrReparam!.bias!.data, opts);
    const mag = conv2d(absTensor(h), absB[l].A, absB[l].B, opts);
    rs.push(mag.data.map((v) => g(absB[l].A.shape[1] * 9 + 8) * v) as Float64Array);
    zs.push(z);
    hs.push(new Tensor(z.data.map((v) => (v > 0 ? v : 0)), z.shape));
  });
  const hL = hs[hs.length - 1];
  const [N, C, H, W] = hL.shape;
  const w = exact.linear.weight.data.data, bias = exact.linear.bias.data.data;
  const F = exact.linear.weight.data.shape[0];
  const p = new Float64Array(N * C), rp = new Float64Array(N * C);
  for (let i = 0; i < N * C; i++) {
    let s = 0;
    for (let j = 0; j < H * W; j++) s += hL.data[i * H * W + j];
    p[i] = s / (H * W);
    rp[i] = g(H * W) * p[i]; // h ≥ 0, so mean|h| = p
  }
  const out = new Float64Array(N * F);
  for (let k = 0; k < F; k++) {
    // ∂y[n, k]/∂h_L: the classifier row spread evenly over the pooled positions
    let gh = new Tensor(new Float64Array(hL.size), hL.shape);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let j = 0; j < H * W; j++) gh.data[(n * C + c) * H * W + j] = w[k * C + c] / (H * W);
    const acc = new Float64Array(N);
    for (let n = 0; n < N; n++) {
      let t = g(C + 2) * Math.abs(bias[k]);
      for (let c = 0; c < C; c++) t += Math.abs(w[k * C + c]) * (rp[n * C + c] + g(C + 2) * p[n * C + c]);
      acc[n] = t;
    }
    for (let l = blocks.length - 1; l >= 0; l--) {
      const z = zs[l], r = rs[l];
      const gz = new Tensor(gh.data.map((v, i) => (z.data[i] > -r[i] ? v : 0)), z.shape);
      const per = z.size / N;
      for (let n = 0; n < N; n++) for (let i = n * per; i < (n + 1) * per; i++) acc[n] += Math.abs(gz.data[i]) * r[i];
      const b = blocks[l];
      gh = conv2dBackward(gz, hs[l], b.rbrReparam!.weight.data, { stride: b.spec.stride, padding: 1, groups: b.spec.groups }, { dx: true, dw: false, db: false }).dx!;
    }
    for (let n = 0; n < N; n++) out[n * F + k] = acc[n];
  }
  return out;
}

// A = Σ_b |s_b·W_b| as one (F, C/g, 3, 3) kernel (1×1 and identity at the centre), B = Σ_b |s_b·μ_b| + |β_b|.
function absoluteBlock(b: RepVGGBlock): { A: Tensor; B: Tensor } {
  const { inChannels: Cin, outChannels: F, groups } = b.spec;
  const Cg = Cin / groups;
  const A = new Float64Array(F * Cg * 9), B = new Float64Array(F);
  const addConv = (w: Tensor, scale: (f: number) => number) => {
    const k = w.shape[2], off = (3 - k) / 2;
    for (let f = 0; f < F; f++) for (let c = 0; c < Cg; c++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
      A[((f * Cg + c) * 3 + i + off) * 3 + j + off] += Math.abs(w.data[((f * Cg + c) * k + i) * k + j] * scale(f));
    }
  };
  const bn = (m: BatchNorm2d) => {
    const s = (f: number) => m.weight.data.data[f] / Math.sqrt(m.runningVar.data[f] + m.eps);
    for (let f = 0; f < F; f++) B[f] += Math.abs(s(f) * m.runningMean.data[f]) + Math.abs(m.bias.data.data[f]);
    return s;
  };
  if (b.rbrReparam !== null) {
    addConv(b.rbrReparam.weight.data, () => 1);
    for (let f = 0; f < F; f++) B[f] += Math.abs(b.rbrReparam.bias!.data.data[f]);
  } else {
    addConv(b.rbrDense!.conv.weight.data, bn(b.rbrDense!.bn));
    if (b.rbr1x1 !== null) addConv(b.rbr1x1.conv.weight.data, bn(b.rbr1x1.bn));
    if (b.rbrIdentity !== null) {
      const s = bn(b.rbrIdentity);
      for (let f = 0; f < F; f++) A[((f * Cg + (f % Cg)) * 3 + 1) * 3 + 1] += Math.abs(s(f));
    }
  }
  return { A: new Tensor(A, [F, Cg, 3, 3]), B: new Tensor(B, [F]) };
}

/** The values with −0 shown as '-0', so that an equality check tells it from 0 (NaN equals NaN there). */
export function signedZeros(a: ArrayLike<number>): (number | string)[] {
  return Array.from(a, (v) => (Object.is(v, -0) ? '-0' : v));
}

const bits64 = new DataView(new ArrayBuffer(8));

/**
 * fl₃₂(a·b + c) rounded once, for float32 a, b, c (what a fused multiply-add gives): a·b is exact in
 * float64; the float64 sum is made round-to-odd (TwoSum's error says whether it was inexact and on
 * which side), and round-to-odd in ≥ 24 + 2 bits followed by rounding to float32 is the correct
 * rounding (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums", 2008).
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b, s = p + c;
  if (!Number.isFinite(s)) return Math.fround(s);
  const bv = s - p, e = (p - (s - bv)) + (c - bv); // TwoSum: s + e = p + c exactly
  if (e === 0) return Math.fround(s);
  bits64.setFloat64(0, s);
  const lo = bits64.getUint32(4);
  if ((lo & 1) === 1) return Math.fround(s); // already odd
  // one step toward the exact value: away from zero when e has s's sign, toward it otherwise
  const away = (e > 0) === (s > 0);
  const hi = bits64.getUint32(0);
  const wide = BigInt(hi) * 4294967296n + BigInt(lo) + (away ? 1n : -1n);
  bits64.setUint32(0, Number(wide >> 32n));
  bits64.setUint32(4, Number(wide & 0xffffffffn));
  return Math.fround(bits64.getFloat64(0));
}

/** f() with the GEMM kernels on backend b, then back on the default 'wasm' (also when f throws). */
export function withBackend<T>(b: Backend, f: () => T): T {
  setBackend(b);
  try {
    return f();
  } finally {
    setBackend('wasm');
  }
}
