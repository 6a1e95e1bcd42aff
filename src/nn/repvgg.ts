// RepVGG, training-time and deploy-time, with the public implementation's module names:
//   block (train):  y = ReLU( BN(conv3×3(x)) + BN(conv1×1(x)) + BN(x) )   → rbr_dense, rbr_1x1, rbr_identity
//   block (deploy): y = ReLU( conv3×3(x) + b )                             → rbr_reparam
//   model:          stage0 → stage1..4 → global average pool → linear     (StageNet)
// The block is a BranchBlock like every family's (src/nn/branch_block.ts), so the one fuser reads it
// as it reads theirs; RepVGG-D2se's SE sits after the sum.

import { getThreads, isShared } from '../backend/threads.js';
import { Tensor, allocLike, sharedArrayLike, type DType, type FloatArray } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { fmtShape } from '../tensor/check.js';
import { Module } from './module.js';
import { BatchNorm2d, Conv2d } from './layers.js';
import { type BlockSpec, type RepVGGConfig, type RepVGGPlan, planFromConfig } from './config.js';
import { type Activation, BranchBlock } from './branch_block.js';
import { SqueezeExcite } from './squeeze_excite.js';
import { type ModelOptions, StageNet } from './stage_net.js';

/** BatchNorm2d's options a block passes to each of its BNs (PyTorch's defaults: eps 1e-5, momentum 0.1). */
export interface BNOptions {
  eps?: number;
  momentum?: number;
}

/** conv (no bias) followed by BatchNorm: the public `conv_bn` Sequential (children 'conv', 'bn'). */
export class ConvBN extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(cin: number, cout: number, kernel: number, stride: number, padding: number, groups: number, dtype: DType, rng: Rng, init?: boolean, bn: BNOptions = {}) {
    super();
    this.conv = new Conv2d(cin, cout, kernel, { stride, padding, groups, bias: false, dtype, rng, init });
    this.bn = new BatchNorm2d(cout, { dtype, eps: bn.eps, momentum: bn.momentum });
  }

  override children(): [string, Module][] {
    return [['conv', this.conv], ['bn', this.bn]];
  }

  forward(x: Tensor): Tensor {
    return this.bn.forward(this.conv.forward(x));
  }

  backward(dy: Tensor): Tensor {
    return this.conv.backward(this.bn.backward(dy));
  }
}

export type { AlgorithmPlanEntry } from './conv_algorithm.js';
export type { ModelOptions } from './stage_net.js';

export interface RepVGGBlockOptions extends ModelOptions, BNOptions {
  deploy?: boolean;
  /** squeeze-and-excitation after the sum (RepVGG-D2se): SEBlock(out, out // 16), 'se.down', 'se.up' */
  se?: boolean;
  /** default 'relu', as the public block */
  activation?: Activation;
}

export class RepVGGBlock extends BranchBlock {
  readonly spec: BlockSpec;
  readonly rbrDense: ConvBN | null;
  readonly rbr1x1: ConvBN | null;
  readonly rbrIdentity: BatchNorm2d | null;
  readonly rbrReparam: Conv2d | null;

  constructor(spec: BlockSpec, opts: RepVGGBlockOptions = {}) {
    const dtype = opts.dtype ?? 'float32';
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const { inChannels: cin, outChannels: cout, stride, groups } = spec;
    if (spec.identity && (cin !== cout || stride !== 1)) throw new Error(`RepVGGBlock: an identity branch needs in = out channels and stride 1 (got ${cin}→${cout}, stride ${stride})`);
    const bn = { eps: opts.eps, momentum: opts.momentum };
    // branches in the order the public forward sums them: dense + 1×1 + identity
    let reparam: Conv2d | null = null, dense: ConvBN | null = null, pointwise: ConvBN | null = null, identity: BatchNorm2d | null = null;
    const chains: [string, Module][][] = [];
    if (opts.deploy === true) {
      reparam = new Conv2d(cin, cout, 3, { stride, padding: 1, groups, bias: true, dtype, rng, init: opts.init });
      chains.push([['rbr_reparam', reparam]]);
    } else {
      identity = spec.identity ? new BatchNorm2d(cin, { dtype, ...bn }) : null;
      dense = new ConvBN(cin, cout, 3, stride, 1, groups, dtype, rng, opts.init, bn);
      pointwise = spec.pointwise ? new ConvBN(cin, cout, 1, stride, 0, groups, dtype, rng, opts.init, bn) : null;
      chains.push([['rbr_dense.conv', dense.conv], ['rbr_dense.bn', dense.bn]]);
      if (pointwise !== null) chains.push([['rbr_1x1.conv', pointwise.conv], ['rbr_1x1.bn', pointwise.bn]]);
      if (identity !== null) chains.push([['rbr_identity', identity]]);
    }
    const se = opts.se === true ? new SqueezeExcite(cout, Math.max(1, Math.floor(cout / 16)), { dtype, rng, names: ['down', 'up'] }) : null;
    super(se === null ? 'RepVGG' : 'RepVGG-SE', cout, chains.map((c) => c.map(([, m]) => m)), null, {
      inChannels: cin, stride, groups, kernelSize: 3, padding: 1, names: chains.map((c) => c.map(([n]) => n)),
      se, seName: 'se', activation: opts.activation ?? 'relu',
    });
    this.spec = spec;
    this.rbrReparam = reparam;
    this.rbrDense = dense;
    this.rbr1x1 = pointwise;
    this.rbrIdentity = identity;
  }

  get deploy(): boolean {
    return this.rbrReparam !== null;
  }

  // the public module's registration order: se, then rbr_reparam or rbr_identity, rbr_dense, rbr_1x1
  override children(): [string, Module][] {
    const c: [string, Module][] = this.se === null ? [] : [[this.seName, this.se]];
    if (this.rbrReparam !== null) return [...c, ['rbr_reparam', this.rbrReparam]];
    if (this.rbrIdentity !== null) c.push(['rbr_identity', this.rbrIdentity]);
    c.push(['rbr_dense', this.rbrDense!]);
    if (this.rbr1x1 !== null) c.push(['rbr_1x1', this.rbr1x1]);
    return c;
  }

  // x: (N, C, H, W) → y: (N, F, Ho, Wo); a deploy block in eval mode may write into `out`
  override forward(x: Tensor, out?: Tensor): Tensor {
    // Inference on the plain topology: bias and ReLU in the conv's own output pass (the deploy
    // epilogue), written into the model's ping-pong buffer; the same bits as conv then relu().
    if (this.rbrReparam !== null && !this.training && this.se === null && this.activation === 'relu') return this.rbrReparam.forward(x, out, true);
    return super.forward(x, out);
  }
}

export class RepVGG extends StageNet<RepVGGBlock> {
  constructor(plan: RepVGGPlan, opts: ModelOptions & { deploy?: boolean } = {}) {
    super(plan, (spec, o) => new RepVGGBlock(spec, { ...o, deploy: opts.deploy }), opts);
  }

  /** Build from the public constructor's arguments (num_blocks, width_multiplier, …). */
  static fromConfig(cfg: RepVGGConfig, opts: ModelOptions & { deploy?: boolean } = {}): RepVGG {
    return new RepVGG(planFromConfig(cfg), opts);
  }

  get deploy(): boolean {
    return this.stage0.deploy;
  }

  // x: (N, in_channels, H, W) → logits: (N, num_classes)
  override forward(x: Tensor): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== this.plan.inChannels) {
      throw new Error(`RepVGG: input shape ${fmtShape(x.shape)} does not match (N, ${this.plan.inChannels}, H, W)`);
    }
    if (x.dtype !== this.dtype) throw new Error(`RepVGG: input dtype ${x.dtype} does not match the model's ${this.dtype}`);
    if (!this.deploy || this.training) return super.forward(x);
    // Inference on the plain chain: activations ping-pong between two buffers the model keeps, so
    // a steady-state forward allocates only the pooled features and the logits.
    let h = x;
    this.blocks().forEach((b, i) => { h = b.forward(h, this.activationBuffer((i % 2) as 0 | 1, h, b.spec)); });
    return this.head(h);
  }

  private activations: [FloatArray | null, FloatArray | null] = [null, null];

  // A view of activation buffer `slot` shaped as block b's output for input h (grown, never shrunk).
  private activationBuffer(slot: 0 | 1, h: Tensor, b: BlockSpec): Tensor {
    const [N, , H, W] = h.shape;
    const Ho = Math.floor((H - 1) / b.stride) + 1, Wo = Math.floor((W - 1) / b.stride) + 1;
    const n = N * b.outChannels * Ho * Wo;
    let buf = this.activations[slot];
    const shared = getThreads() > 1; // then in shared memory, where the pool's workers write directly
    if (buf === null || buf.length < n || (buf instanceof Float64Array) !== (h.data instanceof Float64Array) || isShared(buf) !== shared) {
      const len = Math.max(n, buf === null ? 0 : buf.length);
      buf = this.activations[slot] = shared ? sharedArrayLike(len, h.data) : allocLike(h.data, len);
    }
    return new Tensor(buf.subarray(0, n), [N, b.outChannels, Ho, Wo]);
  }
}
