// Test helpers: golden fixtures, comparisons and error-model magnitudes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, tensorOf, type SafeEntry } from '../src/io/safetensors.js';
import { Tensor } from '../src/tensor/tensor.js';
import type { Rng } from '../src/tensor/rng.js';
import { conv2d, type Conv2dOptions } from '../src/ops/conv2d.js';
import type { RepVGG, RepVGGBlock } from '../src/nn/repvgg.js';
import type { BatchNorm2d } from '../src/nn/layers.js';

/** Unit roundoff of float32. */
export const U32 = 2 ** -24;
/** Unit roundoff of float64. */
export const U64 = 2 ** -53;

export const fixturePath = (rel: string): string => fileURLToPath(new URL(`../fixtures/${rel}`, import.meta.url));

export interface Fixture {
  t(key: string): Tensor;
  raw(key: string): SafeEntry;
  has(key: string): boolean;
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
  return { raw, t: (key) => tensorOf(raw(key), key), has: (key) => file.tensors.has(key), meta };
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


const gamma = (n: number, u: number) => (n * u) / (1 - n * u);

/**
 * An elementwise bound on |logits − exact logits| for an eval-mode float32 forward of `model` on x,
 * whatever the summation order and whether or not BN is folded into the convs first (as
 * onnxruntime's optimizer does). Derivation (Higham, Accuracy and Stability, §3.1: a computed n-term
 * sum of products is within γₙ·Σ|terms| of exact, γₙ = nu/(1 − nu)):
 *  - a block is z = Σ_b s_b·(W_b ⊛ h − μ_b) + β_b then ReLU (the identity branch is W = I; a deploy
 *    block one branch with s = 1, μ = 0, β = bias). With A = Σ_b |s_b·W_b| and B = Σ_b |s_b·μ_b| + |β_b|,
 *    an input error e moves z by at most A ⊛ |e| (each branch is linear; ReLU is 1-Lipschitz), and
 *    rounding adds at most γ_{K+8}·(A ⊛ |ĥ| + B): K products, ≤ 4 roundings inside BN, 2 branch adds;
 *  - so with S = the same chain on |x| with A, B (every magnitude exact) and |ĥ| ≤ S + E:
 *    E_l = A ⊛ E_{l−1} + γ_{K+8}·(A ⊛ (S + E)_{l−1} + B);
 *  - global average pool: + γ_{HW}·(S + E); linear: |W|·E + γ_{F+2}·(|W|·(S + E) + |b|).
 * Two implementations each within E of exact differ by at most 2E.
 */
export function forwardErrorBound(model: RepVGG, x: Tensor): Float64Array {
  const u = 2 ** -24;
  let S = absTensor(x);
  let E = new Tensor(new Float64Array(x.size), x.shape);
  for (const b of model.blocks()) {
    const { A, B } = absoluteBlock(b);
    const K = A.shape[1] * 9;
    const opts = { stride: b.spec.stride, padding: 1, groups: b.spec.groups, algorithm: 'direct' as const };
    const SE = new Tensor(S.data.map((v, i) => v + E.data[i]), S.shape);
    const mag = conv2d(SE, A, B, opts);
    const prop = conv2d(E, A, null, opts);
    S = conv2d(S, A, B, opts);
    E = new Tensor(prop.data.map((v, i) => v + gamma(K + 8, u) * mag.data[i]), prop.shape);
  }
  const [N, C, H, W] = S.shape;
  const pool = (t: Tensor) => {
    const out = new Float64Array(N * C);
    for (let i = 0; i < N * C; i++) { let s = 0; for (let j = 0; j < H * W; j++) s += t.data[i * H * W + j]; out[i] = s / (H * W); }
    return out;
  };
  const Sp = pool(S), Ep0 = pool(E);
  const Ep = Ep0.map((e, i) => e + gamma(H * W, u) * (Sp[i] + e));
  const w = model.linear.weight.data, bias = model.linear.bias.data;
  const F = w.shape[0];
  const out = new Float64Array(N * F);
  for (let n = 0; n < N; n++) {
    for (let f = 0; f < F; f++) {
      let prop = 0, mag = Math.abs(bias.data[f]);
      for (let c = 0; c < C; c++) {
        const a = Math.abs(w.data[f * C + c]);
        prop += a * Ep[n * C + c];
        mag += a * (Sp[n * C + c] + Ep[n * C + c]);
      }
      out[n * F + f] = prop + gamma(C + 2, u) * mag;
    }
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
