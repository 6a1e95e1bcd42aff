// dst += src, element by element, in dst's type (the bits of tensor.ts's addInto): float32 arrays on
// 'wasm' a chunk at a time through kernel memory, on the copyPlanesAdd kernel's f32x4.add (f32
// adds, the same bits); V8 does not vectorize addInto's loop (~1.6 ns an element on this project's
// machine), which the rest runs.

import { type FloatArray, addInto } from '../tensor/tensor.js';
import { getBackend } from './backend.js';
import { getInstance, scratchAbove } from './wasm/instance.js';

/** Floats of each array per chunk: both chunks (32 KiB) stay in cache from the copies in to the copy out. */
const CHUNK = 4096;

export function addOnto(dst: FloatArray, src: FloatArray): void {
  const n = dst.length;
  if (src.length !== n) throw new Error(`add: ${src.length} values onto ${n}`);
  if (getBackend() !== 'wasm' || n < 64 || !(dst instanceof Float32Array) || !(src instanceof Float32Array)) {
    addInto(dst, src);
    return;
  }
  const inst = getInstance();
  const dW = inst.arenaEnd, sW = dW + CHUNK;
  const mem = scratchAbove(2 * CHUNK);
  for (let i = 0; i < n; i += CHUNK) {
    const m = Math.min(CHUNK, n - i);
    mem.set(dst.subarray(i, i + m), dW);
    mem.set(src.subarray(i, i + m), sW);
    inst.copyPlanesAdd(4 * dW, 4 * sW, 1, 1, m, 0, 0, 0);
    dst.set(mem.subarray(dW, dW + m), i);
  }
}
