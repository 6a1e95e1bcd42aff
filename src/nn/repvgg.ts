// RepVGG, training-time and deploy-time, with the public implementation's module names:
//   block (train):  y = ReLU( BN(conv3×3(x)) + BN(conv1×1(x)) + BN(x) )   → rbr_dense, rbr_1x1, rbr_identity
//   block (deploy): y = ReLU( conv3×3(x) + b )                             → rbr_reparam
//   model:          stage0 → stage1..4 → global average pool → linear

import { getThreads, isShared } from '../backend/threads.js';
import { Tensor, allocLike, sharedArrayLike, type DType, type FloatArray } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { globalAvgPool, globalAvgPoolBackward } from '../ops/pool.js';
import type { ConvAlgorithm } from '../ops/conv2d.js';
import { fmtShape } from '../tensor/check.js';
import { Module } from './module.js';
import { BatchNorm2d, Conv2d, Linear, ReLU } from './layers.js';
import { type BlockSpec, type RepVGGConfig, type RepVGGPlan, planFromConfig } from './config.js';
import { type AlgorithmPlanEntry, algorithmPlanOf, pinAlgorithmPlan, setConvAlgorithm } from './conv_algorithm.js';
import type { LinearBranches } from './branch_block.js';

/** conv (no bias) followed by BatchNorm: the public `conv_bn` Sequential (children 'conv', 'bn'). */
export class ConvBN extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(cin: number, cout: number, kernel: number, stride: number, padding: number, groups: number, dtype: DType, rng: Rng, init?: boolean) {
    super();
    this.conv = new Conv2d(cin, cout, kernel, { stride, padding, groups, bias: false, dtype, rng, init });
    this.bn = new BatchNorm2d(cout, { dtype });
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

export interface ModelOptions {
  dtype?: DType;
  /** seed of the deterministic initialisation */
  seed?: number;
  rng?: Rng;
  /** false: zero parameters instead of PyTorch's default init (for models about to be loaded) */
  init?: boolean;
}

export class RepVGGBlock extends Module {
  readonly spec: BlockSpec;
  readonly rbrDense: ConvBN | null;
  readonly rbr1x1: ConvBN | null;
  readonly rbrIdentity: BatchNorm2d | null;
  readonly rbrReparam: Conv2d | null;
  private readonly nonlinearity = new ReLU();

  constructor(spec: BlockSpec, opts: ModelOptions & { deploy?: boolean } = {}) {
    super();
    this.spec = spec;
    const dtype = opts.dtype ?? 'float32';
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const { inChannels: cin, outChannels: cout, stride, groups } = spec;
    if (spec.identity && (cin !== cout || stride !== 1)) throw new Error(`RepVGGBlock: an identity branch needs in = out channels and stride 1 (got ${cin}→${cout}, stride ${stride})`);
    if (opts.deploy === true) {
      this.rbrReparam = new Conv2d(cin, cout, 3, { stride, padding: 1, groups, bias: true, dtype, rng, init: opts.init });
      this.rbrDense = this.rbr1x1 = this.rbrIdentity = null;
    } else {
      this.rbrReparam = null;
      this.rbrIdentity = spec.identity ? new BatchNorm2d(cin, { dtype }) : null;
      this.rbrDense = new ConvBN(cin, cout, 3, stride, 1, groups, dtype, rng, opts.init);
      this.rbr1x1 = spec.pointwise ? new ConvBN(cin, cout, 1, stride, 0, groups, dtype, rng, opts.init) : null;
    }
  }

  get deploy(): boolean {
    return this.rbrReparam !== null;
  }

  override children(): [string, Module][] {
    if (this.rbrReparam !== null) return [['rbr_reparam', this.rbrReparam]];
    const c: [string, Module][] = [];
    if (this.rbrIdentity !== null) c.push(['rbr_identity', this.rbrIdentity]);
    c.push(['rbr_dense', this.rbrDense!]);
    if (this.rbr1x1 !== null) c.push(['rbr_1x1', this.rbr1x1]);
    return c;
  }

  /** The branches as the one fuser reads them (src/reparam/fuse.ts); a deploy block is its one conv. */
  linearBranches(): LinearBranches {
    const { inChannels, outChannels, groups, stride } = this.spec;
    const branches: [string, Module][][] = this.rbrReparam !== null
      ? [[['rbr_reparam', this.rbrReparam]]]
      : [
        [['rbr_dense.conv', this.rbrDense!.conv], ['rbr_dense.bn', this.rbrDense!.bn]],
        ...(this.rbr1x1 === null ? [] : [[['rbr_1x1.conv', this.rbr1x1.conv], ['rbr_1x1.bn', this.rbr1x1.bn]] as [string, Module][]]),
        ...(this.rbrIdentity === null ? [] : [[['rbr_identity', this.rbrIdentity]] as [string, Module][]]),
      ];
    return { inChannels, outChannels, groups, stride, kernelSize: 3, padding: 1, branches, post: null };
  }

  // x: (N, C, H, W) → y: (N, F, Ho, Wo); a deploy block in eval mode may write into `out`
  forward(x: Tensor, out?: Tensor): Tensor {
    if (this.rbrReparam !== null) {
      if (this.training) return this.nonlinearity.forward(this.rbrReparam.forward(x));
      // Inference on the plain topology: bias and ReLU in the conv's own output pass (the deploy
      // epilogue), written into the model's ping-pong buffer; the same bits as conv then relu().
      return this.rbrReparam.forward(x, out, true);
    }
    const sum = this.rbrDense!.forward(x);
    const s = sum.data;
    if (this.rbr1x1 !== null) {
      const p = this.rbr1x1.forward(x).data;
      for (let i = 0; i < s.length; i++) s[i] += p[i];
    }
    if (this.rbrIdentity !== null) {
      const p = this.rbrIdentity.forward(x).data;
      for (let i = 0; i < s.length; i++) s[i] += p[i];
    }
    return this.nonlinearity.forward(sum);
  }

  // dy → dx = Σ_branch branch.backward(dReLU)
  backward(dy: Tensor): Tensor {
    const ds = this.nonlinearity.backward(dy);
    if (this.rbrReparam !== null) return this.rbrReparam.backward(ds);
    const dx = this.rbrDense!.backward(ds);
    const d = dx.data;
    for (const branch of [this.rbr1x1, this.rbrIdentity]) {
      if (branch === null) continue;
      const p = branch.backward(ds).data;
      for (let i = 0; i < d.length; i++) d[i] += p[i];
    }
    return dx;
  }
}

export class RepVGG extends Module {
  readonly plan: RepVGGPlan;
  readonly stage0: RepVGGBlock;
  /** stage1..stage4 */
  readonly stages: RepVGGBlock[][];
  readonly linear: Linear;
  private featShape: readonly number[] | null = null;

  constructor(plan: RepVGGPlan, opts: ModelOptions & { deploy?: boolean } = {}) {
    super();
    this.plan = plan;
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const o = { ...opts, rng };
    this.stage0 = new RepVGGBlock(plan.stages[0][0], o);
    this.stages = plan.stages.slice(1).map((blocks) => blocks.map((b) => new RepVGGBlock(b, o)));
    const last = plan.stages[plan.stages.length - 1];
    this.linear = new Linear(last[last.length - 1].outChannels, plan.numClasses, { dtype: opts.dtype, rng, init: opts.init });
  }

  /** Build from the public constructor's arguments (num_blocks, width_multiplier, …). */
  static fromConfig(cfg: RepVGGConfig, opts: ModelOptions & { deploy?: boolean } = {}): RepVGG {
    return new RepVGG(planFromConfig(cfg), opts);
  }

  get deploy(): boolean {
    return this.stage0.deploy;
  }

  get dtype(): DType {
    return this.linear.weight.data.dtype;
  }

  get inChannels(): number {
    return this.plan.inChannels;
  }

  get numClasses(): number {
    return this.plan.numClasses;
  }

  override children(): [string, Module][] {
    const c: [string, Module][] = [['stage0', this.stage0]];
    this.stages.forEach((blocks, s) => blocks.forEach((b, i) => c.push([`stage${s + 1}.${i}`, b])));
    c.push(['linear', this.linear]);
    return c;
  }

  blocks(): RepVGGBlock[] {
    return [this.stage0, ...this.stages.flat()];
  }

  /**
   * Algorithm of every conv. 'winograd' runs Winograd where it applies (the 3×3 stride-1 convs) and
   * im2col for the others (stride 2, 1×1): each conv decides by ops' one rule, winogradApplies.
   */
  setAlgorithm(algorithm: ConvAlgorithm): this {
    setConvAlgorithm(this, algorithm);
    return this;
  }

  /** Every conv with its state-dict prefix ('stage1.0.rbr_dense.conv'), in forward order. */
  namedConvs(): [string, Conv2d][] {
    const out: [string, Conv2d][] = [];
    for (const [name, m] of this.children()) {
      if (!(m instanceof RepVGGBlock)) continue;
      if (m.rbrReparam !== null) out.push([`${name}.rbr_reparam`, m.rbrReparam]);
      else {
        out.push([`${name}.rbr_dense.conv`, m.rbrDense!.conv]);
        if (m.rbr1x1 !== null) out.push([`${name}.rbr_1x1.conv`, m.rbr1x1.conv]);
      }
    }
    return out;
  }

  /**
   * What each conv ran in the last forward ('auto' resolved to what it measured), so a run can be
   * reported, saved and pinned with setAlgorithmPlan. Throws before the first forward.
   */
  algorithmPlan(): AlgorithmPlanEntry[] {
    return algorithmPlanOf(this.namedConvs(), 'RepVGG');
  }

  /** Pin every conv to the plan's algorithm: no timing decides anything afterwards. */
  setAlgorithmPlan(plan: readonly AlgorithmPlanEntry[]): this {
    pinAlgorithmPlan(this.namedConvs(), plan);
    return this;
  }

  // x: (N, in_channels, H, W) → logits: (N, num_classes)
  forward(x: Tensor): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== this.plan.inChannels) {
      throw new Error(`RepVGG: input shape ${fmtShape(x.shape)} does not match (N, ${this.plan.inChannels}, H, W)`);
    }
    if (x.dtype !== this.dtype) throw new Error(`RepVGG: input dtype ${x.dtype} does not match the model's ${this.dtype}`);
    let h: Tensor;
    if (this.deploy && !this.training) {
      // Inference on the plain chain: activations ping-pong between two buffers the model keeps, so
      // a steady-state forward allocates only the pooled features and the logits.
      h = x;
      this.blocks().forEach((b, i) => { h = b.forward(h, this.arenaSlot((i % 2) as 0 | 1, h, b.spec)); });
    } else {
      h = this.stage0.forward(x);
      for (const blocks of this.stages) for (const b of blocks) h = b.forward(h);
    }
    this.featShape = h.shape;
    return this.linear.forward(globalAvgPool(h));
  }

  private arena: [FloatArray | null, FloatArray | null] = [null, null];

  // A view of arena buffer `slot` shaped as block b's output for input h (grown, never shrunk).
  private arenaSlot(slot: 0 | 1, h: Tensor, b: BlockSpec): Tensor {
    const [N, , H, W] = h.shape;
    const Ho = Math.floor((H - 1) / b.stride) + 1, Wo = Math.floor((W - 1) / b.stride) + 1;
    const n = N * b.outChannels * Ho * Wo;
    let buf = this.arena[slot];
    const shared = getThreads() > 1; // then in shared memory, where the pool's workers write directly
    if (buf === null || buf.length < n || (buf instanceof Float64Array) !== (h.data instanceof Float64Array) || isShared(buf) !== shared) {
      const len = Math.max(n, buf === null ? 0 : buf.length);
      buf = this.arena[slot] = shared ? sharedArrayLike(len, h.data) : allocLike(h.data, len);
    }
    return new Tensor(buf.subarray(0, n), [N, b.outChannels, Ho, Wo]);
  }

  // dlogits: (N, num_classes) → dx: (N, in_channels, H, W)
  backward(dy: Tensor): Tensor {
    if (this.featShape === null) throw new Error('RepVGG.backward: call forward first');
    let d = globalAvgPoolBackward(this.linear.backward(dy), this.featShape);
    for (let s = this.stages.length - 1; s >= 0; s--) {
      for (let i = this.stages[s].length - 1; i >= 0; i--) d = this.stages[s][i].backward(d);
    }
    return this.stage0.backward(d);
  }
}
