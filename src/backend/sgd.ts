// SGD's update on the selected backend: the WebAssembly SIMD kernel for float32 arrays on 'wasm'
// (wasm/sgd_simd.ts: the TypeScript loop of src/ops/sgd.ts in float32, as PyTorch computes it); false
// where the caller runs that loop itself (float64, 'js').
import type { FloatArray } from '../tensor/tensor.js';
import { getBackend } from './backend.js';
import { sgdUpdateSimd } from './wasm/sgd_driver.js';

/** Elements lo … hi − 1 of one parameter updated on the kernel, if it takes them (else false, nothing done). */
export function sgdOnKernel(theta: FloatArray, grad: FloatArray, velocity: FloatArray | null, first: boolean, lo: number, hi: number, lr: number, mu: number, wd: number): boolean {
  if (getBackend() !== 'wasm' || !(theta instanceof Float32Array) || !(grad instanceof Float32Array) || !(velocity === null || velocity instanceof Float32Array)) return false;
  if (hi > lo) sgdUpdateSimd(theta, grad, velocity, first, lo, hi, lr, mu, wd);
  return true;
}
