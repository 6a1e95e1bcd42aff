// The TypeScript reference GEMM: C (M×N) (+)= op(A) (M×K) · op(B) (K×N), row-major, op = transpose
// or not. Goto-style: B is packed into KC×NR strips and A into MR×KC strips (both as float64, so the
// micro-kernel never converts), then a 4×4 register tile accumulates a rank-KC update.
// Accumulation is in float64 (JS numbers); C is rounded once per KC block when it is float32.
// Ops reach it through the kernel interface (./gemm.ts), which also runs the SIMD kernel.

import type { FloatArray } from '../tensor/tensor.js';
import { packA, packB } from './gemm_pack.js';
import type { Int16Gather, MatRef, PanelSource, RowEpilogue } from './gemm_contract.js';
import { workspace64 } from '../tensor/workspace.js';

const MR = 4;
const NR = 4;
const KC = 256;
const MC = 64;
const NC = 1024;

/** The reference kernel: the blocked loops around kernel4x4 (the epilogue is the caller's: biasRelu). */
export function gemmJs(M: number, N: number, K: number, A: MatRef, B: MatRef | PanelSource, C: FloatArray, cOff: number, ldc: number, accumulate: boolean): void {
  const Bp = workspace64('gemm.Bp', KC * (NC + NR));
  const Ap = workspace64('gemm.Ap', KC * (MC + MR));
  for (let jc = 0; jc < N; jc += NC) {
    const nc = Math.min(NC, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = Math.min(KC, K - pc);
      packB(B, pc, jc, kc, nc, Bp, 0, NR);
      const load = accumulate || pc > 0;
      for (let ic = 0; ic < M; ic += MC) {
        const mc = Math.min(MC, M - ic);
        packA(A, ic, pc, mc, kc, Ap, 0);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr);
          const pb = jr * kc;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = Math.min(MR, mc - ir);
            kernel4x4(kc, Ap, ir * kc, Bp, pb, C, cOff + (ic + ir) * ldc + jc + jr, ldc, mr, nr, load);
          }
        }
      }
    }
  }
}

// C[off + f·ld + (0..len)] += bias[biasOff + f] for f < rows, then (relu) 0 where < 0. The clamp
// reads the stored value, so the bits are those of a separate ReLU pass (NaN stays NaN, −0 stays −0),
// and those of the SIMD kernel's f32x4.pmax(v, 0).
export function biasRelu(y: FloatArray, off: number, ld: number, len: number, rows: number, epi: RowEpilogue): void {
  const { bias: b, biasOff, relu } = epi;
  if (b === null && !relu) return;
  for (let f = 0; f < rows; f++) {
    const s = off + f * ld, end = s + len;
    if (b === null) {
      for (let p = s; p < end; p++) if (y[p] < 0) y[p] = 0; // relu only (no add: −0 stays −0)
    } else if (!relu) {
      const bf = b[biasOff + f];
      for (let p = s; p < end; p++) y[p] += bf;
    } else {
      const bf = b[biasOff + f];
      for (let p = s; p < end; p++) {
        y[p] += bf;
        if (y[p] < 0) y[p] = 0;
      }
    }
  }
}

// C tile (mr×nr ≤ 4×4) (+)= Ap strip (4×kc) · Bp strip (kc×4): 16 accumulators in registers.
function kernel4x4(
  kc: number, Ap: Float64Array, pa: number, Bp: Float64Array, pb: number,
  C: FloatArray, c0: number, ldc: number, mr: number, nr: number, load: boolean,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let k = 0; k < kc; k++, pa += 4, pb += 4) {
    const a0 = Ap[pa], a1 = Ap[pa + 1], a2 = Ap[pa + 2], a3 = Ap[pa + 3];
    const b0 = Bp[pb], b1 = Bp[pb + 1], b2 = Bp[pb + 2], b3 = Bp[pb + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  if (mr === 4 && nr === 4) {
    let c = c0;
    if (load) {
      C[c] += c00; C[c + 1] += c01; C[c + 2] += c02; C[c + 3] += c03; c += ldc;
      C[c] += c10; C[c + 1] += c11; C[c + 2] += c12; C[c + 3] += c13; c += ldc;
      C[c] += c20; C[c + 1] += c21; C[c + 2] += c22; C[c + 3] += c23; c += ldc;
      C[c] += c30; C[c + 1] += c31; C[c + 2] += c32; C[c + 3] += c33;
    } else {
      C[c] = c00; C[c + 1] = c01; C[c + 2] = c02; C[c + 3] = c03; c += ldc;
      C[c] = c10; C[c + 1] = c11; C[c + 2] = c12; C[c + 3] = c13; c += ldc;
      C[c] = c20; C[c + 1] = c21; C[c + 2] = c22; C[c + 3] = c23; c += ldc;
      C[c] = c30; C[c + 1] = c31; C[c + 2] = c32; C[c + 3] = c33;
    }
    return;
  }
  storeEdge(C, c0, ldc, mr, nr, load, 0, c00, c01, c02, c03);
  storeEdge(C, c0, ldc, mr, nr, load, 1, c10, c11, c12, c13);
  storeEdge(C, c0, ldc, mr, nr, load, 2, c20, c21, c22, c23);
  storeEdge(C, c0, ldc, mr, nr, load, 3, c30, c31, c32, c33);
}

function storeEdge(
  C: FloatArray, c0: number, ldc: number, mr: number, nr: number, load: boolean,
  row: number, v0: number, v1: number, v2: number, v3: number,
): void {
  if (row >= mr) return;
  const c = c0 + row * ldc;
  if (load) {
    C[c] += v0;
    if (nr > 1) C[c + 1] += v1;
    if (nr > 2) C[c + 2] += v2;
    if (nr > 3) C[c + 3] += v3;
  } else {
    C[c] = v0;
    if (nr > 1) C[c + 1] = v1;
    if (nr > 2) C[c + 2] = v2;
    if (nr > 3) C[c + 3] = v3;
  }
}

/** The integer GEMM's reference (gemmInt16 in gemm.ts): C = A·B with B(k, j) = src[taps[k] + cols[j]]
 * (a stored B is the gather with taps bOff + k·ldb and columns j), each sum in float64, exact for
 * 16-bit operands while K·2¹⁵·2¹⁵ < 2⁵³. */
export function gemmInt16Js(M: number, N: number, K: number, A: Int16Array, aOff: number, B: Int16Gather, C: Float64Array, cOff: number, ldc: number): void {
  const { src, taps, cols } = B;
  for (let i = 0; i < M; i++) {
    const ci = cOff + i * ldc;
    C.fill(0, ci, ci + N);
    for (let k = 0; k < K; k++) {
      const a = A[aOff + i * K + k], t = taps[k];
      if (a === 0) continue;
      for (let j = 0; j < N; j++) C[ci + j] += a * src[t + cols[j]];
    }
  }
}
