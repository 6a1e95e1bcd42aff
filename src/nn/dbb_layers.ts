// The two layers Diverse Branch Block (Ding et al., CVPR 2021) adds to conv and BN, as its public
// implementation (DingXiaoH/DiverseBranchBlock) defines them:
//   BNAndPad:         y = pad(BN(x), p) with the border filled by BN(0) = β − μ·γ/√(σ²+ε) (running statistics)
//   IdentityConv1x1:  y = (W + I) ⊛ x, W zero-initialised, I the 1×1 identity kernel
// The BN(0) border is what makes conv1×1 → BN → k×k exactly one k×k conv: padding x with zeros first
// and running conv1×1 (no bias) → BN on it gives BN(0) there too.

import { Tensor, allocLike, type DType, zeros } from '../tensor/tensor.js';
import { type ConvAlgorithm, conv2d, conv2dBackward } from '../ops/conv2d.js';
import { identityKernel } from '../reparam/kernels.js';
import { Module, Parameter } from './module.js';
import { BatchNorm2d } from './layers.js';

export class BNAndPad extends Module {
  readonly bn: BatchNorm2d;
  readonly pad: number;
  private inner: readonly number[] | null = null;

  constructor(channels: number, pad: number, opts: { dtype?: DType; eps?: number } = {}) {
    super();
    this.bn = new BatchNorm2d(channels, opts);
    this.pad = pad;
  }

  override children(): [string, Module][] {
    return [['bn', this.bn]];
  }

  /** The border value per channel, BN(0) from the running statistics (detached, as in the original). */
  padValues(): Float64Array {
    const { weight, bias, eps } = this.bn;
    const C = weight.data.size, v = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      v[c] = bias.data.data[c] - (this.bn.runningMean.data[c] * weight.data.data[c]) / Math.sqrt(this.bn.runningVar.data[c] + eps);
    }
    return v;
  }

  // x: (N, C, H, W) → y: (N, C, H + 2p, W + 2p)
  forward(x: Tensor): Tensor {
    const z = this.bn.forward(x); // in training mode this updates the running statistics the border then uses
    const p = this.pad;
    if (p === 0) return z;
    const [N, C, H, W] = z.shape;
    const Hp = H + 2 * p, Wp = W + 2 * p;
    this.inner = z.shape;
    const v = this.padValues();
    const y = allocLike(z.data, N * C * Hp * Wp);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const yo = (n * C + c) * Hp * Wp, zo = (n * C + c) * H * W;
        y.fill(v[c], yo, yo + Hp * Wp);
        for (let i = 0; i < H; i++) y.set(z.data.subarray(zo + i * W, zo + (i + 1) * W), yo + (i + p) * Wp + p);
      }
    }
    return new Tensor(y, [N, C, Hp, Wp]);
  }

  // The border is a constant of the running statistics: only the interior carries gradient.
  backward(dy: Tensor): Tensor {
    const p = this.pad;
    if (p === 0) return this.bn.backward(dy);
    if (this.inner === null) throw new Error('BNAndPad.backward: call forward first');
    const [N, C, H, W] = this.inner;
    const Hp = H + 2 * p, Wp = W + 2 * p;
    const dz = allocLike(dy.data, N * C * H * W);
    for (let nc = 0; nc < N * C; nc++) {
      for (let i = 0; i < H; i++) dz.set(dy.data.subarray(nc * Hp * Wp + (i + p) * Wp + p, nc * Hp * Wp + (i + p) * Wp + p + W), (nc * H + i) * W);
    }
    return this.bn.backward(new Tensor(dz, this.inner));
  }
}

export class IdentityConv1x1 extends Module {
  readonly weight: Parameter;
  readonly groups: number;
  /** the conv algorithm of forward and backward (as Conv2d.algorithm) */
  algorithm: ConvAlgorithm = 'auto';
  private x: Tensor | null = null;

  // weight: (C, C/g, 1, 1), zeros
  constructor(channels: number, groups: number, opts: { dtype?: DType } = {}) {
    super();
    if (channels % groups !== 0) throw new Error(`IdentityConv1x1: ${channels} channels are not divisible by groups ${groups}`);
    this.groups = groups;
    this.weight = new Parameter(zeros([channels, channels / groups, 1, 1], opts.dtype ?? 'float32'));
  }

  override ownParameters(): [string, Parameter][] {
    return [['weight', this.weight]];
  }

  /** W + I (C, C/g, 1, 1) */
  actualKernel(dtype: DType = this.weight.data.dtype): Tensor {
    const [C] = this.weight.data.shape;
    const k = identityKernel(C, this.groups, dtype, 1);
    for (let i = 0; i < k.size; i++) k.data[i] += this.weight.data.data[i];
    return k;
  }

  // x: (N, C, H, W) → y: (N, C, H, W)
  forward(x: Tensor): Tensor {
    this.x = x;
    return conv2d(x, this.actualKernel(), null, { groups: this.groups, algorithm: this.algorithm });
  }

  // d(W + I)/dW = 1: the kernel's gradient is W's
  backward(dy: Tensor): Tensor {
    if (this.x === null) throw new Error('IdentityConv1x1.backward: call forward first');
    const g = conv2dBackward(dy, this.x, this.actualKernel(), { groups: this.groups, algorithm: this.algorithm }, { db: false });
    this.weight.accumulate(g.dw!);
    return g.dx!;
  }
}
