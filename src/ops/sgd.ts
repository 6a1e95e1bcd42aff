// SGD's update, element by element, as torch.optim.SGD (dampening 0, not Nesterov):
//   d = ∇ + λ·θ;   v ← μ·v + d (v = d on the first step);   θ ← θ − η·v
// computed in float64 and rounded once per store. Threads: parts split each array's elements; an
// element's update reads only its own θ, ∇ and v, so every thread count gives the same bits.

import type { FloatArray } from '../tensor/tensor.js';
import { defineKernel, isShared, parallel, partRange } from '../backend/threads.js';

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

// elements [lo, hi) of one parameter; one loop per case, no branch inside
function updateRange(a: SgdArrays, lr: number, mu: number, wd: number, lo: number, hi: number): void {
  const { theta: th, grad: g, velocity: v } = a;
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

const sgdKernel = defineKernel('sgd.update', (a: SgdArgs, part: number, parts: number) => {
  for (const t of a.arrays) {
    const [lo, hi] = partRange(t.theta.length, part, parts);
    updateRange(t, a.lr, a.mu, a.wd, lo, hi);
  }
});

/** Elements below which a part is not worth a worker's message (~0.6 ms of memory-bound updates). */
const MIN_ELEMENTS_PER_PART = 1 << 18;

/**
 * Every parameter's update, in place. Arrays in shared memory (a model built with workers: see
 * newWeight) are split among the pool's threads; SGD is bound by memory, and two cores move more
 * of it than one (A0's 7.8M parameters: 20–31 → 14–16 ms). The rest are updated on this thread.
 */
export function sgdUpdate(arrays: SgdArrays[], lr: number, mu: number, wd: number): void {
  const shared: SgdArrays[] = [];
  let n = 0;
  for (const a of arrays) {
    if (isShared(a.theta) && isShared(a.grad) && (a.velocity === null || isShared(a.velocity))) {
      shared.push(a);
      n += a.theta.length;
    } else updateRange(a, lr, mu, wd, 0, a.theta.length);
  }
  if (shared.length > 0) parallel(sgdKernel, { arrays: shared, lr, mu, wd }, Math.floor(n / MIN_ELEMENTS_PER_PART));
}
