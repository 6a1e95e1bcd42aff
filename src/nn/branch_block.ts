// A re-parameterizable block, training-time and fused. Every family (RepVGG's Table 6 designs,
// MobileOne, RepConv, QARepVGG, DBB) is the same shape:
//   train:   y = act( SE( postBN( Σ_branches chain(x) ) ) )      chain: linear stages, empty = identity
//   fused:   y = act( SE( conv_K(x) + b ) )
// so one module, with the family's state-dict names, and one fuser (src/reparam/fuse.ts; src/reparam/branches.ts builds the deploy block).

import { type FloatArray, Tensor, addInto } from '../tensor/tensor.js';
import { convGeometry } from '../ops/conv2d_geometry.js';
import { Module, type Parameter } from './module.js';
import { KeptArrays } from './kept_arrays.js';
import { flushBackground } from '../backend/threads.js';
import { BatchNorm2d, Conv2d, Identity, ReLU, SiLU } from './layers.js';
import { batchNormSum, batchNormSumBackward } from '../ops/batchnorm.js';
import type { SqueezeExcite } from './squeeze_excite.js';

export type Activation = 'relu' | 'silu' | 'none';

/** What the fuser needs to know of a block: its branches' stages and the fused conv's geometry. */
export interface LinearBranches {
  inChannels: number;
  outChannels: number;
  groups: number;
  stride: number;
  /** the fused conv: kernelSize × kernelSize, padding on each side */
  kernelSize: number;
  padding: number;
  /** each branch: its named stages, applied left to right (none: the identity) */
  branches: [string, Module][][];
  /** a BN after the sum (before SE and the activation) */
  post: [string, BatchNorm2d] | null;
}

export interface BranchBlockOptions {
  inChannels?: number;
  stride?: number;
  groups?: number;
  /** the fused conv's kernel size (default 3) and padding (default (kernelSize − 1)/2) */
  kernelSize?: number;
  padding?: number;
  /** state-dict names: per branch, per stage (default `branch{i}.{j}`) */
  names?: string[][];
  postName?: string;
  se?: SqueezeExcite | null;
  seName?: string;
  activation?: Activation;
  /** parameters that stages of several branches read (RepMixer's layer scale γ), listed once as the
   * block's own, under their state-dict names */
  shared?: [string, Parameter][];
}

function activationModule(a: Activation): Module {
  if (a === 'relu') return new ReLU();
  if (a === 'silu') return new SiLU();
  if (a === 'none') return new Identity();
  throw new Error(`activation '${String(a)}' is not one of relu, silu, none${String(a).toLowerCase() === 'gelu' ? " (FastViT's MobileOne blocks use GELU, which is not built here; the fused conv is the same, as the activation is outside the sum: build the block with activation 'none' and apply GELU after it)" : ''}`);
}

function freshOutput(chain: readonly Module[]): boolean {
  const last = chain[chain.length - 1];
  return last instanceof Conv2d || last instanceof BatchNorm2d;
}

/** Σ_branches chain(x) → optional post-addition BN → optional SE → activation (default ReLU). */
export class BranchBlock extends Module {
  readonly variant: string;
  /** output channels */
  readonly channels: number;
  readonly inChannels: number;
  readonly stride: number;
  readonly groups: number;
  readonly kernelSize: number;
  readonly padding: number;
  readonly branches: Module[][];
  readonly postBN: BatchNorm2d | null;
  readonly se: SqueezeExcite | null;
  readonly activation: Activation;
  private readonly names: string[][];
  private readonly postName: string;
  readonly seName: string;
  private readonly nonlinearity: Module;
  private readonly shared: [string, Parameter][];
  /** its tail convs' outputs (each BN keeps its input for the backward of the same forward), its tail
   * BNs' input gradients, a later branch's input gradient before the sum */
  private readonly kept = new KeptArrays();
  private inputShape: readonly number[] = [];

  constructor(variant: string, channels: number, branches: Module[][], postBN: BatchNorm2d | null, opts: BranchBlockOptions = {}) {
    super();
    this.variant = variant;
    this.channels = channels;
    this.inChannels = opts.inChannels ?? channels;
    this.stride = opts.stride ?? 1;
    this.groups = opts.groups ?? 1;
    this.kernelSize = opts.kernelSize ?? 3;
    this.padding = opts.padding ?? (this.kernelSize - 1) / 2;
    this.branches = branches;
    this.postBN = postBN;
    this.se = opts.se ?? null;
    this.activation = opts.activation ?? 'relu';
    this.names = opts.names ?? branches.map((chain, i) => chain.map((_, j) => `branch${i}.${j}`));
    this.postName = opts.postName ?? 'post_bn';
    this.seName = opts.seName ?? 'se';
    this.nonlinearity = activationModule(this.activation);
    this.shared = opts.shared ?? [];
  }

  override ownParameters(): [string, Parameter][] {
    return this.shared;
  }

  override children(): [string, Module][] {
    const c: [string, Module][] = [];
    this.branches.forEach((chain, i) => chain.forEach((m, j) => c.push([this.names[i][j], m])));
    if (this.postBN !== null) c.push([this.postName, this.postBN]);
    if (this.se !== null) c.push([this.seName, this.se]);
    return c;
  }

  linearBranches(): LinearBranches {
    return {
      inChannels: this.inChannels, outChannels: this.channels, groups: this.groups, stride: this.stride,
      kernelSize: this.kernelSize, padding: this.padding,
      branches: this.branches.map((chain, i) => chain.map((m, j): [string, Module] => [this.names[i][j], m])),
      post: this.postBN === null ? null : [this.postName, this.postBN],
    };
  }

  // The BNs that end every branch, when nothing but a ReLU (or no activation) follows the sum: then
  // the BN outputs, their sum and the ReLU are one op (batchNormSum) instead of a pass each.
  private bnTail(): BatchNorm2d[] | null {
    if (this.postBN !== null || this.se !== null || this.activation === 'silu') return null;
    const tail = this.branches.map((chain) => chain[chain.length - 1]);
    return tail.every((m) => m instanceof BatchNorm2d) ? tail as BatchNorm2d[] : null;
  }

  /** The output's shape for an input of shape (N, inChannels, H, W): (N, channels, Ho, Wo), the fused conv's. */
  outputShape(x: readonly number[]): number[] {
    const k = this.kernelSize;
    const { N, F, Ho, Wo } = convGeometry(x, [this.channels, this.inChannels / this.groups, k, k], this);
    return [N, F, Ho, Wo];
  }

  // x: (N, inChannels, H, W) → y: (N, channels, Ho, Wo), which may be written into `out` (of that
  // shape: the caller's array, kept from step to step; see PooledClassifier)
  forward(x: Tensor, out?: Tensor): Tensor {
    this.inputShape = x.shape;
    const bns = this.bnTail();
    if (bns !== null) {
      const hs = this.branches.map((chain, b) => {
        let h = x;
        for (let j = 0; j < chain.length - 1; j++) {
          const m = chain[j];
          if (j === chain.length - 2 && m instanceof Conv2d && h.shape.length === 4) {
            const { N, F, Ho, Wo } = convGeometry(h.shape, m.weight.data.shape, m);
            h = m.forward(h, this.kept.get(`conv${b}`, [N, F, Ho, Wo], h.dtype));
          } else h = m.forward(h);
        }
        return h;
      });
      const relu = this.activation === 'relu';
      const { y, saved } = batchNormSum(hs, bns.map((bn) => bn.opParams()), bns.map((bn) => bn.opOptions()), relu, out?.data);
      bns.forEach((bn, b) => bn.recordForward(hs[b], saved[b]));
      if (relu) (this.nonlinearity as ReLU).recordForward(y);
      return y;
    }
    let sum: Tensor | null = null;
    for (const chain of this.branches) {
      let h = x;
      for (const m of chain) h = m.forward(h);
      // the first branch's output becomes the sum: in place when its last stage is a conv or a BN (a
      // fresh array neither keeps), a copy otherwise (the identity returns x itself, ReLU keeps its output)
      if (sum === null) sum = freshOutput(chain) ? h : h.clone();
      else {
        addInto(sum.data, h.data);
      }
    }
    let z = this.postBN === null ? sum! : this.postBN.forward(sum!);
    if (this.se !== null) z = this.se.forward(z);
    return this.nonlinearity.forward(z);
  }

  // dy: (N, channels, Ho, Wo) → dx: (N, inChannels, H, W), which may be written into dxInto (x's
  // length and type: the caller's array)
  backward(dy: Tensor, dxInto?: FloatArray): Tensor {
    return this.backwardWith(dy, dxInto, true)!;
  }

  // dy: (N, channels, Ho, Wo): every parameter's gradient; the branches' first convs compute no dx
  override backwardParameters(dy: Tensor): void {
    this.backwardWith(dy, undefined, false);
  }

  private backwardWith(dy: Tensor, dxInto: FloatArray | undefined, inputGradient: boolean): Tensor | null {
    // each branch's gradient at its last stage's output (d), or, with a BN tail, at its last BN's
    // input: the tail's backward as one op (batchNormSumBackward), ReLU's gradient found once
    const bns = this.bnTail();
    let d = dy, tail: Tensor[] | null = null;
    if (bns !== null) {
      const records = bns.map((bn) => bn.forwardRecord());
      const y = this.activation === 'relu' ? (this.nonlinearity as ReLU).forwardRecord() : null;
      const into = records.map((r, b) => this.kept.get(`grad${b}`, r.x.shape, r.x.dtype).data);
      const grads = batchNormSumBackward(dy, y, records.map((r) => r.x), bns.map((bn) => bn.weight.data), records, records.map((r) => r.training), into);
      tail = grads.map((g, b) => bns[b].acceptGrads(g));
      // Inside a backgroundScope (a network's: PooledClassifier), the dW of each branch's conv that
      // reads the block's input goes to a worker, in one message, while this thread computes their
      // dx below (Conv2d.backwardWeightsInBackground): its input and its dy, the tail's gradient
      // this block keeps, stay as they are until the scope ends (a backward writes no forward
      // activation, and the block writes its kept arrays only in its next backward). Not where no
      // dx is wanted (a network's first block): this thread would only wait, so it makes those dW
      // itself while the worker finishes the later blocks'.
      if (inputGradient) {
        this.branches.forEach((chain, b) => {
          if (chain.length === 2 && chain[0] instanceof Conv2d) chain[0].backwardWeightsInBackground(tail![b]);
        });
        flushBackground();
      }
    } else {
      d = this.nonlinearity.backward(dy);
      if (this.se !== null) d = this.se.backward(d);
      if (this.postBN !== null) d = this.postBN.backward(d);
    }
    let dx: Tensor | null = null; // the input's shape: a stage's first block changes it
    this.branches.forEach((chain, b) => {
      let g = tail === null ? d : tail[b];
      const start = g; // the caller's (or the block's own, kept) array: never returned as dx
      const stages = chain.length - (tail === null ? 0 : 1); // those before the tail BN, if any
      let added = false;
      for (let j = stages - 1; j >= 0; j--) {
        const m = chain[j];
        // the first branch's conv writes its input gradient into dxInto, a later one's adds its own
        // into dx (dx[i] += its value, as below)
        if (j > 0) g = m.backward(g);
        else if (!inputGradient) m.backwardParameters(g);
        else if (m instanceof Conv2d && this.inputShape.length === 4 && dx !== null) {
          m.backwardAdding(g, dx.data);
          added = true;
        } else if (m instanceof Conv2d && this.inputShape.length === 4) g = m.backward(g, dxInto);
        else g = m.backward(g);
      }
      if (!inputGradient || added) return;
      // the first branch's gradient becomes dx: a copy where no stage made a new array
      if (dx === null) {
        if (g !== start) dx = g;
        else if (dxInto === undefined) dx = g.clone();
        else {
          dxInto.set(g.data);
          dx = new Tensor(dxInto, g.shape);
        }
      }
      else {
        addInto(dx.data, g.data);
      }
    });
    return dx;
  }
}

/** A fused block: act(SE(conv(x))) with the conv's bias; the conv's name is the family's deploy key. */
export class FusedBlock extends Module {
  readonly conv: Conv2d;
  readonly se: SqueezeExcite | null;
  readonly activation: Activation;
  private readonly convName: string;
  readonly seName: string;
  private readonly nonlinearity: Module;

  constructor(conv: Conv2d, opts: { convName: string; se?: SqueezeExcite | null; seName?: string; activation: Activation }) {
    super();
    this.conv = conv;
    this.se = opts.se ?? null;
    this.activation = opts.activation;
    this.convName = opts.convName;
    this.seName = opts.seName ?? 'se';
    this.nonlinearity = activationModule(this.activation);
  }

  override children(): [string, Module][] {
    return this.se === null ? [[this.convName, this.conv]] : [[this.convName, this.conv], [this.seName, this.se]];
  }

  forward(x: Tensor): Tensor {
    let z = this.conv.forward(x);
    if (this.se !== null) z = this.se.forward(z);
    return this.nonlinearity.forward(z);
  }

  backward(dy: Tensor): Tensor {
    let d = this.nonlinearity.backward(dy);
    if (this.se !== null) d = this.se.backward(d);
    return this.conv.backward(d);
  }
}
