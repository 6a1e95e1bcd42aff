// The head every network here shares: a chain of feature modules, global average pooling, linear.

import type { DType, Tensor } from '../tensor/tensor.js';
import { globalAvgPool, globalAvgPoolBackward } from '../ops/pool.js';
import { fmtShape } from '../tensor/check.js';
import { Module } from './module.js';
import type { Linear } from './layers.js';
import type { ConvAlgorithm } from '../ops/conv2d.js';
import { setConvAlgorithm } from './conv_algorithm.js';

export abstract class PooledClassifier extends Module {
  abstract readonly linear: Linear;
  /** the network's plan: what it takes in and how many classes it gives out */
  abstract readonly plan: { readonly inChannels: number; readonly numClasses: number };
  private featShape: readonly number[] | null = null;

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
    for (const m of this.features()) h = m.forward(h);
    return this.head(h);
  }

  // features: (N, C, H, W) → logits: (N, num_classes), remembering the shape for backward
  protected head(h: Tensor): Tensor {
    this.featShape = h.shape;
    return this.linear.forward(globalAvgPool(h));
  }

  // dlogits: (N, num_classes) → dx: (N, in_channels, H, W)
  backward(dy: Tensor): Tensor {
    if (this.featShape === null) throw new Error(`${this.constructor.name}.backward: call forward first`);
    let d = globalAvgPoolBackward(this.linear.backward(dy), this.featShape);
    const f = this.features();
    for (let i = f.length - 1; i >= 0; i--) d = f[i].backward(d);
    return d;
  }
}
