// The batch's two halves. Every sum a training step takes over the images of a batch (BatchNorm's
// statistics and its gradient's sums, each parameter's gradient, the loss) is taken over each half
// on its own, images [0, h) and [h, N) with h = ⌈N/2⌉, and the two are then added:
//   Σ_n t_n = Σ_{n<h} t_n + Σ_{n≥h} t_n      (each half's terms in order, as one thread adds them)
// So two threads can each take one half of a step (data parallel: src/train/data_parallel.ts), trade
// their halves' sums where a BatchNorm needs the whole batch's, and give the bits one thread gives
// when it takes both halves: the result never depends on the thread count.

import { workspace64 } from '../tensor/workspace.js';
import type { FloatArray } from '../tensor/tensor.js';

/** A thread holding one half of a batch: how it learns the other half's sums. */
export interface BatchShard {
  /** images in the whole batch, both halves */
  readonly images: number;
  /** which half this thread holds: 0 (images [0, h)) or 1 */
  readonly half: 0 | 1;
  /** sums ← the first half's sums + the second's, elementwise in float64; each half calls it with its
   * own, at the same point of the step */
  combine(sums: Float64Array): void;
}

let current: BatchShard | null = null;

/** f() with this thread holding one half of every batch it sees (a data-parallel step's). */
export function onBatchShard<T>(shard: BatchShard, f: () => T): T {
  const saved = current;
  current = shard;
  try {
    return f();
  } finally {
    current = saved;
  }
}

/** The half this thread holds, or null where it holds whole batches. */
export function batchShard(): BatchShard | null {
  return current;
}

/** The images of the whole batch whose part this thread holds (N: the images it holds). */
export function batchImages(N: number): number {
  return current === null ? N : current.images;
}

/** Where a batch of N images this thread holds whole is cut into its halves: the second starts at
 * image h (h = N: one half, where N = 1 or this thread holds a half only). */
export function halfStart(N: number): number {
  return current === null ? Math.ceil(N / 2) : N;
}

/**
 * Σ over the batch of per-channel sums, by halves: sumOver(n0, n1, out) writes the sums over the
 * images [n0, n1) this thread holds into out (every element). `own`, when given, gets each half's
 * sums first: own(first, second), second null where this thread holds one half (the other half's
 * are added in the other thread), e.g. to round a parameter's gradient per half.
 */
export function batchSums(N: number, out: Float64Array, sumOver: SumOver, own?: (first: Float64Array, second: Float64Array | null) => void): void {
  const second = halvesSums(N, out, sumOver);
  own?.(out, second);
  if (second !== null) for (let i = 0; i < out.length; i++) out[i] += second[i];
  else current?.combine(out);
}

/** A parameter gradient of per-element sums over the batch, by halves: sumOver(n0, n1, out) as in
 * batchSums; dst ← each half's sums rounded to dst's type, then added (gradientOfHalves). No other
 * thread is asked: each half's gradient is its own until the halves' gradients meet. */
export function gradientByHalves(N: number, dst: FloatArray, sumOver: SumOver): void {
  const first = workspace64('halves.first', dst.length).subarray(0, dst.length);
  gradientOfHalves(dst, first, halvesSums(N, first, sumOver));
}

/** sums over the images [n0, n1) this thread holds, into out (every element) */
type SumOver = (n0: number, n1: number, out: Float64Array) => void;

// Each half's own sums: the first half's (or the one this thread holds) into `first`, and the second
// half's returned, or null where this thread holds one half (or N = 1).
function halvesSums(N: number, first: Float64Array, sumOver: SumOver): Float64Array | null {
  const h = halfStart(N);
  sumOver(0, h, first);
  if (h === N) return null;
  const second = workspace64('halves.second', first.length).subarray(0, first.length);
  sumOver(h, N, second);
  return second;
}

/** A parameter gradient's value from its halves' float64 sums, rounded per half as the halves'
 * gradients are, then added in the gradient's type: dst[i] = round(a[i]) + round(b[i]) (b null:
 * this thread's half alone; the other thread's is added where the halves' gradients meet). */
export function gradientOfHalves(dst: FloatArray, a: Float64Array, b: Float64Array | null): void {
  const f32 = dst instanceof Float32Array;
  for (let i = 0; i < dst.length; i++) {
    // a float32 sum of two float32 values computed in float64 and rounded once is the float32 sum
    dst[i] = b === null ? a[i] : f32 ? Math.fround(a[i]) + Math.fround(b[i]) : a[i] + b[i];
  }
}
