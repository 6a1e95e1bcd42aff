import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { conv2d, conv2dBackward, type Conv2dOptions } from '../../src/ops/conv2d.js';
import { WINOGRAD_F2, WINOGRAD_F4, float32, inputTransformF4, outputTransformF4, winogradWeights } from '../../src/ops/conv2d_winograd.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { U32, absConv, absTensor, firstViolation, fmaF32, loadTorchFixture, maxAbs, maxAbsDiff, signedZeros } from '../helpers.js';
import { type Backend, getFusedMultiplyAdd, setBackend } from '../../src/backend/backend.js';

// Error model. Every algorithm computes y = Σ x·w + b in some order. A sum of K products computed
// with n roundings (each |δ| ≤ u) has |Δ| ≤ γ_n·Σ|x·w| with γ_n = n·u/(1 − n·u) ≈ n·u. The direct
// reference accumulates in float64 and rounds once, so it is within u·|y| of the exact value.
//   im2col/GEMM:  n ≤ K + 2, K = C/g·kH·kW (a float32-accumulating GEMM's worst case; ours
//                 accumulates in float64 and rounds once per 256-deep block, far below this).
//   Winograd:     see winogradBound below: derived from the roundings the code makes.
function im2colBound(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOptions, ref: Tensor, u: number): (i: number) => number {
  const S = absConv(x, w, b, opts);
  const K = w.shape[1] * w.shape[2] * w.shape[3];
  return (i) => (K + 2) * u * S.data[i] + u * Math.abs(ref.data[i]);
}

/**
 * The Winograd bound for the algorithm as run (src/ops/conv2d_winograd.ts), per output pixel.
 * F(2×2) in float32 rounds in exactly these places; everything else is float64 on float32 data:
 *   Û = fl(G g Gᵀ) (filters transformed in float64, stored once), V̂ = fl(Bᵀ d B) (tile transformed
 *   in float64 scratch, stored once), M̂ = fl(Σ_c Û_c ⊙ V̂_c) (the GEMM accumulates in float64 and
 *   stores once per 256-deep block of C/g), ŷ = fl(Aᵀ M̂ A + b) (output transform and bias in float64).
 * So |M̂ − M| ≤ (3 + nb)·u·P with P = Σ_c |U_c|⊙|V_c| and nb = ⌈(C/g)/256⌉ − 1 extra block roundings,
 * and |ŷ − ref| ≤ 2u·|ref| (ŷ's and the reference's final roundings) + (3 + nb)·u·Q, Q = |Aᵀ| P |A|,
 * + 1e-13·(Q + S) for the float64 arithmetic (≤ 256 + 36 terms at 2⁻⁵³). U, V and Q are recomputed
 * here in float64 from the matrices.
 * F(4×4) on float32 data transforms in float32 arithmetic (the kernels' f32x4 lanes), rounding after
 * every operation: a row of Bᵀ takes at most 4 roundings along any path from an input (−4·(d1 + d2)
 * + d3 + d4), so V̂ = Bᵀ d B through two passes is within γ₈·W of V, W = |Bᵀ||d||B| ≥ |V|; a row of Aᵀ
 * takes at most 4 too (s + 8q + m5), so the output's two passes and the bias add are within
 * γ₉·(|Aᵀ||M̂||A| + |b|), with |M̂| ≤ (1 + 10⁻⁴)·P_W (P_W, Q_W: P and Q with W for |V|; the GEMM's and
 * the transform's relative errors, γ₂₅₉ and γ₈, are far below 10⁻⁴). The bound adds γ₈·Q_W and
 * γ₉·(1.0001·Q_W + |b|), and takes Q_W for Q in the terms above. Its emulation runs the reference's
 * float32 transforms (exact where float32 is, tested below on integers; the kernels bit for bit
 * against them in wasm.test.ts) around the GEMM's rounding contract.
 * On the 'wasm' backend the GEMM accumulates in float32 (M̂ = fl(fl(Σ…) + …) term by term, each
 * product rounded too): |M̂ − M| gains γ_{kc+1}·P, kc = min(C/g, 256), and the emulation rounds
 * every product and every partial sum.
 */
function winogradModel(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOptions, tile: 2 | 4, ref: Tensor, u: number, backend: Backend): { bound: (i: number) => number; emulated: Float64Array } {
  const M = tile === 4 ? WINOGRAD_F4 : WINOGRAD_F2;
  const { m, alpha: a } = M;
  const [N, C, H, W] = x.shape;
  const [F, Cg] = w.shape;
  const groups = C / Cg, Fg = F / groups;
  const [[pt], [pl]] = opts.padding as [[number, number], [number, number]];
  const [, , Ho, Wo] = ref.shape;
  const nb = Math.ceil(Cg / 256) - 1;
  const S = absConv(x, w, b, opts);
  // U[f][c] = G g Gᵀ (α×α), |U|
  const absU = new Float64Array(F * Cg * a * a), U32 = new Float64Array(F * Cg * a * a);
  const engineU = winogradWeights(w.data, F, Cg, groups, tile).data;
  for (let f = 0; f < F; f++) for (let c = 0; c < Cg; c++) for (let xi = 0; xi < a; xi++) for (let e = 0; e < a; e++) {
    let v = 0;
    for (let p = 0; p < 3; p++) for (let q = 0; q < 3; q++) v += M.G[xi][p] * w.data[((f * Cg + c) * 3 + p) * 3 + q] * M.G[e][q];
    absU[((f * Cg + c) * a + xi) * a + e] = Math.abs(v);
    // The engine's stored filter transform, correctly rounded from the exact value: within half an
    // ulp (a tie may go either way: G's 1/6 and 1/24 put some entries exactly on a float32 midpoint,
    // and which side float64 lands on depends on operation order).
    const eng = engineU[((Math.floor(f / Fg) * a * a + xi * a + e) * Fg + (f % Fg)) * Cg + c];
    if (!(Math.abs(eng - v) <= u * Math.abs(v) * (1 + 1e-9))) throw new Error(`Winograd filter transform (${f}, ${c}, ${xi}, ${e}): ${eng} is not ${v} rounded`);
    U32[((f * Cg + c) * a + xi) * a + e] = eng;
  }
  const bound = new Float64Array(ref.size), emulated = new Float64Array(ref.size);
  const fused = backend === 'wasm' && getFusedMultiplyAdd();
  const f32 = tile === 4; // F(4×4)'s transforms in float32 arithmetic
  const gamma = (n: number) => (n * u) / (1 - n * u);
  const absV = new Float64Array(Cg * a * a), V32 = new Float64Array(Cg * a * a), M32 = new Float64Array(a * a);
  const patch = new Float64Array(2 * a * a), Vt = new Float32Array(a * a), Mt = new Float32Array(a * a), Yt = new Float64Array(40);
  for (let n = 0; n < N; n++) for (let gi = 0; gi < groups; gi++) for (let ty = 0; ty * m < Ho; ty++) for (let tx = 0; tx * m < Wo; tx++) {
    // V[c] = Bᵀ d B for this tile's zero-padded α×α input patch
    for (let c = 0; c < Cg; c++) {
      for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) {
        const yy = ty * m - pt + i, xx = tx * m - pl + j;
        patch[i * a + j] = yy < 0 || yy >= H || xx < 0 || xx >= W ? 0 : x.data[((n * C + gi * Cg + c) * H + yy) * W + xx];
      }
      if (f32) inputTransformF4(patch, Vt, 0, 1, float32);
      for (let xi = 0; xi < a; xi++) for (let e = 0; e < a; e++) {
        // V exact (float64, ≤ 36 terms of float32 products by small integers), or W = |Bᵀ||d||B|
        let v = 0, wv = 0;
        for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) {
          v += M.BT[xi][i] * patch[i * a + j] * M.BT[e][j];
          wv += Math.abs(M.BT[xi][i] * patch[i * a + j] * M.BT[e][j]);
        }
        absV[(c * a + xi) * a + e] = f32 ? wv : Math.abs(v);
        V32[(c * a + xi) * a + e] = f32 ? Vt[xi * a + e] : Math.fround(v);
      }
    }
    for (let fl = 0; fl < Fg; fl++) {
      const f = gi * Fg + fl;
      // the rounding contract: M = fl(Σ_c fl(U)·fl(V)) per 256-deep block (on 'wasm', each term's
      // product and sum rounded apart, or once where the GEMM fuses them), y = fl(Aᵀ M A + b)
      for (let k = 0; k < a * a; k++) {
        let acc = 0;
        for (let c0 = 0; c0 < Cg; c0 += 256) {
          let blk = 0;
          for (let c = c0; c < Math.min(Cg, c0 + 256); c++) {
            if (backend === 'js') blk += U32[(f * Cg + c) * a * a + k] * V32[c * a * a + k];
            else if (fused) blk = fmaF32(U32[(f * Cg + c) * a * a + k], V32[c * a * a + k], blk);
            else blk = Math.fround(blk + Math.fround(U32[(f * Cg + c) * a * a + k] * V32[c * a * a + k]));
          }
          acc = Math.fround(acc + blk);
        }
        M32[k] = acc;
      }
      if (f32) {
        Mt.set(M32);
        outputTransformF4(Mt, 0, 1, Yt, float32);
      }
      for (let i = 0; i < m && ty * m + i < Ho; i++) for (let j = 0; j < m && tx * m + j < Wo; j++) {
        let Q = 0, t = f32 ? Yt[i * m + j] : 0;
        for (let xi = 0; xi < a; xi++) for (let e = 0; e < a; e++) {
          if (!f32) t += M.AT[i][xi] * M32[xi * a + e] * M.AT[j][e];
          let P = 0;
          for (let c = 0; c < Cg; c++) P += absU[((f * Cg + c) * a + xi) * a + e] * absV[(c * a + xi) * a + e];
          Q += Math.abs(M.AT[i][xi]) * P * Math.abs(M.AT[j][e]);
        }
        const o = ((n * F + f) * Ho + ty * m + i) * Wo + tx * m + j;
        const kc = Math.min(Cg, 256), inPanel = backend === 'wasm' ? ((kc + 1) * u / (1 - (kc + 1) * u)) * Q : 0;
        const transforms = f32 ? gamma(8) * (1 + u) * Q + gamma(9) * (1.0001 * Q + (b === null ? 0 : Math.abs(b.data[f]))) : 0;
        bound[o] = 2 * u * (1 + u) * Math.abs(ref.data[o]) + (3 + nb) * u * (1 + 4 * u) * Q + inPanel + transforms + 1e-13 * (Q + S.data[o]);
        emulated[o] = Math.fround(t + (b === null ? 0 : b.data[f]));
      }
    }
  }
  return { bound: (i) => bound[i], emulated };
}

const geometry = fc.record({
  N: fc.integer({ min: 1, max: 2 }),
  groups: fc.integer({ min: 1, max: 3 }),
  Cg: fc.integer({ min: 1, max: 4 }),
  Fg: fc.integer({ min: 1, max: 4 }),
  kh: fc.integer({ min: 1, max: 4 }),
  kw: fc.integer({ min: 1, max: 4 }),
  sh: fc.integer({ min: 1, max: 3 }),
  sw: fc.integer({ min: 1, max: 3 }),
  dh: fc.integer({ min: 1, max: 2 }),
  dw: fc.integer({ min: 1, max: 2 }),
  pad: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
  extraH: fc.integer({ min: 0, max: 6 }),
  extraW: fc.integer({ min: 0, max: 6 }),
  bias: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

type Geo = typeof geometry extends fc.Arbitrary<infer T> ? T : never;

function build(g: Geo, dtype: 'float32' | 'float64') {
  const rng = new Rng(g.seed);
  const [pt, pb, pl, pr] = g.pad;
  const H = Math.max(1, g.dh * (g.kh - 1) + 1 - pt - pb + g.extraH);
  const W = Math.max(1, g.dw * (g.kw - 1) + 1 - pl - pr + g.extraW);
  const C = g.Cg * g.groups, F = g.Fg * g.groups;
  const x = uniform([g.N, C, H, W], rng, -1, 1, dtype);
  const w = uniform([F, g.Cg, g.kh, g.kw], rng, -1, 1, dtype);
  const b = g.bias ? uniform([F], rng, -1, 1, dtype) : null;
  const opts: Conv2dOptions = { stride: [g.sh, g.sw], dilation: [g.dh, g.dw], groups: g.groups, padding: [[pt, pb], [pl, pr]] };
  return { x, w, b, opts };
}

describe('conv2d algorithms agree with the direct reference', () => {
  it.each(['js', 'wasm'] as const)('im2col on %s = direct within (K+2)·u·Σ|x·w| (float32), and ≤ 1e-12·max Σ|x·w| (float64)', (backend) => {
    setBackend(backend);
    fc.assert(fc.property(geometry, (g) => {
      for (const dtype of ['float32', 'float64'] as const) {
        const { x, w, b, opts } = build(g, dtype);
        const ref = conv2d(x, w, b, { ...opts, algorithm: 'direct' });
        const y = conv2d(x, w, b, { ...opts, algorithm: 'im2col' });
        expect(y.shape).toEqual(ref.shape);
        expect(y.data.constructor).toBe(x.data.constructor);
        if (dtype === 'float32') {
          expect(firstViolation(y, ref, im2colBound(x, w, b, opts, ref, U32))).toBeNull();
        } else {
          const S = maxAbs(absConv(x, w, b, opts));
          expect(maxAbsDiff(y, ref)).toBeLessThanOrEqual(1e-12 * S);
        }
      }
    }), { numRuns: 150 });
    setBackend('wasm');
  });

  // The property above stays within one 1024-column panel of the GEMM. Here the output positions
  // of a batch span two panels, the second ending in a ragged 8-column strip, and the chunk spans
  // images (the SIMD kernel gathers from a padded copy of them: a padding column once read 4× its
  // offset, outside memory). Bound as above.
  it.each(['js', 'wasm'] as const)('im2col on %s past the GEMM\'s panel width, across images, groups 2', (backend) => {
    setBackend(backend);
    for (const [N, H, stride] of [[37, 13, 2], [9, 14, 1]] as const) {
      const rng = new Rng(N);
      const x = uniform([N, 4, H, H], rng, -1, 1), w = uniform([6, 2, 3, 3], rng, -1, 1), b = uniform([6], rng, -1, 1);
      const opts: Conv2dOptions = { stride, padding: 1, groups: 2 };
      const ref = conv2d(x, w, b, { ...opts, algorithm: 'direct' });
      const y = conv2d(x, w, b, { ...opts, algorithm: 'im2col' });
      expect(N * ref.shape[2] * ref.shape[3] % 8, 'a ragged last strip').not.toBe(0);
      expect(firstViolation(y, ref, im2colBound(x, w, b, opts, ref, U32)), `N ${N}, stride ${stride}`).toBeNull();
    }
    setBackend('wasm');
  });

  // Maps 4 wide (the demo's 4×4 layers): a strip of 8 output positions is two rows of 4, each half
  // read as one vector (stride 1) or two (stride 2) from rows of the padded copy that are not
  // adjacent; and 6 wide, where a strip's second half crosses a row and goes element by element.
  it.each(['js', 'wasm'] as const)('im2col on %s on maps 4 and 6 wide, stride 1 and 2', (backend) => {
    setBackend(backend);
    for (const [H, stride] of [[4, 1], [7, 2], [6, 1], [11, 2]] as const) {
      const rng = new Rng(H * stride);
      const x = uniform([3, 5, H, H], rng, -1, 1), w = uniform([7, 5, 3, 3], rng, -1, 1), b = uniform([7], rng, -1, 1);
      const opts: Conv2dOptions = { stride, padding: 1 };
      const ref = conv2d(x, w, b, { ...opts, algorithm: 'direct' });
      const y = conv2d(x, w, b, { ...opts, algorithm: 'im2col' });
      expect([4, 6], 'the output\'s width').toContain(ref.shape[3]);
      expect(firstViolation(y, ref, im2colBound(x, w, b, opts, ref, U32)), `${H}×${H}, stride ${stride}`).toBeNull();
    }
    setBackend('wasm');
  });

  const winoGeometry = fc.record({
    N: fc.integer({ min: 1, max: 2 }),
    groups: fc.integer({ min: 1, max: 3 }),
    Cg: fc.integer({ min: 1, max: 6 }),
    Fg: fc.integer({ min: 1, max: 6 }),
    pad: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })), // winogradApplies: ≤ 2 per side
    H: fc.integer({ min: 1, max: 13 }),
    W: fc.integer({ min: 1, max: 13 }),
    tile: fc.constantFrom(2 as const, 4 as const),
    bias: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  }).filter((g) => g.H + g.pad[0] + g.pad[1] >= 3 && g.W + g.pad[2] + g.pad[3] >= 3);

  it.each(['js', 'wasm'] as const)('Winograd F(2×2) and F(4×4) on %s = direct within the bound of the roundings they make, and round where they say, padding 0–2 per side, groups, tiny sizes', (backend) => {
    setBackend(backend);
    fc.assert(fc.property(winoGeometry, (g) => {
      for (const dtype of ['float32', 'float64'] as const) {
        const rng = new Rng(g.seed);
        const C = g.Cg * g.groups, F = g.Fg * g.groups;
        const x = uniform([g.N, C, g.H, g.W], rng, -1, 1, dtype);
        const w = uniform([F, g.Cg, 3, 3], rng, -1, 1, dtype);
        const b = g.bias ? uniform([F], rng, -1, 1, dtype) : null;
        const [pt, pb, pl, pr] = g.pad;
        const opts: Conv2dOptions = { groups: g.groups, padding: [[pt, pb], [pl, pr]] };
        const ref = conv2d(x, w, b, { ...opts, algorithm: 'direct' });
        const y = conv2d(x, w, b, { ...opts, algorithm: 'winograd', winogradTile: g.tile });
        expect(y.shape).toEqual(ref.shape);
        if (dtype === 'float32') {
          const model = winogradModel(x, w, b, opts, g.tile, ref, U32, backend);
          expect(firstViolation(y, ref, model.bound)).toBeNull();
          let off = 0;
          for (let i = 0; i < y.size; i++) {
            const e = model.emulated[i];
            if (y.data[i] !== e) {
              off++;
              expect(Math.abs(y.data[i] - e), `output ${i}`).toBeLessThanOrEqual(2 * U32 * Math.abs(e)); // one ulp
            }
          }
          expect(off, `${off} of ${y.size} outputs differ from the rounding contract`).toBeLessThanOrEqual(Math.max(1, 0.01 * y.size));
        } else {
          const S = maxAbs(absConv(x, w, b, opts));
          expect(maxAbsDiff(y, ref)).toBeLessThanOrEqual(1e-12 * S);
        }
      }
    }), { numRuns: 150 });
    setBackend('wasm');
  });

  it('F(4×4) on wasm stores a batch whose images straddle a block of 256 tiles (28 whole images of 9 tiles, then one split across two blocks)', () => {
    const rng = new Rng(7);
    const x = uniform([30, 2, 10, 10], rng, -1, 1), w = uniform([3, 2, 3, 3], rng, -1, 1), b = uniform([3], rng, -1, 1);
    const opts: Conv2dOptions = { padding: [[1, 1], [1, 1]] };
    const ref = conv2d(x, w, b, { ...opts, algorithm: 'direct' });
    const y = conv2d(x, w, b, { ...opts, algorithm: 'winograd', winogradTile: 4 });
    // the same derived bound as above: an image stored in another's place or a row left out is far outside it
    expect(firstViolation(y, ref, winogradModel(x, w, b, opts, 4, ref, U32, 'wasm').bound)).toBeNull();
  });

  it('F(4×4)\'s float32 transforms are Bᵀ d B and Aᵀ m A exactly where float32 is exact (integer tiles)', () => {
    // |d| ≤ 1000: every intermediate of Bᵀ d B is an integer of magnitude ≤ 10²·1000 < 2²⁴ (a row of
    // Bᵀ sums to at most 10 in magnitude), so each float32 operation is exact and V must equal the
    // matrix product computed here in float64; the same for Aᵀ m A with |m| ≤ 1000 (rows of Aᵀ at
    // most 19: ≤ 19²·1000). A wrong coefficient or term shows; the roundings themselves are the
    // bound's business (above).
    const rng = new Rng(11);
    const { BT, AT } = WINOGRAD_F4;
    for (let trial = 0; trial < 20; trial++) {
      const d = new Float64Array(72), V = new Float32Array(36);
      for (let i = 0; i < 36; i++) d[i] = Math.round((rng.next() * 2 - 1) * 1000);
      const dIn = d.slice(0, 36);
      inputTransformF4(d, V, 0, 1, float32);
      for (let xi = 0; xi < 6; xi++) for (let e = 0; e < 6; e++) {
        let v = 0;
        for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) v += BT[xi][i] * dIn[i * 6 + j] * BT[e][j];
        expect(V[xi * 6 + e], `V(${xi}, ${e})`).toBe(v);
      }
      const M = Float32Array.from({ length: 36 }, () => Math.round((rng.next() * 2 - 1) * 1000)), Y = new Float64Array(40);
      outputTransformF4(M, 0, 1, Y, float32);
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
        let y = 0;
        for (let xi = 0; xi < 6; xi++) for (let e = 0; e < 6; e++) y += AT[i][xi] * M[xi * 6 + e] * AT[j][e];
        expect(Y[i * 4 + j], `Y(${i}, ${j})`).toBe(y);
      }
    }
  });

  it('the Winograd matrices compute a 3-tap correlation exactly (1-D identity on integers)', () => {
    for (const M of [WINOGRAD_F2, WINOGRAD_F4]) {
      const d = Array.from({ length: M.alpha }, (_, i) => 3 * i - 5);
      const gk = [2, -7, 3];
      for (let i = 0; i < M.m; i++) {
        let y = 0;
        for (let x = 0; x < M.alpha; x++) {
          let bd = 0, gg = 0;
          for (let a = 0; a < M.alpha; a++) bd += M.BT[x][a] * d[a];
          for (let p = 0; p < 3; p++) gg += M.G[x][p] * gk[p];
          y += M.AT[i][x] * bd * gg;
        }
        const exact = d[i] * gk[0] + d[i + 1] * gk[1] + d[i + 2] * gk[2];
        expect(Math.abs(y - exact)).toBeLessThan(1e-12);
      }
    }
  });
});

describe('conv2d matches PyTorch (golden fixtures)', () => {
  const cases = ['groups', 'stride2', 'dilation', 'asym_padding', 'same_even', 'depthwise_1x1_s2', 'tiny_1x1_input'];
  for (const name of cases) {
    it(name, () => {
      const fx = loadTorchFixture(`conv2d_${name}`);
      const opts = fx.meta.options as Conv2dOptions;
      const x = fx.t('x'), w = fx.t('w'), b = fx.t('b');
      const ref = fx.t('y');
      const algos: Conv2dOptions['algorithm'][] = ['direct', 'im2col', 'auto'];
      const isWino = w.shape[2] === 3 && w.shape[3] === 3 && (opts.stride ?? 1) === 1 && (opts.dilation ?? 1) === 1;
      if (isWino) algos.push('winograd');
      for (const algorithm of algos) {
        const y = conv2d(x, w, b, { ...opts, algorithm });
        expect(y.shape).toEqual(ref.shape);
        // PyTorch's own float32 conv also rounds: both are within (K+2)·u·S of the exact value.
        const S = absConv(x, w, b, opts);
        const K = w.shape[1] * w.shape[2] * w.shape[3];
        const wino = algorithm === 'winograd' || (algorithm === 'auto' && isWino) ? 2304 : 1; // s² for F(4×4), see the error model above ('auto' may pick it)
        expect(firstViolation(y, ref, (i) => 2 * (K + 2) * U32 * S.data[i] * wino)).toBeNull();
        // float64 path against PyTorch float64 on the same inputs
        const y64 = conv2d(x.to('float64'), w.to('float64'), b.to('float64'), { ...opts, algorithm });
        expect(y64.data).toBeInstanceOf(Float64Array);
        expect(maxAbsDiff(y64, fx.t('y@f64'))).toBeLessThanOrEqual(1e-12 * maxAbs(S));
      }
      // Gradients against PyTorch autograd. Each gradient entry is a sum of at most P = N·Ho·Wo·F/g
      // products of O(1) values: float32 tolerance 4·P·u·max|dy|·max(|x|,|w|) per entry's terms.
      for (const algorithm of ['direct', 'im2col'] as const) {
        for (const [dt, s] of [['float32', ''], ['float64', '@f64']] as const) {
          const dy = fx.t('dy').to(dt);
          const g = conv2dBackward(dy, x.to(dt), w.to(dt), { ...opts, algorithm });
          const P = dy.size;
          const tol = dt === 'float32' ? 4 * P * U32 : 1e-12 * P;
          expect(maxAbsDiff(g.dx!, fx.t('dx' + s))).toBeLessThanOrEqual(tol);
          expect(maxAbsDiff(g.dw!, fx.t('dw' + s))).toBeLessThanOrEqual(tol);
          expect(maxAbsDiff(g.db!, fx.t('db' + s))).toBeLessThanOrEqual(tol);
        }
      }
    });
  }
});

describe('conv2d rejects bad arguments with clear errors', () => {
  const rng = new Rng(1);
  const x = uniform([1, 4, 5, 5], rng);
  it.each(['float32', 'float64'] as const)('the fused ReLU epilogue gives exactly relu(conv2d(…)): every algorithm and path, with and without bias, NaN kept (%s)', (dtype) => {
    const cases: [string, number[], number[], Conv2dOptions][] = [
      ['3×3 small maps batched (im2col chunks, Winograd)', [3, 4, 6, 5], [6, 4, 3, 3], { padding: 1 }],
      ['1×1 read in place (im2col)', [1, 8, 24, 24], [5, 8, 1, 1], {}],
      ['3×3 stride 2, groups 2', [2, 4, 9, 9], [6, 2, 3, 3], { padding: 1, stride: 2, groups: 2 }],
    ];
    for (const [what, xs, ws, o] of cases) {
      const rng = new Rng(xs[1]);
      const x = uniform(xs, rng, -1, 1, dtype), w = uniform(ws, rng, -1, 1, dtype), b = uniform([ws[0]], rng, -1, 1, dtype);
      x.data[5] = NaN;
      const stride1 = ws[2] === 3 && o.stride === undefined;
      const algos: Conv2dOptions[] = [{ algorithm: 'direct' }, { algorithm: 'im2col' }, ...(stride1 ? [{ algorithm: 'winograd' as const, winogradTile: 2 as const }, { algorithm: 'winograd' as const, winogradTile: 4 as const }] : [])];
      for (const a of algos) for (const bias of [b, null]) {
        const sep = conv2d(x, w, bias, { ...o, ...a }).data.map((v) => (v < 0 ? 0 : v));
        const fused = conv2d(x, w, bias, { ...o, ...a, relu: true }).data;
        expect(signedZeros(fused), `${what} ${a.algorithm} ${a.winogradTile ?? ''} bias ${bias !== null}`).toEqual(signedZeros(sep));
        expect(fused.some(Number.isNaN)).toBe(true);
      }
    }
  });

  it('Winograd asked of one op where it does not apply (stride 2, dilation 2, padding 3) throws instead of falling back', () => {
    const w = uniform([2, 4, 3, 3], rng);
    expect(() => conv2d(x, w, null, { stride: 2, algorithm: 'winograd' })).toThrow(/Winograd needs a 3×3 kernel, stride 1, dilation 1 and padding ≤ 2 per side, got kernel 3×3, stride 2×2/);
    expect(() => conv2d(x, w, null, { dilation: 2, padding: 2, algorithm: 'winograd' })).toThrow(/dilation 2×2/);
    expect(() => conv2d(x, w, null, { padding: 3, algorithm: 'winograd' })).toThrow(/padding \[3, 3, 3, 3\]/);
  });
  it('kernel larger than the padded input', () => {
    expect(() => conv2d(x, uniform([2, 4, 7, 7], rng))).toThrow(/kernel 7×7 .* larger than the padded input 5×5/);
  });
  it('channels not divisible by groups', () => {
    expect(() => conv2d(x, uniform([3, 4, 3, 3], rng), null, { groups: 3 })).toThrow(/not divisible by groups 3/);
  });
  it('mismatched weight shape', () => {
    expect(() => conv2d(x, uniform([2, 3, 3, 3], rng))).toThrow(/weight shape \[2, 3, 3, 3\] expects 3 input channels/);
  });
  it('unbatched (C, H, W) input gives a (F, Ho, Wo) output, as PyTorch', () => {
    const w = uniform([2, 4, 3, 3], rng);
    const y3 = conv2d(x.reshape([4, 5, 5]), w, null, { padding: 1, algorithm: 'direct' });
    expect(y3.shape).toEqual([2, 5, 5]);
    expect(Array.from(y3.data)).toEqual(Array.from(conv2d(x, w, null, { padding: 1, algorithm: 'direct' }).data));
    expect(() => conv2d(x.reshape([100]), w)).toThrow('input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape [100]');
  });
  it('out: writes into a given tensor, checked for shape, dtype and aliasing', () => {
    const w = uniform([2, 4, 3, 3], rng);
    const out = new Tensor(new Float32Array(2 * 5 * 5), [1, 2, 5, 5]);
    const y = conv2d(x, w, null, { padding: 1, algorithm: 'im2col', out });
    expect(y.data).toBe(out.data);
    expect(Array.from(out.data)).toEqual(Array.from(conv2d(x, w, null, { padding: 1, algorithm: 'im2col' }).data));
    expect(() => conv2d(x, w, null, { padding: 0, out })).toThrow('out has shape [1, 2, 5, 5] float32, expected [1, 2, 3, 3] float32');
    const alias = new Tensor(x.data.subarray(0, 50), [1, 2, 5, 5]);
    expect(() => conv2d(x, w, null, { padding: 1, out: alias })).toThrow('out must not share memory with the input');
  });
  it('mixed dtypes, bad bias, bad stride, same with stride', () => {
    expect(() => conv2d(x, uniform([2, 4, 3, 3], rng, 0, 1, 'float64'))).toThrow(/dtype float64 does not match/);
    expect(() => conv2d(x, uniform([2, 4, 3, 3], rng), uniform([3], rng))).toThrow(/bias shape \[3\]/);
    expect(() => conv2d(x, uniform([2, 4, 3, 3], rng), null, { stride: 0 })).toThrow(/stride must be integers ≥ 1/);
    expect(() => conv2d(x, uniform([2, 4, 3, 3], rng), null, { stride: 2, padding: 'same' })).toThrow(/'same' is not supported for strided/);
    expect(() => conv2d(x, uniform([2, 4, 3, 3], rng), null, { algorithm: 'fft' as never })).toThrow(/unknown algorithm 'fft'/);
  });
});

describe('conv2d backward', () => {
  it('regression: a tap row entirely outside the input, with images batched into one GEMM', () => {
    // fast-check found this: kernel 2×1, dilation 2, padding top 2, 1×1 input, batch 2. im2col's
    // zero fill for the dead tap ran past its row into the next image's columns.
    const rng = new Rng(0);
    const x = uniform([2, 1, 1, 1], rng, -1, 1, 'float64');
    const w = uniform([1, 1, 2, 1], rng, -1, 1, 'float64');
    const opts: Conv2dOptions = { dilation: [2, 1], padding: [[2, 0], [0, 0]] };
    const dy = uniform(conv2d(x, w, null, opts).shape, rng, -1, 1, 'float64');
    const ref = conv2dBackward(dy, x, w, { ...opts, algorithm: 'direct' });
    const got = conv2dBackward(dy, x, w, { ...opts, algorithm: 'im2col' });
    expect(maxAbsDiff(got.dx!, ref.dx!)).toBeLessThanOrEqual(1e-15);
    expect(maxAbsDiff(got.dw!, ref.dw!)).toBeLessThanOrEqual(1e-15);
    expect(maxAbsDiff(conv2d(x, w, null, { ...opts, algorithm: 'im2col' }), conv2d(x, w, null, { ...opts, algorithm: 'direct' }))).toBeLessThanOrEqual(1e-15);
  });

  // dxAdd (a block's later branch adding its input gradient onto the first's) must leave exactly
  // what the separate dx and one float32 add per element give: a[i] + dx[i] rounded once, the
  // addInto it replaces. On every path: im2col's col2im inside the kernel (one chunk), over two
  // chunks, on the reference GEMM, the flipped stride-1 conv, Winograd, direct, a 1×1 read in place;
  // dw and db as without it.
  const ADD_CASES: { name: string; x: number[]; w: number[]; opts: Conv2dOptions; backend?: Backend }[] = [
    { name: '3×3 stride 2, one chunk, col2im in the kernel', x: [4, 8, 9, 10], w: [6, 8, 3, 3], opts: { padding: 1, stride: 2, algorithm: 'im2col' } },
    { name: '1×1 stride 2, groups 2', x: [4, 8, 9, 9], w: [6, 4, 1, 1], opts: { stride: 2, groups: 2, algorithm: 'im2col' } },
    { name: '3×3 stride 2, two chunks', x: [1, 256, 64, 64], w: [4, 256, 3, 3], opts: { padding: 1, stride: 2, algorithm: 'im2col' } },
    { name: '3×3 stride 2 on the reference GEMM', x: [4, 8, 9, 10], w: [6, 8, 3, 3], opts: { padding: 1, stride: 2, algorithm: 'im2col' }, backend: 'js' },
    { name: '3×3 stride 1, the flipped conv', x: [2, 8, 9, 10], w: [6, 8, 3, 3], opts: { padding: 1, algorithm: 'im2col' } },
    { name: 'Winograd', x: [2, 8, 9, 10], w: [6, 8, 3, 3], opts: { padding: 1, algorithm: 'winograd' } },
    { name: 'direct', x: [2, 8, 9, 10], w: [6, 8, 3, 3], opts: { padding: 1, stride: 2, algorithm: 'direct' } },
    { name: '1×1 read in place', x: [2, 8, 16, 16], w: [6, 8, 1, 1], opts: { algorithm: 'im2col' } },
  ];
  it.each(ADD_CASES)('dxAdd adds dx onto what the array holds, one rounding an element: $name', ({ x: xs, w: ws, opts, backend }) => {
    setBackend(backend ?? 'wasm');
    const rng = new Rng(21);
    const x = uniform(xs, rng, -1, 1), w = uniform(ws, rng, -1, 1);
    const dy = uniform(conv2d(x, w, null, opts).shape, rng, -1, 1);
    const plain = conv2dBackward(dy, x, w, opts);
    const held = uniform(xs, rng, -1, 1).data;
    const added = held.slice();
    const got = conv2dBackward(dy, x, w, opts, { dxAdd: added });
    expect(got.dx!.data).toBe(added);
    // the first element whose bits differ (a loop: toEqual's diff of a million elements takes minutes)
    const want = new Int32Array(held.map((v, i) => Math.fround(v + plain.dx!.data[i])).buffer), bits = new Int32Array(added.buffer);
    let first = -1;
    for (let i = 0; i < bits.length && first < 0; i++) if (bits[i] !== want[i]) first = i;
    expect(first).toBe(-1);
    expect(got.dw!.data).toEqual(plain.dw!.data);
    expect(got.db!.data).toEqual(plain.db!.data);
    expect(() => conv2dBackward(dy, x, w, opts, { dxAdd: added, dxInto: added.slice() })).toThrow(/dxInto and dxAdd are two places for one dx/);
    setBackend('wasm');
  });

  // K = 256·9 = 2304 rows of col: a chunk holds 2²¹/2304 = 910 positions. 2 images of 24×24 (576
  // positions each: one chunk per image, one per half of the batch); 1 image of 40×40 (1600
  // positions: two chunks in one half); 2 images of 32×32 (1024 each: each half two chunks). Each
  // chunk must add to the ones before it in its half, and the second half to the first. float64:
  // summation order only, ≤ 1e-12·Σ|dy·x|.
  it.each([[2, 24], [1, 40], [2, 32]])('dW sums over every chunk of output positions: %i image(s) of %i² too large for one im2col chunk (float64)', (N, S) => {
    const rng = new Rng(9);
    const x = uniform([N, 256, S, S], rng, -1, 1, 'float64');
    const w = uniform([4, 256, 3, 3], rng, -1, 1, 'float64');
    const opts: Conv2dOptions = { padding: 1 };
    const dy = uniform([N, 4, S, S], rng, -1, 1, 'float64');
    const ref = conv2dBackward(dy, x, w, { ...opts, algorithm: 'direct' }, { dx: false });
    const got = conv2dBackward(dy, x, w, { ...opts, algorithm: 'im2col' }, { dx: false });
    expect(maxAbsDiff(got.dw!, ref.dw!)).toBeLessThanOrEqual(1e-12 * N * S * S);
    expect(maxAbs(ref.dw!)).toBeGreaterThan(1); // a real sum of N·S² terms, not a vacuous zero
  });

  // dx of a strided conv goes by col2im (inside the SIMD kernel on 'wasm'), chunk by chunk: K = 256·9
  // = 2304 rows of col, so a chunk holds 910 positions, and one 64×64 image at stride 2 (1024
  // positions) takes two, the boundary inside output row 28: the dx rows both chunks reach must get
  // the sum of both. float32: each dx element sums at most F·9 = 36 products, any order, so
  // |Δ| ≤ γ₃₈·Σ|w·dy| (the direct backward of |w|, |dy|).
  it.each(['js', 'wasm'] as const)('dx on %s of a strided conv over two im2col chunks adds both (float32)', (backend) => {
    setBackend(backend);
    const rng = new Rng(13);
    const x = uniform([1, 256, 64, 64], rng, -1, 1), w = uniform([4, 256, 3, 3], rng, -1, 1);
    const opts: Conv2dOptions = { padding: 1, stride: 2 };
    const dy = uniform(conv2d(x, w, null, opts).shape, rng, -1, 1);
    const got = conv2dBackward(dy, x, w, { ...opts, algorithm: 'im2col' }, { dw: false, db: false });
    const o64 = { ...opts, algorithm: 'direct' as const };
    const ref = conv2dBackward(dy.to('float64'), x.to('float64'), w.to('float64'), o64, { dw: false, db: false });
    const S = conv2dBackward(absTensor(dy), absTensor(x), absTensor(w), o64, { dw: false, db: false }).dx!;
    expect(firstViolation(got.dx!, ref.dx!, (i) => 38 * U32 * S.data[i] + 1e-30)).toBeNull();
    setBackend('wasm');
  });

  // dW = dy·colᵀ gathers colᵀ straight into the GEMM's panels, taps as columns: with 130·9 = 1170
  // taps they span two 1024-column panels (the second starts at tap 1024). float32: each dW entry is
  // a sum of L = 2·7·6 products, any order, so |Δ| ≤ γ_{L+2}·Σ|dy·x| (the direct backward of |dy|, |x|).
  it.each(['js', 'wasm'] as const)('dW on %s with more taps than one GEMM panel holds, groups 2, stride 2 (float32)', (backend) => {
    setBackend(backend);
    const rng = new Rng(12);
    const x = uniform([2, 260, 13, 11], rng, -1, 1), w = uniform([4, 130, 3, 3], rng, -1, 1);
    const opts: Conv2dOptions = { padding: 1, stride: 2, groups: 2 };
    const dy = uniform(conv2d(x, w, null, opts).shape, rng, -1, 1);
    const got = conv2dBackward(dy, x, w, { ...opts, algorithm: 'im2col' }, { dx: false });
    const o64 = { ...opts, algorithm: 'direct' as const };
    const ref = conv2dBackward(dy.to('float64'), x.to('float64'), w.to('float64'), o64, { dx: false });
    const S = conv2dBackward(absTensor(dy), absTensor(x), absTensor(w), o64, { dx: false }).dw!;
    const L = dy.shape[0] * dy.shape[2] * dy.shape[3];
    expect(firstViolation(got.dw!, ref.dw!, (i) => (L + 2) * U32 * S.data[i] + 1e-30)).toBeNull();
    setBackend('wasm');
  });

  it('Winograd dx (a 3×3 conv of dy with rotated, transposed filters) = direct dx, any padding ≤ 2, groups (float64)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }),
      fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
      fc.integer({ min: 1, max: 11 }), fc.integer({ min: 1, max: 11 }), fc.constantFrom(2 as const, 4 as const), fc.integer(),
      (N, groups, Cg, Fg, [pt, pb, pl, pr], H, W, tile, seed) => {
        fc.pre(H + pt + pb >= 3 && W + pl + pr >= 3);
        const rng = new Rng(seed);
        const x = uniform([N, Cg * groups, H, W], rng, -1, 1, 'float64');
        const w = uniform([Fg * groups, Cg, 3, 3], rng, -1, 1, 'float64');
        const opts: Conv2dOptions = { groups, padding: [[pt, pb], [pl, pr]] };
        const dy = uniform(conv2d(x, w, null, opts).shape, rng, -1, 1, 'float64');
        const ref = conv2dBackward(dy, x, w, { ...opts, algorithm: 'direct' });
        const got = conv2dBackward(dy, x, w, { ...opts, algorithm: 'winograd', winogradTile: tile });
        const scale = Fg * 9 * 48 * 48; // Σ over F/g·9 terms, amplified by at most s² (s = 48 for F(4×4))
        expect(maxAbsDiff(got.dx!, ref.dx!)).toBeLessThanOrEqual(1e-14 * scale);
        expect(maxAbsDiff(got.dw!, ref.dw!)).toBeLessThanOrEqual(1e-12 * dy.size);
      }), { numRuns: 100 });
    const rng = new Rng(1);
    expect(() => conv2dBackward(uniform([1, 1, 3, 3], rng), uniform([1, 1, 5, 5], rng), uniform([1, 1, 3, 3], rng), { stride: 2, padding: 1, algorithm: 'winograd' }))
      .toThrow('Winograd dx needs a 3×3 kernel, stride 1');
  });

  it('im2col backward = direct backward (property, float64 ≤ 1e-12 relative)', () => {
    fc.assert(fc.property(geometry, (g) => {
      const { x, w, opts } = build(g, 'float64');
      const y = conv2d(x, w, null, opts);
      const dy = uniform(y.shape, new Rng(g.seed + 1), -1, 1, 'float64');
      const ref = conv2dBackward(dy, x, w, { ...opts, algorithm: 'direct' });
      const got = conv2dBackward(dy, x, w, { ...opts, algorithm: 'im2col' });
      const scale = maxAbs(dy) * Math.max(maxAbs(x), maxAbs(w)) * (y.size + 1);
      expect(maxAbsDiff(got.dx!, ref.dx!)).toBeLessThanOrEqual(1e-12 * scale);
      expect(maxAbsDiff(got.dw!, ref.dw!)).toBeLessThanOrEqual(1e-12 * scale);
      expect(maxAbsDiff(got.db!, ref.db!)).toBeLessThanOrEqual(1e-12 * scale);
    }), { numRuns: 100 });
  });
});
