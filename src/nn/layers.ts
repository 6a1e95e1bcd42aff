// Conv2d, BatchNorm2d, ReLU and Linear modules with PyTorch's arguments, defaults and state names.

import { Tensor, full, sharedArrayLike, zeros, type DType, type FloatArray } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { type AlgorithmChoice, type ConvAlgorithm, type Conv2dGrads, type Conv2dOptions, type Padding, type Pair, algorithmFor, autoAlgorithm, conv2d, conv2dBackward, conv2dWeightGradInBackground, measuredAlgorithm, winogradApplies } from '../ops/conv2d.js';
import { convGeometry, convMacs, kernelGeometry } from '../ops/conv2d_geometry.js';
import type { WinogradTile } from '../ops/conv2d_winograd.js';
import { PreparedConv } from '../ops/conv2d_prepared.js';
import { type BatchNormGrads, type BatchNormOptions, type BatchNormParams, batchNorm2d, batchNorm2dBackward } from '../ops/batchnorm.js';
import { relu, reluBackward } from '../ops/relu.js';
import { silu, siluBackward } from '../ops/sigmoid.js';
import { type AvgPoolOptions, avgPool2d, avgPool2dBackward } from '../ops/pool.js';
import { linear, linearBackward, linearPrepared, linearTakesW } from '../ops/linear.js';
import { backgroundPossible, getThreads } from '../backend/threads.js';
import { type StateBuffer, Module, Parameter, defaultInitBound, newWeight } from './module.js';
import type { FuseStage } from './fuse_stage.js';

export interface Conv2dModuleOptions {
  stride?: Pair;
  padding?: Padding;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  dtype?: DType;
  rng?: Rng;
  /** false: start from zeros (the values will be loaded); default true, PyTorch's default init */
  init?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: Pair;
  readonly padding: Padding;
  readonly dilation: Pair;
  readonly groups: number;
  /** Conv algorithm: forward as named; backward computes dw on the GEMM path and dx with Winograd where forward uses it. */
  algorithm: ConvAlgorithm = 'auto';
  /** F(4×4,3×3) or F(2×2,3×3) when algorithm is 'winograd' */
  winogradTile: WinogradTile = 4;
  /** What the last forward actually ran ('auto' resolved), for RepVGG.algorithmPlan. */
  used: AlgorithmChoice | { algorithm: 'direct'; winogradTile: WinogradTile } | null = null;
  /** forwards run under 'auto' (it times this conv's shape only after AUTO_AFTER of them) */
  private autoCalls = 0;
  private x: Tensor | null = null;
  /** the weights prepared for inference (Winograd's U, im2col's filters, the workers' copy), per weight version */
  private readonly prepared = new PreparedConv(true);
  /** dW queued for a worker for the next backward (backwardWeightsInBackground) */
  private weightsAway = false;

  // weight: (out, in/groups, k, k)
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dModuleOptions = {}) {
    super();
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    this.groups = opts.groups ?? 1;
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`Conv2d: channels ${inChannels}→${outChannels} are not divisible by groups ${this.groups}`);
    }
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    const dtype = opts.dtype ?? 'float32';
    const fanIn = (inChannels / this.groups) * kh * kw;
    const bound = defaultInitBound(fanIn);
    const rng = opts.rng ?? new Rng(0);
    const make = (shape: number[]) => newWeight(shape, dtype, opts.init === false ? null : { rng, lo: -bound, hi: bound });
    this.weight = new Parameter(make([outChannels, inChannels / this.groups, kh, kw]));
    this.bias = opts.bias === false ? null : new Parameter(make([outChannels]));
  }

  override ownParameters(): [string, Parameter][] {
    return this.bias === null ? [['weight', this.weight]] : [['weight', this.weight], ['bias', this.bias]];
  }

  /** Multiply-adds of the last forward (0 before any), from its input's shape. */
  lastMacs(): number {
    if (this.x === null) return 0;
    return convMacs(convGeometry(this.x.shape.length === 3 ? [1, ...this.x.shape] : this.x.shape, this.weight.data.shape, this.convOptions()));
  }

  private convOptions() {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups };
  }

  /** Whether Winograd can run this conv (ops' one rule: 3×3, stride 1, dilation 1, padding ≤ 2). */
  get winogradApplies(): boolean {
    return winogradApplies(kernelGeometry(this.weight.data.shape, this.convOptions()));
  }

  /** `algorithm` as it runs here: 'winograd' means im2col where Winograd does not apply. */
  private runAlgorithm(): ConvAlgorithm {
    return algorithmFor(this.algorithm, kernelGeometry(this.weight.data.shape, this.convOptions()));
  }

  // The weights where the pool's workers can read them. In eval mode, with threads: the copy in
  // shared memory the prepared weights keep per version (training copies per call, so in-place
  // edits, as finite differences make, are always seen).
  private poolWeight(): Tensor {
    const w = this.weight;
    if (this.training || getThreads() === 1) return w.data;
    return this.prepared.for(w.data, w.version).poolWeights();
  }

  override fuseStage(): FuseStage {
    return { kind: 'conv', weight: this.weight.data, bias: this.bias === null ? null : this.bias.data, padding: this.padding, stride: this.stride, dilation: this.dilation, groups: this.groups, what: 'the conv kernel' };
  }

  // x: (N, C, H, W) → y: (N, F, Ho, Wo), written into `out` when given; relu: ReLU in the output
  // pass (inference only: backward would need the pre-activation). With threads, y lives in shared
  // memory, so the next conv's workers read it without a copy.
  forward(x: Tensor, out?: Tensor, relu = false): Tensor {
    if (relu && this.training) throw new Error('Conv2d.forward: a fused ReLU is for inference (call eval() first)');
    this.x = x;
    this.weightsAway = false; // a dW queued for the last forward's backward that never came (it threw) is not this one's
    const b = this.bias === null ? null : this.bias.data;
    const g = convGeometry(x.shape.length === 3 ? [1, ...x.shape] : x.shape, this.weight.data.shape, this.convOptions());
    if (out === undefined && x.shape.length === 4 && getThreads() > 1) {
      out = new Tensor(sharedArrayLike(g.N * g.F * g.Ho * g.Wo, x.data), [g.N, g.F, g.Ho, g.Wo]);
    }
    const algorithm = this.runAlgorithm();
    if (algorithm === 'auto') this.autoCalls++;
    // 'auto': what it runs now (im2col until the shape is timed), or undefined: conv2d times it now
    const choice = algorithm === 'auto' ? autoAlgorithm(g, x.dtype, this.training, this.autoCalls) : algorithm === 'direct' ? undefined : { algorithm, winogradTile: this.winogradTile };
    this.used = algorithm === 'direct' ? { algorithm, winogradTile: this.winogradTile } : choice ?? null;
    // conv2d's options, one literal of one shape (an object spread here was ~70% of this method's own
    // time in a training step: V8 builds such objects slowly)
    const run = choice === undefined || algorithm === 'direct' ? { algorithm, winogradTile: this.winogradTile } : choice;
    const opts: Conv2dOptions = {
      stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups, algorithm: run.algorithm, winogradTile: run.winogradTile,
      out, relu, weightsChange: this.training, autoCalls: this.autoCalls, prepared: undefined,
    };
    if (!this.training && choice !== undefined) {
      // Inference: the filters transformed or prepared once, reused while the weights are unchanged.
      const w = this.weight;
      opts.prepared = this.prepared.for(w.data, w.version);
      return conv2d(x, w.data, b, opts);
    }
    // training or direct: conv2d runs the choice ('auto' resolved as above, or timed now when choice
    // is undefined)
    const y = conv2d(x, this.poolWeight(), b, opts);
    if (this.used === null) this.used = measuredAlgorithm(g, x.dtype, this.training) ?? null; // 'auto' measured just now
    return y;
  }

  // dy: (N, F, Ho, Wo) → dx: (N, C, H, W), written into dxInto when given; accumulates dW, db
  backward(dy: Tensor, dxInto?: FloatArray): Tensor {
    return this.backwardWith(dy, dxInto, true)!;
  }

  // dy: (N, F, Ho, Wo) → dx added to what dxAdd (N·C·H·W) holds, dxAdd[i] += dx[i] (a later branch's
  // input gradient onto the block's: inside the kernel's col2im where it can); accumulates dW, db
  backwardAdding(dy: Tensor, dxAdd: FloatArray): Tensor {
    return this.backwardWith(dy, undefined, true, dxAdd)!;
  }

  // dy: (N, F, Ho, Wo): accumulates dW, db; dx not computed
  override backwardParameters(dy: Tensor): void {
    this.backwardWith(dy, undefined, false);
  }

  /**
   * dy: (N, F, Ho, Wo): dW for the last forward's input queued for a worker (inside a
   * backgroundScope, src/backend/threads.ts, that ends before anyone reads the gradient;
   * conv2dWeightGradInBackground), and the next backward, with the same dy, computes dx and db
   * alone. Taken where the gradient holds zero (dW is then written into it, not added). Returns
   * whether it was. For the blocks of a network (BranchBlock), not a public API.
   * @internal
   */
  backwardWeightsInBackground(dy: Tensor): boolean {
    if (this.x === null) throw new Error('Conv2d.backward: call forward first');
    if (this.weightsAway || !this.weight.gradIsCleared() || !backgroundPossible()) return false;
    let posted = false;
    try {
      posted = conv2dWeightGradInBackground(dy, this.x, this.poolWeight(), this.backwardOptions(), this.weight.takeClearedGrad()!);
    } finally {
      if (!posted) this.weight.clearGrad(); // still zero: nothing was written
    }
    this.weightsAway = posted;
    return posted;
  }

  private backwardOptions() {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups, algorithm: this.runAlgorithm(), winogradTile: this.winogradTile, weightsChange: this.training };
  }

  private backwardWith(dy: Tensor, dxInto: FloatArray | undefined, inputGradient: boolean, dxAdd?: FloatArray): Tensor | null {
    if (this.x === null) throw new Error('Conv2d.backward: call forward first');
    const away = this.weightsAway; // dW queued for a worker by backwardWeightsInBackground
    this.weightsAway = false;
    // dW straight into the gradient when it holds zero (after zeroGrad): no second array, no pass to add it
    const into = away ? null : this.weight.takeClearedGrad();
    let g: Conv2dGrads;
    try {
      g = conv2dBackward(dy, this.x, this.poolWeight(), this.backwardOptions(), { dx: inputGradient, dw: !away, db: this.bias !== null, dwInto: into ?? undefined, dxInto, dxAdd });
    } catch (e) {
      if (into !== null) this.weight.clearGrad(); // nothing was written in full: the gradient is still zero
      throw e;
    }
    if (into === null && !away) this.weight.accumulate(g.dw!);
    if (this.bias !== null) this.bias.accumulate(g.db!);
    return g.dx;
  }
}

export interface BatchNormModuleOptions {
  eps?: number;
  momentum?: number;
  dtype?: DType;
}

/**
 * x ↦ γ·x + β per channel as a BN with those γ and β, μ = 0, σ² = 1, ε = 0 (√(1 + 0) = 1: exactly that
 * map), in eval mode and float64: how a scale or shift describes itself to the fuser, which folds it
 * like any BN (fuse-onnx's Mul, Div, Neg, Add and Sub by constants; FastViT's layer scale).
 */
export function affineAsBN(gamma: Float64Array, beta: Float64Array): BatchNorm2d {
  const bn = new BatchNorm2d(gamma.length, { dtype: 'float64', eps: 0 }).eval();
  bn.weight.data.data.set(gamma);
  bn.bias.data.data.set(beta);
  bn.runningMean.data.fill(0);
  bn.runningVar.data.fill(1);
  return bn;
}

export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  runningMean: Tensor;
  runningVar: Tensor;
  numBatchesTracked = 0;
  readonly eps: number;
  readonly momentum: number;
  private cache: { x: Tensor; mean: Float64Array; invStd: Float64Array; training: boolean } | null = null;
  // the statistics each forward writes (its cache holds only the last forward's)
  private readonly stats: { mean: Float64Array; invStd: Float64Array };

  constructor(numFeatures: number, opts: BatchNormModuleOptions = {}) {
    super();
    const dtype = opts.dtype ?? 'float32';
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = new Parameter(full([numFeatures], 1, dtype));
    this.bias = new Parameter(zeros([numFeatures], dtype));
    this.runningMean = zeros([numFeatures], dtype);
    this.runningVar = full([numFeatures], 1, dtype);
    this.stats = { mean: new Float64Array(numFeatures), invStd: new Float64Array(numFeatures) };
  }

  override ownParameters(): [string, Parameter][] {
    return [['weight', this.weight], ['bias', this.bias]];
  }

  override ownBuffers(): [string, StateBuffer][] {
    return [
      ['running_mean', { kind: 'tensor', value: this.runningMean }],
      ['running_var', { kind: 'tensor', value: this.runningVar }],
      ['num_batches_tracked', { kind: 'int', value: this.numBatchesTracked, set: (v: number) => { this.numBatchesTracked = v; } }],
    ];
  }

  override fuseStage(): FuseStage {
    return { kind: 'bn', bn: this, pad: 0, statsAt: '' };
  }

  /** The op's arguments: the parameters and running statistics (updated in place when training). */
  opParams(): BatchNormParams {
    return { weight: this.weight.data, bias: this.bias.data, runningMean: this.runningMean, runningVar: this.runningVar };
  }

  opOptions(): BatchNormOptions {
    return { training: this.training, momentum: this.momentum, eps: this.eps, stats: this.stats };
  }

  /** What backward needs of a forward pass, whoever ran it (forward, or a block's batchNormSum). */
  recordForward(x: Tensor, saved: { mean: Float64Array; invStd: Float64Array }): void {
    if (this.training) this.numBatchesTracked++;
    this.cache = { x, mean: saved.mean, invStd: saved.invStd, training: this.training };
  }

  // x: (N, C, H, W) → y: (N, C, H, W)
  forward(x: Tensor): Tensor {
    const r = batchNorm2d(x, this.opParams(), this.opOptions());
    this.recordForward(x, r);
    return r.y;
  }

  /** What the last forward left for backward. */
  forwardRecord(): { x: Tensor; mean: Float64Array; invStd: Float64Array; training: boolean } {
    if (this.cache === null) throw new Error('BatchNorm2d.backward: call forward first');
    return this.cache;
  }

  /** Adds a backward pass's dγ and dβ (whoever ran it) to the gradients; returns dx. */
  acceptGrads(g: BatchNormGrads): Tensor {
    this.weight.accumulate(g.dweight!);
    this.bias.accumulate(g.dbias!);
    return g.dx;
  }

  backward(dy: Tensor): Tensor {
    const r = this.forwardRecord();
    return this.acceptGrads(batchNorm2dBackward(dy, r.x, this.weight.data, r, r.training));
  }
}

export class ReLU extends Module {
  private y: Tensor | null = null;

  override fuseStage(): FuseStage {
    return { kind: 'nonlinear' };
  }

  forward(x: Tensor): Tensor {
    const y = relu(x);
    this.y = y;
    return y;
  }

  /** What backward needs of a forward pass run by the block around it (batchNormSum): the output. */
  recordForward(y: Tensor): void {
    this.y = y;
  }

  /** The last forward's output (backward's mask). */
  forwardRecord(): Tensor {
    if (this.y === null) throw new Error('ReLU.backward: call forward first');
    return this.y;
  }

  backward(dy: Tensor): Tensor {
    if (this.y === null) throw new Error('ReLU.backward: call forward first');
    return reluBackward(dy, this.y);
  }
}

export class SiLU extends Module {
  private x: Tensor | null = null;

  override fuseStage(): FuseStage {
    return { kind: 'nonlinear' };
  }

  forward(x: Tensor): Tensor {
    this.x = x;
    return silu(x);
  }

  backward(dy: Tensor): Tensor {
    if (this.x === null) throw new Error('SiLU.backward: call forward first');
    return siluBackward(dy, this.x);
  }
}

/** nn.Identity: what a block with no activation (or no SE) has in its place. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }

  backward(dy: Tensor): Tensor {
    return dy;
  }
}

/** nn.AvgPool2d(kernel_size, stride, padding) with PyTorch's defaults (count_include_pad, floor). */
export class AvgPool2d extends Module {
  readonly options: AvgPoolOptions;
  private shape: readonly number[] | null = null;

  constructor(kernel: number, opts: { stride?: number; padding?: number } = {}) {
    super();
    this.options = { kernel, stride: opts.stride ?? kernel, padding: opts.padding ?? 0 };
  }

  override fuseStage(): FuseStage {
    return { kind: 'avgpool', ...this.options };
  }

  // x: (N, C, H, W) → y: (N, C, Ho, Wo)
  forward(x: Tensor): Tensor {
    this.shape = x.shape;
    return avgPool2d(x, this.options);
  }

  backward(dy: Tensor): Tensor {
    if (this.shape === null) throw new Error('AvgPool2d.backward: call forward first');
    return avgPool2dBackward(dy, this.shape, this.options);
  }
}

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  private x: Tensor | null = null;
  /** in eval mode, W prepared for the GEMM per weight version, as a 1×1 conv's filters on a 1×1 map
   * (resident from the second call: A0's classifier re-packed 1.3M weights every call) */
  private readonly prepared = new PreparedConv(true);

  // weight: (out, in)
  constructor(inFeatures: number, outFeatures: number, opts: { dtype?: DType; rng?: Rng; init?: boolean } = {}) {
    super();
    const bound = defaultInitBound(inFeatures);
    const rng = opts.rng ?? new Rng(0);
    const dtype = opts.dtype ?? 'float32';
    const make = (shape: number[]) => newWeight(shape, dtype, opts.init === false ? null : { rng, lo: -bound, hi: bound });
    this.weight = new Parameter(make([outFeatures, inFeatures]));
    this.bias = new Parameter(make([outFeatures]));
  }

  override ownParameters(): [string, Parameter][] {
    return [['weight', this.weight], ['bias', this.bias]];
  }

  // x: (N, in) → y: (N, out)
  forward(x: Tensor): Tensor {
    this.x = x;
    const w = this.weight.data;
    if (this.training || x.shape.length !== 2 || w.shape[1] !== x.shape[1] || !linearTakesW(x.shape[0], w.shape[0])) return linear(x, w, this.bias.data); // linear() names a mismatch
    const g = convGeometry([x.shape[0], w.shape[1], 1, 1], [w.shape[0], w.shape[1], 1, 1], {});
    return linearPrepared(x, w, this.bias.data, this.prepared.for(w, this.weight.version).im2colFilters(g));
  }

  backward(dy: Tensor): Tensor {
    if (this.x === null) throw new Error('Linear.backward: call forward first');
    // dW straight into the gradient when it holds zero (after zeroGrad): A0's classifier is 1.28M
    // weights, a 5 MB array and a pass adding it to zeros a step otherwise
    const into = this.weight.takeClearedGrad();
    let g: ReturnType<typeof linearBackward>;
    try {
      g = linearBackward(dy, this.x, this.weight.data, into ?? undefined);
    } catch (e) {
      if (into !== null) this.weight.clearGrad(); // nothing was written: the gradient is still zero
      throw e;
    }
    if (into === null) this.weight.accumulate(g.dw);
    this.bias.accumulate(g.db);
    return g.dx;
  }
}
