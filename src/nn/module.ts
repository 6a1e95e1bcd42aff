// Module: forward(x) caches what backward(dy) needs; parameter gradients accumulate until zeroGrad().
// Named parameters and buffers follow PyTorch's state-dict naming (children joined by '.').

import type { FuseStage } from './fuse_stage.js';
import { type DType, type FloatArray, Tensor, allocArray, shapeSize, sharedArray } from '../tensor/tensor.js';
import { type Rng, fillUniform } from '../tensor/rng.js';
import { getThreads, isShared } from '../backend/threads.js';

export class Parameter {
  data: Tensor;
  /**
   * Bumped whenever data changes (SGD.step, loadStateDict), so derived caches (a Conv2d's Winograd
   * filters in eval mode) know to refresh. Code that edits `data` in place must bump it too.
   */
  version = 0;
  private g: Tensor | null = null;
  /** zeroGrad since the last write: the buffer's values are stale and mean zero (see takeClearedGrad) */
  private cleared = false;

  constructor(data: Tensor) {
    this.data = data;
  }

  /** The accumulated gradient, allocated (zeroed) on first use so inference-only models carry none. */
  get grad(): Tensor {
    if (this.g === null) this.g = this.newGrad();
    else if (this.cleared) this.g.data.fill(0);
    this.cleared = false;
    return this.g;
  }

  /** The gradient is zero from here (Module.zeroGrad): the buffer is kept, and zeroed only if read before a backward writes it. */
  clearGrad(): void {
    if (this.g !== null) this.cleared = true;
  }

  /**
   * The gradient buffer when it holds zero (cleared, or new): the caller then writes its gradient
   * there and must write every element (a conv's dW straight from its GEMM: no second array, no
   * pass adding it to zeros). null when it holds a gradient: the caller adds with accumulate.
   */
  takeClearedGrad(): FloatArray | null {
    if (this.g !== null && !this.cleared) return null;
    this.g ??= this.newGrad();
    this.cleared = false;
    return this.g.data;
  }

  /** Whether the gradient holds zero (takeClearedGrad would return the buffer). */
  gradIsCleared(): boolean {
    return this.g === null || this.cleared;
  }

  // zeros, in shared memory beside shared values (a conv's workers write dW there in place)
  private newGrad(): Tensor {
    const n = this.data.size, dtype = this.data.dtype;
    return new Tensor(isShared(this.data.data) ? sharedArray(dtype, n) : allocArray(dtype, n), this.data.shape);
  }

  /** Keeps the gradient in `buffer` from here (data's size and type: e.g. shared memory another
   * thread adds to), holding what the gradient holds now. */
  keepGradIn(buffer: FloatArray): void {
    if (buffer.length !== this.data.size || (buffer instanceof Float64Array) !== (this.data.data instanceof Float64Array)) {
      throw new Error(`Parameter.keepGradIn: ${buffer.length} values of ${buffer instanceof Float64Array ? 'float64' : 'float32'}, expected ${this.data.size} ${this.data.dtype}`);
    }
    if (this.g !== null && !this.cleared) buffer.set(this.g.data);
    else this.cleared = true; // zero, as a new gradient is: the buffer's values are not read
    this.g = new Tensor(buffer, this.data.shape);
  }

  get hasGrad(): boolean {
    return this.g !== null;
  }

  /** grad += g */
  accumulate(g: Tensor): void {
    const b = g.data;
    const into = this.takeClearedGrad();
    if (into !== null) {
      for (let i = 0; i < into.length; i++) into[i] = 0 + b[i]; // the bits of adding to zeros (−0 becomes +0)
      return;
    }
    const a = this.g!.data;
    for (let i = 0; i < a.length; i++) a[i] += b[i];
  }
}

/** A state-dict buffer: a float tensor, or an integer counter (num_batches_tracked, saved as I64). */
export type StateBuffer = { kind: 'tensor'; value: Tensor } | { kind: 'int'; value: number; set(v: number): void };

export abstract class Module {
  training = true;

  abstract forward(x: Tensor): Tensor;
  abstract backward(dy: Tensor): Tensor;

  /**
   * backward without the input's gradient: every parameter's gradient accumulates, and dx is not
   * computed where a module can skip it (PyTorch's `loss.backward()` when the input does not require
   * grad). Training loops call this; here, it runs backward and drops dx.
   */
  backwardParameters(dy: Tensor): void {
    this.backward(dy);
  }

  /** Direct children, in state-dict order. */
  children(): [string, Module][] {
    return [];
  }

  ownParameters(): [string, Parameter][] {
    return [];
  }

  ownBuffers(): [string, StateBuffer][] {
    return [];
  }

  /** What this layer is to the fuser inside a branch (src/nn/fuse_stage.ts); null: it does not fuse. */
  fuseStage(): FuseStage | null {
    return null;
  }

  train(mode = true): this {
    this.training = mode;
    for (const [, c] of this.children()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.ownParameters()) out.push([prefix + n, p]);
    for (const [n, c] of this.children()) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  namedBuffers(prefix = ''): [string, StateBuffer][] {
    const out: [string, StateBuffer][] = [];
    for (const [n, b] of this.ownBuffers()) out.push([prefix + n, b]);
    for (const [n, c] of this.children()) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  zeroGrad(): void {
    for (const [, p] of this.namedParameters()) p.clearGrad();
  }

  parameterCount(): number {
    let n = 0;
    for (const [, p] of this.namedParameters()) n += p.data.size;
    return n;
  }
}

/**
 * A new weight of `shape`: zeros, or U(lo, hi) draws. With the pool's workers (getThreads() > 1) in
 * shared memory: a conv's parts then read it, and write its gradient, where it lies, and SGD's parts
 * update it there, instead of a copy into the pool and back every step. Zeros are not written (a
 * model built to receive a checkpoint's values never touches them).
 */
export function newWeight(shape: number[], dtype: DType, init: { rng: Rng; lo: number; hi: number } | null): Tensor {
  const n = shapeSize(shape);
  const data = getThreads() > 1 ? sharedArray(dtype, n) : allocArray(dtype, n);
  if (init !== null) fillUniform(data, init.rng, init.lo, init.hi);
  return new Tensor(data, shape);
}

/** Kaiming-uniform with a = √5, PyTorch's default for Conv2d and Linear: U(−1/√fan_in, 1/√fan_in). */
export function defaultInitBound(fanIn: number): number {
  return 1 / Math.sqrt(fanIn);
}

export type { DType };
