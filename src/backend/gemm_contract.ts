// The GEMM contract both kernels implement (the TypeScript reference in src/ops/gemm.ts, the
// WebAssembly SIMD one in wasm/gemm_simd.ts): how an operand is referenced, how a B operand that is
// never stored whole packs itself, and the output pass a conv asks for. It lives in the lower layer
// so that the kernels need nothing from src/ops.

import type { FloatArray } from '../tensor/tensor.js';
import type { GatherSource } from './wasm/gather.js';

export interface MatRef {
  data: FloatArray;
  offset: number;
  /** Row stride of the stored (untransposed) matrix. */
  ld: number;
  trans: boolean;
}

/** A B operand never stored whole: it packs its own panels, as packB would pack the matrix (im2col's). */
export interface PanelSource {
  packB(pc: number, jc: number, kc: number, nc: number, out: FloatArray, w: number, NR: number): void;
  /** how the WebAssembly kernels gather it themselves instead (then packB is not called there) */
  gather?: GatherSource;
}

/** What a conv's output pass does to the product: C[i, j] = ReLU?(C[i, j] + bias[biasOff + i]). */
export interface RowEpilogue {
  bias: FloatArray | null;
  biasOff: number;
  relu: boolean;
}
