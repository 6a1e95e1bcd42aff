// BatchNorm's passes on the selected backend: the WebAssembly SIMD kernels for float32 on 'wasm'
// (wasm/batchnorm_simd.ts: the statistics the TypeScript passes' of src/ops/batchnorm.ts bit for bit,
// the element-wise passes in float32, as PyTorch computes them); null
// where the caller runs those TypeScript passes itself (float64, 'js').
import type { FloatArray } from '../tensor/tensor.js';
import { getBackend } from './backend.js';
import { BatchNormSimd, BatchNormSumGradSimd, BatchNormSumSimd } from './wasm/batchnorm_drivers.js';

export type BatchNormPasses = BatchNormSimd;
export type BatchNormSumPasses = BatchNormSumSimd;
export type BatchNormSumGradPasses = BatchNormSumGradSimd;

const simd = (arrays: (FloatArray | null)[]): boolean => getBackend() === 'wasm' && arrays.every((a) => a === null || a instanceof Float32Array);

/** One BN call's passes over (N, C, P) arrays, copied into kernel memory (dy before x in backward). */
export function batchNormPasses(arrays: FloatArray[], N: number, C: number, P: number): BatchNormPasses | null {
  return simd(arrays) ? new BatchNormSimd(N, C, P, arrays as Float32Array[]) : null;
}

/** A block's sum of BN outputs kept in kernel memory (batchNormSum), for arrays like `like`. */
export function batchNormSumPasses(like: FloatArray, N: number, C: number, P: number): BatchNormSumPasses | null {
  return simd([like]) ? new BatchNormSumSimd(N, C, P) : null;
}

/** The gradient into such a sum, dy or ReLU's gradient of it (y: the ReLU output), kept in kernel memory. */
export function batchNormSumGradPasses(dy: FloatArray, y: FloatArray | null, N: number, C: number, P: number): BatchNormSumGradPasses | null {
  return simd([dy, y]) ? new BatchNormSumGradSimd(N, C, P, dy as Float32Array, y as Float32Array | null) : null;
}
