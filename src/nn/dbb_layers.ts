// The two layers Diverse Branch Block (Ding et al., CVPR 2021) adds to conv and BN, as its public
// implementation (DingXiaoH/DiverseBranchBlock) defines them:
//   BNAndPad:         y = pad(BN(x), p) with the border filled by BN(0) = β − μ·γ/√(σ²+ε) (running statistics)
//   IdentityConv1x1:  y = (W + I) ⊛ x, W zero-initialised, I the 1×1 identity kernel
// The BN(0) border is what makes conv1×1 → BN → k×k exactly one k×k conv: padding x with zeros first
// and running conv1×1 (no bias) → BN on it gives BN(0) there too.

import { Tensor, allocLike, type DType, zeros } from '../tensor/tensor.js';
import { identityKernel } from './identity_kernel.js';
import { type ConvAlgorithm, algorithmFor, conv2d, conv2dBackward } from '../ops/conv2d.js';
import { kernelGeometry } from '../ops/conv2d_geometry.js';
import { Module, Parameter } from './module.js';
import type { FuseStage } from './fuse_stage.js';
import { BatchNorm2d } from './layers.js';

// z: (N, C, H, W) → y: (N, C, H + 2·ph, W + 2·pw), the border of channel c filled with v[c]
function padChannels(z: Tensor, [ph, pw]: readonly [number, number], v: ArrayLike<number>): Tensor {
  const [N, C, H, W] = z.shape;
  const Hp = H + 2 * ph, Wp = W + 2 * pw;
  const y = allocLike(z.data, N * C * Hp * Wp);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const yo = (n * C + c) * Hp * Wp, zo = (n * C + c) * H * W;
      y.fill(v[c], yo, yo + Hp * Wp);
      for (let i = 0; i < H; i++) y.set(z.data.subarray(zo + i * W, zo + (i + 1) * W), yo + (i + ph) * Wp + pw);
    }
  }
  return new Tensor(y, [N, C, Hp, Wp]);
}

// dy: (N, C, H + 2·ph, W + 2·pw) → dz: (N, C, H, W), the interior (the border is constant: no gradient)
function cropChannels(dy: Tensor, inner: readonly number[], [ph, pw]: readonly [number, number]): Tensor {
  const [N, C, H, W] = inner;
  const Hp = H + 2 * ph, Wp = W + 2 * pw;
  const dz = allocLike(dy.data, N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let i = 0; i < H; i++) dz.set(dy.data.subarray(nc * Hp * Wp + (i + ph) * Wp + pw, nc * Hp * Wp + (i + ph) * Wp + pw + W), (nc * H + i) * W);
  }
  return new Tensor(dz, inner);
}

/**
 * Padding with one constant per channel: what an ONNX exporter makes of BNAndPad's border (a Pad and
 * ScatterND writes, src/onnx/fuse.ts), as a stage the fuser takes. It has no parameters.
 */
export class ChannelPad2d extends Module {
  private inner: readonly number[] | null = null;

  constructor(readonly values: Float64Array, readonly pad: readonly [number, number]) {
    super();
  }

  override fuseStage(): FuseStage {
    return { kind: 'border', pad: this.pad, values: this.values };
  }

  // x: (N, C, H, W) → y: (N, C, H + 2·ph, W + 2·pw)
  forward(x: Tensor): Tensor {
    if (x.shape[1] !== this.values.length) throw new Error(`ChannelPad2d: ${this.values.length} border values for ${x.shape[1]} channels`);
    this.inner = x.shape;
    return padChannels(x, this.pad, this.values);
  }

  backward(dy: Tensor): Tensor {
    if (this.inner === null) throw new Error('ChannelPad2d.backward: call forward first');
    return cropChannels(dy, this.inner, this.pad);
  }
}

export class BNAndPad extends Module {
  readonly bn: BatchNorm2d;
  readonly pad: number;
  private inner: readonly number[] | null = null;

  constructor(channels: number, pad: number, opts: { dtype?: DType; eps?: number; momentum?: number } = {}) {
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

  override fuseStage(): FuseStage {
    return { kind: 'bn', bn: this.bn, pad: this.pad, statsAt: '.bn' };
  }

  // x: (N, C, H, W) → y: (N, C, H + 2p, W + 2p)
  forward(x: Tensor): Tensor {
    const z = this.bn.forward(x); // in training mode this updates the running statistics the border then uses
    const p = this.pad;
    if (p === 0) return z;
    this.inner = z.shape;
    return padChannels(z, [p, p], this.padValues());
  }

  // The border is a constant of the running statistics: only the interior carries gradient.
  backward(dy: Tensor): Tensor {
    const p = this.pad;
    if (p === 0) return this.bn.backward(dy);
    if (this.inner === null) throw new Error('BNAndPad.backward: call forward first');
    return this.bn.backward(cropChannels(dy, this.inner, [p, p]));
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

  override fuseStage(): FuseStage {
    return { kind: 'conv', weight: this.actualKernel('float64'), bias: null, padding: 0, stride: 1, dilation: 1, groups: this.groups, what: 'W + I' };
  }

  // x: (N, C, H, W) → y: (N, C, H, W)
  forward(x: Tensor): Tensor {
    this.x = x;
    const w = this.actualKernel();
    return conv2d(x, w, null, { groups: this.groups, algorithm: algorithmFor(this.algorithm, kernelGeometry(w.shape, {})), weightsChange: this.training });
  }

  // d(W + I)/dW = 1: the kernel's gradient is W's
  backward(dy: Tensor): Tensor {
    if (this.x === null) throw new Error('IdentityConv1x1.backward: call forward first');
    const w = this.actualKernel();
    const g = conv2dBackward(dy, this.x, w, { groups: this.groups, algorithm: algorithmFor(this.algorithm, kernelGeometry(w.shape, {})), weightsChange: this.training }, { db: false });
    this.weight.accumulate(g.dw!);
    return g.dx!;
  }
}
