// 'Residual Reorg' of the RepVGG paper's Table 6: the same 3×3 layers as a RepVGG configuration,
// reorganised into a ResNet. stage0 and the last stage stay single conv-BN-ReLU layers; the layers
// of stages 1–3 pair up into basic blocks (as ResNet-18/34):
//   y = ReLU( BN(conv3×3(ReLU(BN(conv3×3(x))))) + shortcut(x) )
// with the identity as the shortcut, or conv1×1 (stride 2) + BN where the block changes the channels
// or the size. RepVGG-B0's 1 + 4 + 6 + 16 + 1 layers become 1 layer, 2, 3 and 8 blocks, and 1 layer.
// The ReLU inside each block makes it nonlinear: this network cannot be fused into a plain one.

import { Tensor, type DType } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';
import { Module } from './module.js';
import { PooledClassifier } from './classifier.js';
import { Linear, ReLU } from './layers.js';
import { ConvBN } from './repvgg.js';
import { type RepVGGConfig, type RepVGGPlan, planFromConfig } from './config.js';

/** conv3×3-BN-ReLU (stage0 and the last stage). */
class ConvBNReLU extends Module {
  readonly body: ConvBN;
  private readonly act = new ReLU();

  constructor(cin: number, cout: number, stride: number, dtype: DType, rng: Rng) {
    super();
    this.body = new ConvBN(cin, cout, 3, stride, 1, 1, dtype, rng);
  }

  override children(): [string, Module][] {
    return [['conv', this.body.conv], ['bn', this.body.bn]];
  }

  forward(x: Tensor): Tensor {
    return this.act.forward(this.body.forward(x));
  }

  backward(dy: Tensor): Tensor {
    return this.body.backward(this.act.backward(dy));
  }
}

/** ResNet's basic block: two conv3×3-BN, a ReLU between, the shortcut added, then ReLU. */
export class BasicBlock extends Module {
  readonly conv1: ConvBN;
  readonly conv2: ConvBN;
  /** null: the identity */
  readonly shortcut: ConvBN | null;
  private readonly act1 = new ReLU();
  private readonly act2 = new ReLU();

  constructor(cin: number, cout: number, stride: number, dtype: DType, rng: Rng) {
    super();
    this.conv1 = new ConvBN(cin, cout, 3, stride, 1, 1, dtype, rng);
    this.conv2 = new ConvBN(cout, cout, 3, 1, 1, 1, dtype, rng);
    this.shortcut = cin === cout && stride === 1 ? null : new ConvBN(cin, cout, 1, stride, 0, 1, dtype, rng);
  }

  override children(): [string, Module][] {
    const c: [string, Module][] = [['conv1', this.conv1], ['conv2', this.conv2]];
    if (this.shortcut !== null) c.push(['shortcut', this.shortcut]);
    return c;
  }

  // x: (N, cin, H, W) → y: (N, cout, H/stride, W/stride)
  forward(x: Tensor): Tensor {
    const main = this.conv2.forward(this.act1.forward(this.conv1.forward(x)));
    const short = this.shortcut === null ? x : this.shortcut.forward(x);
    const sum = main.clone();
    for (let i = 0; i < sum.size; i++) sum.data[i] += short.data[i];
    return this.act2.forward(sum);
  }

  // dy → dx = ∂main + ∂shortcut: both paths see the same gradient of the sum
  backward(dy: Tensor): Tensor {
    const d = this.act2.backward(dy);
    const dx = this.conv1.backward(this.act1.backward(this.conv2.backward(d)));
    const ds = this.shortcut === null ? d : this.shortcut.backward(d);
    const out = dx.clone();
    for (let i = 0; i < out.size; i++) out.data[i] += ds.data[i];
    return out;
  }
}

export class ResidualReorg extends PooledClassifier {
  readonly plan: RepVGGPlan;
  readonly stem: ConvBNReLU;
  /** stages 1–3 as basic blocks */
  readonly stages: BasicBlock[][];
  /** the last stage's layers */
  readonly tail: ConvBNReLU[];
  readonly linear: Linear;

  // cfg: a RepVGG configuration whose stages 1–3 have an even number of blocks (RepVGG-B0's 4, 6, 16)
  constructor(cfg: RepVGGConfig, opts: { dtype?: DType; seed?: number } = {}) {
    super();
    this.plan = planFromConfig(cfg);
    const odd = cfg.num_blocks.slice(0, 3).findIndex((n) => n % 2 !== 0);
    if (odd >= 0) throw new Error(`ResidualReorg: stage ${odd + 1} has ${cfg.num_blocks[odd]} layers; stages 1–3 need an even number to pair into basic blocks`);
    const dtype = opts.dtype ?? 'float32';
    const rng = new Rng(opts.seed ?? 0);
    const [stem, ...rest] = this.plan.stages;
    this.stem = new ConvBNReLU(stem[0].inChannels, stem[0].outChannels, stem[0].stride, dtype, rng);
    this.stages = rest.slice(0, 3).map((layers) => {
      const blocks: BasicBlock[] = [];
      for (let i = 0; i < layers.length; i += 2) blocks.push(new BasicBlock(layers[i].inChannels, layers[i + 1].outChannels, layers[i].stride, dtype, rng));
      return blocks;
    });
    this.tail = rest[3].map((b) => new ConvBNReLU(b.inChannels, b.outChannels, b.stride, dtype, rng));
    this.linear = new Linear(rest[3][rest[3].length - 1].outChannels, this.plan.numClasses, { dtype, rng });
  }

  override children(): [string, Module][] {
    const c: [string, Module][] = [['stage0', this.stem]];
    this.stages.forEach((blocks, s) => blocks.forEach((b, i) => c.push([`stage${s + 1}.${i}`, b])));
    this.tail.forEach((b, i) => c.push([`stage4.${i}`, b]));
    c.push(['linear', this.linear]);
    return c;
  }

  /** The number of 3×3 convs (the RepVGG configuration's layer count). */
  convLayers(): number {
    return 1 + 2 * this.stages.flat().length + this.tail.length;
  }

  protected features(): readonly Module[] {
    return [this.stem, ...this.stages.flat(), ...this.tail];
  }
}
