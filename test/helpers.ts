// Test helpers: golden fixtures, comparisons and error-model magnitudes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, tensorOf, type SafeEntry } from '../src/io/safetensors.js';
import { Tensor } from '../src/tensor/tensor.js';
import type { Rng } from '../src/tensor/rng.js';
import { conv2d, type Conv2dOptions } from '../src/ops/conv2d.js';

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

export function loadTorchFixture(name: string): Fixture {
  const file = parseSafetensors(new Uint8Array(readFileSync(fixturePath(`torch/${name}.safetensors`))));
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

