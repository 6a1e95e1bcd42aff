// Squeeze-and-excitation (Hu et al.), as RepVGG-D2se's SEBlock and MobileOne's use it:
//   s = σ(up(ReLU(down(mean_hw x))))     y = x ⊙ s (s per sample and channel)
// It multiplies the block's output by a function of that output, so it is not linear: a fused block
// keeps it after its conv (MMPretrain's RepVGG-D2se deploy path drops it and changes the function).

import type { FuseStage } from './fuse_stage.js';
import { Tensor, allocLike, type DType } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { globalAvgPool, globalAvgPoolBackward } from '../ops/pool.js';
import { relu, reluBackward } from '../ops/relu.js';
import { sigmoid, sigmoidBackward } from '../ops/sigmoid.js';
import { Module } from './module.js';
import { Conv2d } from './layers.js';

export class SqueezeExcite extends Module {
  readonly down: Conv2d;
  readonly up: Conv2d;
  /** state-dict names of down and up: RepVGG 'down'/'up', MobileOne 'reduce'/'expand', timm 'fc1'/'fc2' */
  readonly names: readonly [string, string];
  private cache: { x: Tensor; h: Tensor; s: Tensor } | null = null;

  // channels → hidden → channels, 1×1 convs with bias
  constructor(channels: number, hidden: number, opts: { dtype?: DType; rng?: Rng; names?: readonly [string, string] } = {}) {
    super();
    const rng = opts.rng ?? new Rng(0);
    this.down = new Conv2d(channels, hidden, 1, { bias: true, dtype: opts.dtype, rng });
    this.up = new Conv2d(hidden, channels, 1, { bias: true, dtype: opts.dtype, rng });
    this.names = opts.names ?? ['down', 'up'];
  }

  /** A new SE with the same parameters. */
  copy(): SqueezeExcite {
    const [hidden, channels] = this.down.weight.data.shape;
    const c = new SqueezeExcite(channels, hidden, { dtype: this.down.weight.data.dtype, names: this.names });
    for (const [mine, theirs] of [[this.down, c.down], [this.up, c.up]]) {
      theirs.weight.data.data.set(mine.weight.data.data);
      theirs.bias!.data.data.set(mine.bias!.data.data);
    }
    return c.train(this.training);
  }

  override children(): [string, Module][] {
    return [[this.names[0], this.down], [this.names[1], this.up]];
  }

  override fuseStage(): FuseStage {
    return { kind: 'nonlinear' };
  }

  // x: (N, C, H, W) → y: (N, C, H, W)
  forward(x: Tensor): Tensor {
    const [N, C, H, W] = x.shape;
    const pooled = globalAvgPool(x).reshape([N, C, 1, 1]);
    const h = relu(this.down.forward(pooled));
    const s = sigmoid(this.up.forward(h));
    this.cache = { x, h, s };
    const y = allocLike(x.data, x.size), P = H * W;
    for (let nc = 0; nc < N * C; nc++) {
      const v = s.data[nc];
      for (let i = nc * P; i < (nc + 1) * P; i++) y[i] = x.data[i] * v;
    }
    return new Tensor(y, x.shape);
  }

  // dx = dy ⊙ s + (d mean_hw x broadcast), with ds[n, c] = Σ_hw dy ⊙ x
  backward(dy: Tensor): Tensor {
    if (this.cache === null) throw new Error('SqueezeExcite.backward: call forward first');
    const { x, h, s } = this.cache;
    const [N, C, H, W] = x.shape, P = H * W;
    const ds = allocLike(dy.data, N * C);
    for (let nc = 0; nc < N * C; nc++) {
      let acc = 0;
      for (let i = nc * P; i < (nc + 1) * P; i++) acc += dy.data[i] * x.data[i];
      ds[nc] = acc;
    }
    const dz = sigmoidBackward(new Tensor(ds, [N, C, 1, 1]), s);
    const dh = reluBackward(this.up.backward(dz), h);
    const dpooled = this.down.backward(dh).reshape([N, C]);
    const dx = globalAvgPoolBackward(dpooled, x.shape);
    for (let nc = 0; nc < N * C; nc++) {
      const v = s.data[nc];
      for (let i = nc * P; i < (nc + 1) * P; i++) dx.data[i] += dy.data[i] * v;
    }
    return dx;
  }
}
