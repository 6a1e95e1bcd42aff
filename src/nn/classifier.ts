// The head every network here shares: a chain of feature modules, global average pooling, linear.

import type { DType, Tensor } from '../tensor/tensor.js';
import { globalAvgPool, globalAvgPoolBackward } from '../ops/pool.js';
import { fmtShape } from '../tensor/check.js';
import { Module } from './module.js';
import type { Linear } from './layers.js';
import type { ConvAlgorithm } from '../ops/conv2d.js';
import { anyConvSplits, setConvAlgorithm } from './conv_algorithm.js';
import { BranchBlock } from './branch_block.js';
import { KeptArrays } from './kept_arrays.js';
import { backgroundScope } from '../backend/threads.js';
import { batchShard } from '../ops/batch_shards.js';

export abstract class PooledClassifier extends Module {
  abstract readonly linear: Linear;
  /** the network's plan: what it takes in and how many classes it gives out */
  abstract readonly plan: { readonly inChannels: number; readonly numClasses: number };
  private featShape: readonly number[] | null = null;
  /** each feature module's input shape in the last forward */
  private inShapes: (readonly number[])[] = [];
  /** each block's output (the next block's input, which its convs and ReLU keep until backward) and
   * the gradients passed between blocks, two arrays of each map shape taking turns: a block's backward
   * reads its dy, written by the block after it, and writes its dx into the other (the key leaves
   * out the batch size: a new one replaces the arrays rather than adding to them) */
  private readonly kept = new KeptArrays();

  get dtype(): DType {
    return this.linear.weight.data.dtype;
  }

  get inChannels(): number {
    return this.plan.inChannels;
  }

  get numClasses(): number {
    return this.plan.numClasses;
  }

  /** Every conv's algorithm ('winograd' where it applies, im2col for the rest: setConvAlgorithm). */
  setAlgorithm(algorithm: ConvAlgorithm): this {
    setConvAlgorithm(this, algorithm);
    return this;
  }

  /** the feature modules, in forward order */
  protected abstract features(): readonly Module[];

  // x: (N, in_channels, H, W) → logits: (N, num_classes)
  forward(x: Tensor): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== this.inChannels) {
      throw new Error(`${this.constructor.name}: input shape ${fmtShape(x.shape)} does not match (N, ${this.inChannels}, H, W)`);
    }
    let h = x;
    this.features().forEach((m, i) => {
      this.inShapes[i] = h.shape;
      h = m instanceof BranchBlock ? m.forward(h, this.kept.get(`y${i}`, m.outputShape(h.shape), h.dtype)) : m.forward(h);
    });
    return this.head(h);
  }

  // features: (N, C, H, W) → logits: (N, num_classes), remembering the shape for backward
  protected head(h: Tensor): Tensor {
    this.featShape = h.shape;
    return this.linear.forward(globalAvgPool(h));
  }

  // dlogits: (N, num_classes) → dx: (N, in_channels, H, W)
  backward(dy: Tensor): Tensor {
    return this.backwardWith(dy, true)!;
  }

  // dlogits: (N, num_classes): every parameter's gradient, the input's not computed (a training step)
  override backwardParameters(dy: Tensor): void {
    this.backwardWith(dy, false);
  }

  // Where no conv of the network splits among the threads, the pass is one backgroundScope: a
  // block's convs leave their dW to a worker (BranchBlock) while this thread goes on through the
  // blocks before it (the demo's step on two threads 1.10–1.14× against one, same bits). Where one
  // splits, its parts would wait behind the worker's queue: no scope, every kernel as before.
  private backwardWith(dy: Tensor, inputGradient: boolean): Tensor | null {
    // (a thread holding half of the batch, data parallel, has no worker to give anything to)
    const splits = this.features().some(anyConvSplits);
    return splits || batchShard() !== null ? this.featuresBackward(dy, inputGradient) : backgroundScope(() => this.featuresBackward(dy, inputGradient));
  }

  private featuresBackward(dy: Tensor, inputGradient: boolean): Tensor | null {
    if (this.featShape === null) throw new Error(`${this.constructor.name}.backward: call forward first`);
    let d = globalAvgPoolBackward(this.linear.backward(dy), this.featShape);
    const f = this.features();
    for (let i = f.length - 1; i > 0; i--) {
      const m = f[i];
      d = m instanceof BranchBlock ? m.backward(d, this.kept.get(`dx${i % 2} ${this.inShapes[i].slice(1).join('×')}`, this.inShapes[i], d.dtype).data) : m.backward(d);
    }
    // the first module's dx is the caller's (a new array), or not wanted
    if (inputGradient) return f[0].backward(d);
    f[0].backwardParameters(d);
    return null;
  }
}
