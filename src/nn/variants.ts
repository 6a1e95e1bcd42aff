// The other re-parameterizable blocks the RepVGG paper (Table 6) compares against, as training-time
// modules with forward and backward. A block is a sum of parallel branches, each a chain of stages
// (conv, BN, DiracConv, ReLU; an empty chain is the identity), an optional BN after the addition,
// then ReLU. All map C → C channels with stride 1 and 'same' padding.

import { Tensor, allocArray, type DType } from '../tensor/tensor.js';
import { Rng, uniform } from '../tensor/rng.js';
import { type ConvAlgorithm, algorithmFor, conv2d, conv2dBackward } from '../ops/conv2d.js';
import type { FuseStage } from './fuse_stage.js';
import { kernelGeometry } from '../ops/conv2d_geometry.js';
import { Module, Parameter, defaultInitBound } from './module.js';
import { BatchNorm2d, Conv2d, ReLU } from './layers.js';
import { BranchBlock } from './branch_block.js';
import { RepVGGBlock } from './repvgg.js';

/**
 * DiracNet's parameterisation of a 3×3 conv: Ŵ = diag(a)·I + diag(b)·W_norm, with W_norm the kernel
 * normalised per output filter (‖W_norm[f]‖₂ = 1) and I the identity kernel. With `trivial`, a = b = 1
 * and W is not normalised: Ŵ = I + W ('Trivial Re-param'). Where the layer changes the channel count
 * or has stride 2 there is no identity to add: Ŵ = diag(b)·W_norm (trivial: Ŵ = W).
 */
export class DiracConv2d extends Module {
  readonly weight: Parameter;
  readonly a: Parameter | null;
  readonly b: Parameter | null;
  readonly trivial: boolean;
  readonly stride: number;
  /** in = out channels and stride 1: the identity kernel is part of Ŵ */
  readonly identity: boolean;
  /** the conv algorithm of forward and backward (as Conv2d.algorithm) */
  algorithm: ConvAlgorithm = 'auto';
  private x: Tensor | null = null;
  private norms: Float64Array | null = null;

  // weight: (out, in, 3, 3); out = channels, in = opts.inChannels (default: channels)
  constructor(channels: number, opts: { trivial?: boolean; dtype?: DType; rng?: Rng; inChannels?: number; stride?: number } = {}) {
    super();
    const dtype = opts.dtype ?? 'float32';
    const inChannels = opts.inChannels ?? channels;
    const bound = defaultInitBound(inChannels * 9);
    this.trivial = opts.trivial ?? false;
    this.stride = opts.stride ?? 1;
    this.identity = inChannels === channels && this.stride === 1;
    this.weight = new Parameter(uniform([channels, inChannels, 3, 3], opts.rng ?? new Rng(0), -bound, bound, dtype));
    this.a = this.trivial || !this.identity ? null : new Parameter(new Tensor(allocArray(dtype, channels).fill(1), [channels]));
    this.b = this.trivial ? null : new Parameter(new Tensor(allocArray(dtype, channels).fill(1), [channels]));
  }

  override ownParameters(): [string, Parameter][] {
    const own: [string, Parameter][] = [['weight', this.weight]];
    if (this.a !== null) own.push(['a', this.a]);
    if (this.b !== null) own.push(['b', this.b]);
    return own;
  }

  /** Ŵ (out, in, 3, 3); also remembers ‖W[f]‖ for the backward pass. */
  effectiveKernel(dtype: DType = this.weight.data.dtype): Tensor {
    const W = this.weight.data;
    const [C, Cin] = W.shape;
    const per = Cin * 9;
    const out = allocArray(dtype, W.size);
    const norms = new Float64Array(C);
    for (let f = 0; f < C; f++) {
      let ss = 0;
      for (let i = 0; i < per; i++) ss += W.data[f * per + i] ** 2;
      norms[f] = Math.sqrt(ss);
      const scale = this.trivial ? 1 : this.b!.data.data[f] / norms[f];
      for (let i = 0; i < per; i++) out[f * per + i] = W.data[f * per + i] * scale;
      if (this.identity) out[f * per + f * 9 + 4] += this.trivial ? 1 : this.a!.data.data[f];
    }
    this.norms = norms;
    return new Tensor(out, W.shape);
  }

  override fuseStage(): FuseStage {
    return { kind: 'conv', weight: this.effectiveKernel('float64'), bias: null, padding: 1, stride: this.stride, dilation: 1, groups: 1, what: 'the conv kernel' };
  }

  forward(x: Tensor): Tensor {
    this.x = x;
    const w = this.effectiveKernel();
    return conv2d(x, w, null, { padding: 1, stride: this.stride, algorithm: algorithmFor(this.algorithm, kernelGeometry(w.shape, { padding: 1, stride: this.stride })), weightsChange: this.training });
  }

  // dŴ from the conv, then: da_f = dŴ[f, f, centre],  db_f = ⟨dŴ_f, ŵ_f⟩,
  // dW_f = (b_f/‖W_f‖)·(dŴ_f − ŵ_f⟨ŵ_f, dŴ_f⟩) with ŵ_f = W_f/‖W_f‖ (trivial: dW = dŴ)
  backward(dy: Tensor): Tensor {
    if (this.x === null || this.norms === null) throw new Error('DiracConv2d.backward: call forward first');
    const Wh = this.effectiveKernel();
    const g = conv2dBackward(dy, this.x, Wh, { padding: 1, stride: this.stride, algorithm: algorithmFor(this.algorithm, kernelGeometry(Wh.shape, { padding: 1, stride: this.stride })), weightsChange: this.training }, { db: false });
    const dWh = g.dw!.data;
    const W = this.weight.data.data;
    const [C, Cin] = this.weight.data.shape;
    const per = Cin * 9;
    const dW = allocArray(this.weight.data.dtype, W.length);
    for (let f = 0; f < C; f++) {
      if (this.trivial) {
        for (let i = 0; i < per; i++) dW[f * per + i] = dWh[f * per + i];
        continue;
      }
      const n = this.norms[f];
      let dot = 0;
      for (let i = 0; i < per; i++) dot += (W[f * per + i] / n) * dWh[f * per + i];
      if (this.a !== null) this.a.grad.data[f] += dWh[f * per + f * 9 + 4];
      this.b!.grad.data[f] += dot;
      const bf = this.b!.data.data[f];
      for (let i = 0; i < per; i++) dW[f * per + i] = (bf / n) * (dWh[f * per + i] - (W[f * per + i] / n) * dot);
    }
    this.weight.accumulate(new Tensor(dW, this.weight.data.shape));
    return g.dx!;
  }
}

/**
 * The block designs of the RepVGG paper's Table 6, by the paper's names, and QARepVGG (Chu et al., 2023:
 * BN on the 3×3 branch only, a bare 1×1, the identity without BN, a BN after the sum), the design made
 * to survive INT8 (`ablate --table int8` compares the two).
 */
export const VARIANTS = ['RepVGG', 'Identity w/o BN', 'Post-addition BN', '+ReLU in branch', 'DiracNet', 'Trivial Re-param', 'ACB', 'QARepVGG'] as const;
export type VariantName = (typeof VARIANTS)[number];

export interface VariantBlockOptions {
  dtype?: DType;
  seed?: number;
  /** the parameters' generator (default: a new one from `seed`) */
  rng?: Rng;
  groups?: number;
  /** input channels (default: `channels`) and stride (default 1): with in ≠ out or stride 2 (a
   * stage's first block) the identity terms are left out, as RepVGG leaves out its identity branch */
  inChannels?: number;
  stride?: number;
}

// → a block mapping (N, inChannels, H, W) to (N, channels, ⌈H/stride⌉, ⌈W/stride⌉) ('same' padding)
export function variantBlock(name: VariantName, channels: number, opts: VariantBlockOptions = {}): BranchBlock {
  const dtype = opts.dtype ?? 'float32';
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const groups = opts.groups ?? 1;
  const inChannels = opts.inChannels ?? channels;
  const stride = opts.stride ?? 1;
  const identity = inChannels === channels && stride === 1;
  const conv = (kh: number, kw: number, bias = false) =>
    new Conv2d(inChannels, channels, [kh, kw], { padding: [(kh - 1) / 2, (kw - 1) / 2], stride, groups, bias, dtype, rng });
  const bn = () => new BatchNorm2d(channels, { dtype });
  const dirac = (trivial: boolean) => new DiracConv2d(channels, { trivial, dtype, rng, inChannels, stride });
  const withIdentity = (branches: Module[][], id: Module[]) => (identity ? [...branches, id] : branches);
  const shape = { inChannels, stride, groups: name === 'DiracNet' || name === 'Trivial Re-param' ? 1 : groups };
  switch (name) {
    case 'RepVGG':
      return new RepVGGBlock({ inChannels, outChannels: channels, stride, groups, identity, pointwise: true }, { dtype, rng });
    case 'Identity w/o BN':
      return new BranchBlock(name, channels, withIdentity([[conv(3, 3), bn()], [conv(1, 1), bn()]], []), null, shape);
    case 'Post-addition BN':
      return new BranchBlock(name, channels, withIdentity([[conv(3, 3)], [conv(1, 1)]], []), bn(), shape);
    case '+ReLU in branch':
      return new BranchBlock(name, channels, withIdentity([[conv(3, 3), bn(), new ReLU()], [conv(1, 1), bn(), new ReLU()]], [bn(), new ReLU()]), null, shape);
    case 'DiracNet':
      return new BranchBlock(name, channels, [[dirac(false), bn()]], null, shape);
    case 'Trivial Re-param':
      return new BranchBlock(name, channels, [[dirac(true), bn()]], null, shape);
    case 'ACB':
      return new BranchBlock(name, channels, [[conv(3, 3), bn()], [conv(1, 3), bn()], [conv(3, 1), bn()]], null, shape);
    case 'QARepVGG':
      return new BranchBlock(name, channels, withIdentity([[conv(3, 3), bn()], [conv(1, 1)]], []), bn(), shape);
  }
}
