// Arrays a module writes step after step instead of new ones, for what only that module reads: a
// block's tail conv outputs and gradients before the sum, a model's block outputs and the gradients
// passed between its blocks. A new array each step costs page faults: on this project's machine
// ~11 µs a 4 KiB page, and A0 at 64×64, batch 8, on two threads touched 9.4 MB of new shared
// memory a step in conv outputs alone. In shared memory with threads, where the convs' parts read
// and write them in place. What a module returns to its caller stays new: the caller may keep it.

import { type DType, Tensor, shapeSize, sharedArray, zeros } from '../tensor/tensor.js';
import { getThreads, isShared } from '../backend/threads.js';

export class KeptArrays {
  private readonly arrays = new Map<string, Tensor>();

  /** The array kept under `key`, of `shape` and dtype (a new one where it differs: the batch size, threads on or off). */
  get(key: string, shape: readonly number[], dtype: DType): Tensor {
    const shared = getThreads() > 1;
    const t = this.arrays.get(key);
    if (t !== undefined && t.dtype === dtype && isShared(t.data) === shared && t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i])) return t;
    const fresh = shared ? new Tensor(sharedArray(dtype, shapeSize(shape)), shape.slice()) : zeros(shape, dtype);
    this.arrays.set(key, fresh);
    return fresh;
  }
}
