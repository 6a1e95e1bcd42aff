// Comparison metrics for oracle use: absolute, relative and ULP error, and numpy.allclose's test
// |out − ref| ≤ atol + rtol·|ref| — numpy.isclose(out, ref) and torch.isclose(out, ref), the test
// torch.testing.assert_close(actual=out, expected=ref) applies: rtol scales the REFERENCE, an
// infinity is close only to itself, NaN to nothing (equal_nan=False), tolerances 0 ask for equality
// (fixtures/compare, test/io/compare.test.ts). Computed in float64, so float32 inputs are compared
// exactly where numpy's float32 arithmetic would round.

import type { FloatArray } from '../tensor/tensor.js';

export interface Comparison {
  count: number;
  maxAbs: number;
  maxRel: number;
  /** largest distance in units in the last place of `out`'s precision */
  maxUlp: number;
  /** elements failing |out − ref| ≤ atol + rtol·|ref| (NaN anywhere fails) */
  failures: number;
  /** index of the worst element by |out − ref| − (atol + rtol·|ref|) */
  worstIndex: number;
}

const f32 = new Float32Array(1);
const u32 = new Int32Array(f32.buffer);
const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);

/** A monotone integer image of a float: adjacent floats differ by 1 (−0 and +0 coincide). */
function ordered32(v: number): number {
  f32[0] = v;
  const b = u32[0];
  return b < 0 ? -(b & 0x7fffffff) : b;
}

function ordered64(v: number): bigint {
  f64[0] = v;
  const b = i64[0];
  return b < 0n ? -(b & 0x7fffffffffffffffn) : b;
}

export function ulpDistance(a: number, b: number, precision: 'float32' | 'float64'): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Infinity;
  if (precision === 'float32') return Math.abs(ordered32(a) - ordered32(b));
  const d = ordered64(a) - ordered64(b);
  return Number(d < 0n ? -d : d);
}

export function compareArrays(ref: FloatArray, out: FloatArray, rtol: number, atol: number): Comparison {
  if (!(rtol >= 0) || !(atol >= 0) || !Number.isFinite(rtol) || !Number.isFinite(atol)) throw new Error(`compareArrays: tolerances must be finite and non-negative, got rtol ${rtol}, atol ${atol}`);
  if (ref.length !== out.length) throw new Error(`compareArrays: the reference has ${ref.length} elements, the output ${out.length}`);
  const precision = out instanceof Float64Array ? 'float64' : 'float32';
  const c: Comparison = { count: ref.length, maxAbs: 0, maxRel: 0, maxUlp: 0, failures: 0, worstIndex: -1 };
  let worst = -Infinity;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i], o = out[i];
    if (o === r) continue; // equal, infinities included (numpy.allclose); NaN never equals
    const d = Math.abs(o - r);
    const nan = Number.isNaN(d);
    if (nan || d > c.maxAbs) c.maxAbs = nan ? NaN : Math.max(c.maxAbs, d);
    if (r !== 0) c.maxRel = Math.max(c.maxRel, d / Math.abs(r));
    c.maxUlp = Math.max(c.maxUlp, ulpDistance(precision === 'float32' ? Math.fround(r) : r, o, precision));
    // an infinite reference is matched only by itself (o === r above): anything else is infinitely
    // outside (∞ − ∞ would give NaN and never rank as the worst)
    const excess = nan || !Number.isFinite(r) ? Infinity : d - (atol + rtol * Math.abs(r));
    if (!(excess <= 0)) c.failures++;
    if (excess > worst) { worst = excess; c.worstIndex = i; }
  }
  return c;
}
