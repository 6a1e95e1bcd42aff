// The other re-parameterizable blocks the RepVGG paper (Table 6) compares against, as training-time
// modules with forward and backward. A block is a sum of parallel branches, each a chain of stages
// (conv, BN, DiracConv, ReLU; an empty chain is the identity), an optional BN after the addition,
// then ReLU. All map C → C channels with stride 1 and 'same' padding.

import { Tensor, allocArray, type DType } from '../tensor/tensor.js';
import { Rng, uniform } from '../tensor/rng.js';
import { conv2d, conv2dBackward } from '../ops/conv2d.js';
import { Module, Parameter, defaultInitBound } from './module.js';
import { BatchNorm2d, Conv2d, ReLU } from './layers.js';

/**
 * DiracNet's parameterisation of a 3×3 conv: Ŵ = diag(a)·I + diag(b)·W_norm, with W_norm the kernel
 * normalised per output filter (‖W_norm[f]‖₂ = 1) and I the identity kernel. With `trivial`, a = b = 1
 * and W is not normalised: Ŵ = I + W ('Trivial Re-param').
 */
export class DiracConv2d extends Module {
  readonly weight: Parameter;
  readonly a: Parameter | null;
  readonly b: Parameter | null;
  readonly trivial: boolean;
  private x: Tensor | null = null;
  private norms: Float64Array | null = null;

  // weight: (C, C, 3, 3)
  constructor(channels: number, opts: { trivial?: boolean; dtype?: DType; rng?: Rng } = {}) {
    super();
    const dtype = opts.dtype ?? 'float32';
    const bound = defaultInitBound(channels * 9);
    this.trivial = opts.trivial ?? false;
    this.weight = new Parameter(uniform([channels, channels, 3, 3], opts.rng ?? new Rng(0), -bound, bound, dtype));
    this.a = this.trivial ? null : new Parameter(new Tensor(allocArray(dtype, channels).fill(1), [channels]));
    this.b = this.trivial ? null : new Parameter(new Tensor(allocArray(dtype, channels).fill(1), [channels]));
  }

  override ownParameters(): [string, Parameter][] {
    return this.trivial ? [['weight', this.weight]] : [['weight', this.weight], ['a', this.a!], ['b', this.b!]];
  }

  /** Ŵ (C, C, 3, 3); also remembers ‖W[f]‖ for the backward pass. */
  effectiveKernel(dtype: DType = this.weight.data.dtype): Tensor {
    const W = this.weight.data;
    const [C] = W.shape;
    const per = C * 9;
    const out = allocArray(dtype, W.size);
    const norms = new Float64Array(C);
    for (let f = 0; f < C; f++) {
      let ss = 0;
      for (let i = 0; i < per; i++) ss += W.data[f * per + i] ** 2;
      norms[f] = Math.sqrt(ss);
      const scale = this.trivial ? 1 : this.b!.data.data[f] / norms[f];
      for (let i = 0; i < per; i++) out[f * per + i] = W.data[f * per + i] * scale;
      out[f * per + f * 9 + 4] += this.trivial ? 1 : this.a!.data.data[f];
    }
    this.norms = norms;
    return new Tensor(out, W.shape);
  }

  forward(x: Tensor): Tensor {
    this.x = x;
    return conv2d(x, this.effectiveKernel(), null, { padding: 1 });
  }

  // dŴ from the conv, then: da_f = dŴ[f, f, centre],  db_f = ⟨dŴ_f, ŵ_f⟩,
  // dW_f = (b_f/‖W_f‖)·(dŴ_f − ŵ_f⟨ŵ_f, dŴ_f⟩) with ŵ_f = W_f/‖W_f‖ (trivial: dW = dŴ)
  backward(dy: Tensor): Tensor {
    if (this.x === null || this.norms === null) throw new Error('DiracConv2d.backward: call forward first');
    const Wh = this.effectiveKernel();
    const g = conv2dBackward(dy, this.x, Wh, { padding: 1 }, { db: false });
    const dWh = g.dw!.data;
    const W = this.weight.data.data;
    const C = this.weight.data.shape[0];
    const per = C * 9;
    const dW = allocArray(this.weight.data.dtype, W.length);
    for (let f = 0; f < C; f++) {
      if (this.trivial) {
        for (let i = 0; i < per; i++) dW[f * per + i] = dWh[f * per + i];
        continue;
      }
      const n = this.norms[f];
      let dot = 0;
      for (let i = 0; i < per; i++) dot += (W[f * per + i] / n) * dWh[f * per + i];
      this.a!.grad.data[f] += dWh[f * per + f * 9 + 4];
      this.b!.grad.data[f] += dot;
      const bf = this.b!.data.data[f];
      for (let i = 0; i < per; i++) dW[f * per + i] = (bf / n) * (dWh[f * per + i] - (W[f * per + i] / n) * dot);
    }
    this.weight.accumulate(new Tensor(dW, this.weight.data.shape));
    return g.dx!;
  }
}

/** Σ_branches chain(x) → optional post-addition BN → ReLU. */
export class BranchBlock extends Module {
  readonly variant: string;
  readonly channels: number;
  readonly branches: Module[][];
  readonly postBN: BatchNorm2d | null;
  private readonly nonlinearity = new ReLU();

  constructor(variant: string, channels: number, branches: Module[][], postBN: BatchNorm2d | null) {
    super();
    this.variant = variant;
    this.channels = channels;
    this.branches = branches;
    this.postBN = postBN;
  }

  override children(): [string, Module][] {
    const c: [string, Module][] = [];
    this.branches.forEach((chain, i) => chain.forEach((m, j) => c.push([`branch${i}.${j}`, m])));
    if (this.postBN !== null) c.push(['post_bn', this.postBN]);
    return c;
  }

  forward(x: Tensor): Tensor {
    let sum: Tensor | null = null;
    for (const chain of this.branches) {
      let h = x;
      for (const m of chain) h = m.forward(h);
      if (sum === null) sum = h.clone(); // stages may keep their outputs for backward (ReLU does)
      else for (let i = 0; i < sum.size; i++) sum.data[i] += h.data[i];
    }
    const z = this.postBN === null ? sum! : this.postBN.forward(sum!);
    return this.nonlinearity.forward(z);
  }

  backward(dy: Tensor): Tensor {
    let d = this.nonlinearity.backward(dy);
    if (this.postBN !== null) d = this.postBN.backward(d);
    const dx = new Tensor(allocArray(d.dtype, d.size), d.shape);
    for (const chain of this.branches) {
      let g = d;
      for (let j = chain.length - 1; j >= 0; j--) g = chain[j].backward(g);
      for (let i = 0; i < dx.size; i++) dx.data[i] += g.data[i];
    }
    return dx;
  }
}

/** The block designs of the RepVGG paper's Table 6, by the paper's names. */
export const VARIANTS = ['RepVGG', 'Identity w/o BN', 'Post-addition BN', '+ReLU in branch', 'DiracNet', 'Trivial Re-param', 'ACB'] as const;
export type VariantName = (typeof VARIANTS)[number];

export function variantBlock(name: VariantName, channels: number, opts: { dtype?: DType; seed?: number; groups?: number } = {}): BranchBlock {
  const dtype = opts.dtype ?? 'float32';
  const rng = new Rng(opts.seed ?? 0);
  const groups = opts.groups ?? 1;
  const conv = (kh: number, kw: number, bias = false) =>
    new Conv2d(channels, channels, [kh, kw], { padding: [(kh - 1) / 2, (kw - 1) / 2], groups, bias, dtype, rng });
  const bn = () => new BatchNorm2d(channels, { dtype });
  switch (name) {
    case 'RepVGG':
      return new BranchBlock(name, channels, [[conv(3, 3), bn()], [conv(1, 1), bn()], [bn()]], null);
    case 'Identity w/o BN':
      return new BranchBlock(name, channels, [[conv(3, 3), bn()], [conv(1, 1), bn()], []], null);
    case 'Post-addition BN':
      return new BranchBlock(name, channels, [[conv(3, 3)], [conv(1, 1)], []], bn());
    case '+ReLU in branch':
      return new BranchBlock(name, channels, [[conv(3, 3), bn(), new ReLU()], [conv(1, 1), bn(), new ReLU()], [bn(), new ReLU()]], null);
    case 'DiracNet':
      return new BranchBlock(name, channels, [[new DiracConv2d(channels, { dtype, rng }), bn()]], null);
    case 'Trivial Re-param':
      return new BranchBlock(name, channels, [[new DiracConv2d(channels, { trivial: true, dtype, rng }), bn()]], null);
    case 'ACB':
      return new BranchBlock(name, channels, [[conv(3, 3), bn()], [conv(1, 3), bn()], [conv(3, 1), bn()]], null);
  }
}
