// SGD's update on the SIMD kernel (sgd_simd.ts): a parameter's arrays go through kernel memory a
// chunk at a time (copied in, updated, θ and v copied back), in float32 (sgd_simd.ts).

import { getInstance, scratchAbove } from './instance.js';

/** Floats of each array per chunk: θ, ∇ and v of a chunk (48 KiB) stay in cache from the copy in to the copy out. */
const CHUNK = 4096;

/** Elements lo … hi − 1 of one parameter, as updateParts in src/ops/sgd.ts (velocity null: no momentum). */
export function sgdUpdateSimd(theta: Float32Array, grad: Float32Array, velocity: Float32Array | null, first: boolean, lo: number, hi: number, lr: number, mu: number, wd: number): void {
  const inst = getInstance();
  const tW = inst.arenaEnd, gW = tW + CHUNK, vW = gW + CHUNK;
  const mem = scratchAbove(3 * CHUNK);
  const kernel = inst.sgd[velocity === null ? 0 : first ? 1 : 2];
  for (let i = lo; i < hi; i += CHUNK) {
    const n = Math.min(CHUNK, hi - i);
    mem.set(theta.subarray(i, i + n), tW);
    mem.set(grad.subarray(i, i + n), gW);
    if (velocity !== null && !first) mem.set(velocity.subarray(i, i + n), vW);
    kernel(4 * tW, 4 * gW, 4 * vW, 4 * n, lr, mu, wd);
    theta.set(mem.subarray(tW, tW + n), i);
    if (velocity !== null) velocity.set(mem.subarray(vW, vW + n), i);
  }
}
