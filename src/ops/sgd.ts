// SGD's update, element by element, as torch.optim.SGD (dampening 0, not Nesterov):
//   d = ∇ + λ·θ;   v ← μ·v + d (v = d on the first step);   θ ← θ − η·v
// computed in float64 and rounded once per store (the reference). Threads: parts split each array's
// elements; an element's update reads only its own θ, ∇ and v, so every thread count gives the same
// bits. float32 on 'wasm' runs the SIMD kernel (backend/sgd.ts: these operations in float32, as
// PyTorch does them; the scalar loop below, ~2.4 ns an element in V8, is compute-bound, not
// memory-bound: A0's 7.8M parameters 1.08–1.11× a step).

import type { FloatArray } from '../tensor/tensor.js';
import { defineKernel, getThreads, isShared, parallel, partRange } from '../backend/threads.js';
import { sgdOnKernel } from '../backend/sgd.js';

/** One parameter's arrays, updated in place. velocity: null without momentum; first: v holds nothing yet. */
export interface SgdArrays {
  theta: FloatArray;
  grad: FloatArray;
  velocity: FloatArray | null;
  first: boolean;
}

interface SgdArgs {
  arrays: SgdArrays[];
  lr: number;
  mu: number;
  wd: number;
}

// Part `part` of every array's elements: one loop per case, no branch inside. The element loops sit
// inside the loop over arrays: with a function call per array, V8 ran the demo's 48 small arrays
// 1.7× slower (1.02–1.05 ms against 0.60–0.62 a step, the two versions taking turns).
function updateParts(arrays: SgdArrays[], lr: number, mu: number, wd: number, part: number, parts: number): void {
  for (let k = 0; k < arrays.length; k++) {
    const a = arrays[k], th = a.theta, g = a.grad, v = a.velocity;
    const [lo, hi] = partRange(th.length, part, parts);
    if (sgdOnKernel(th, g, v, a.first, lo, hi, lr, mu, wd)) continue;
    if (v === null) {
      for (let i = lo; i < hi; i++) th[i] -= lr * (g[i] + wd * th[i]);
    } else if (a.first) {
      for (let i = lo; i < hi; i++) {
        const d = g[i] + wd * th[i];
        v[i] = d;
        th[i] -= lr * d;
      }
    } else {
      for (let i = lo; i < hi; i++) {
        const d = mu * v[i] + (g[i] + wd * th[i]);
        v[i] = d;
        th[i] -= lr * d;
      }
    }
  }
}

const sgdKernel = defineKernel('sgd.update', (a: SgdArgs, part: number, parts: number) => updateParts(a.arrays, a.lr, a.mu, a.wd, part, parts));

/** Elements below which a part is not worth a worker's message (~0.6 ms of memory-bound updates). */
const MIN_ELEMENTS_PER_PART = 1 << 18;

/** Parts an update of n shared parameters asks the pool for (it clamps them to the threads set). */
const partsOf = (n: number) => Math.floor(n / MIN_ELEMENTS_PER_PART);

/** Whether an update of n shared parameters may be cut into parts (on the threads set). */
export function sgdCouldSplit(n: number): boolean {
  return getThreads() > 1 && partsOf(n) > 1;
}

/**
 * Every parameter's update, in place. Arrays in shared memory (a model built with workers: see
 * newWeight) are split among the pool's threads; SGD is bound by memory, and two cores move more
 * of it than one (A0's 7.8M parameters: 20–31 → 14–16 ms). The rest are updated on this thread.
 */
export function sgdUpdate(arrays: SgdArrays[], lr: number, mu: number, wd: number): void {
  const shared: SgdArrays[] = [], local: SgdArrays[] = [];
  let n = 0;
  for (const a of arrays) {
    if (isShared(a.theta) && isShared(a.grad) && (a.velocity === null || isShared(a.velocity))) {
      shared.push(a);
      n += a.theta.length;
    } else local.push(a);
  }
  updateParts(local, lr, mu, wd, 0, 1);
  if (shared.length > 0) parallel(sgdKernel, { arrays: shared, lr, mu, wd }, partsOf(n));
}
