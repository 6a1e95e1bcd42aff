// Packing A into 4-row strips and B into NR-column strips, the layouts both GEMM kernels read
// (the TypeScript reference in gemm_ref.ts, and the SIMD kernel in wasm/gemm_simd.ts).

import type { FloatArray } from '../tensor/tensor.js';
import type { MatRef, PanelSource } from './gemm_contract.js';

const MR = 4;

// Ap[w + (ir/4)·kc·4 + k·4 + r] = A(ic + ir + r, pc + k), zero past the edge (and in the padding
// rows of the last strip). Float64 for the TypeScript kernel, float32 (WebAssembly memory) for SIMD.
export function packA(A: MatRef, ic: number, pc: number, mc: number, kc: number, Ap: FloatArray, w: number): void {
  const a = A.data;
  const ld = A.ld;
  const off = A.offset;
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = Math.min(MR, mc - ir);
    const p = w + ir * kc;
    if (!A.trans) {
      for (let r = 0; r < MR; r++) {
        if (r < mr) {
          let src = off + (ic + ir + r) * ld + pc;
          for (let k = 0, q = p + r; k < kc; k++, q += MR) Ap[q] = a[src++];
        } else {
          for (let k = 0, q = p + r; k < kc; k++, q += MR) Ap[q] = 0;
        }
      }
    } else {
      // A stored as K×M: A(i, k) = a[off + k·ld + i]
      let src = off + pc * ld + ic + ir;
      let q = p;
      for (let k = 0; k < kc; k++, src += ld, q += MR) {
        for (let r = 0; r < MR; r++) Ap[q + r] = r < mr ? a[src + r] : 0;
      }
    }
  }
}


// Bp[w + (jr/nr)·kc·nr + k·nr + r] = B(pc + k, jc + jr + r): B in strips nr columns wide (4 for the
// TypeScript kernel, 8 for SIMD), zero past the edge.
export function packB(B: MatRef | PanelSource, pc: number, jc: number, kc: number, nc: number, Bp: FloatArray, w: number, NR: number): void {
  if ('packB' in B) {
    B.packB(pc, jc, kc, nc, Bp, w, NR);
    return;
  }
  const b = B.data;
  const ld = B.ld;
  const off = B.offset;
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = Math.min(NR, nc - jr);
    const p = w + jr * kc;
    if (!B.trans) {
      let src = off + pc * ld + jc + jr;
      if (nr === NR) {
        for (let k = 0, q = p; k < kc; k++, src += ld, q += NR) for (let r = 0; r < NR; r++) Bp[q + r] = b[src + r];
      } else {
        for (let k = 0, q = p; k < kc; k++, src += ld, q += NR) for (let r = 0; r < NR; r++) Bp[q + r] = r < nr ? b[src + r] : 0;
      }
    } else {
      // B stored as N×K: B(k, j) = b[off + j·ld + k]
      for (let r = 0; r < NR; r++) {
        if (r < nr) {
          let src = off + (jc + jr + r) * ld + pc;
          for (let k = 0, q = p + r; k < kc; k++, q += NR) Bp[q] = b[src++];
        } else {
          for (let k = 0, q = p + r; k < kc; k++, q += NR) Bp[q] = 0;
        }
      }
    }
  }
}
