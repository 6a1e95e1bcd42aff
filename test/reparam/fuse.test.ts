// The one fuser over every family: for random shapes, groups, strides, kernel sizes, eps and BN
// statistics, the deploy block computes the training-time block's eval function (float64 to 1e-12
// of the magnitude S, float32 within 2γ_n·S: each side within γ_n·S of the exact value, S and n as in
// test/nn/families.test.ts). And what cannot be one conv is refused, naming the stage.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { type FamilySpec, deployKey, familyBlock } from '../../src/nn/families.js';
import { BranchBlock } from '../../src/nn/branch_block.js';
import { BatchNorm2d, Conv2d, SiLU } from '../../src/nn/layers.js';
import { ChannelPad2d, IdentityConv1x1 } from '../../src/nn/dbb_layers.js';
import { deployBlock, fuseBranchBlock } from '../../src/reparam/branches.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { U32, maxAbs, maxAbsDiff } from '../helpers.js';
import { familyMagnitude, familyTerms, pinIm2col, randomizeBN, worstRatio } from './helpers.js';
import { Module } from '../../src/nn/module.js';
import type { FuseStage } from '../../src/nn/fuse_stage.js';
import { Tensor } from '../../src/tensor/tensor.js';

function randomizeIdentityConvs(m: Module, rng: Rng): void {
  if (m instanceof IdentityConv1x1) for (let i = 0; i < m.weight.data.size; i++) m.weight.data.data[i] = (rng.next() - 0.5) * 0.4;
  for (const [, c] of m.children()) randomizeIdentityConvs(c, rng);
}

// A random valid spec of each family: groups 1, 2 or depthwise; stride 1 or 2; in = out or not.
const specArb = fc.record({
  family: fc.constantFrom('mobileone', 'repconv', 'qarepvgg', 'dbb', 'repvgg', 'acb'),
  cg: fc.integer({ min: 1, max: 3 }), groupsKind: fc.constantFrom('one', 'two', 'depthwise'), stride: fc.constantFrom(1, 2), widen: fc.boolean(),
  k: fc.constantFrom(1, 3, 5), branches: fc.integer({ min: 1, max: 3 }), se: fc.boolean(), eps: fc.constantFrom(1e-5, 1e-3, 0.1),
  names: fc.integer({ min: 0, max: 2 }), activation: fc.constantFrom('relu', 'silu', 'none'),
}).map((r): FamilySpec => {
  const depthwise = r.groupsKind === 'depthwise' && (r.family === 'mobileone' || r.family === 'dbb');
  const groups = depthwise ? 2 * r.cg : r.groupsKind === 'two' ? 2 : 1;
  const cin = r.cg * groups, cout = depthwise ? cin : (r.widen ? r.cg + 1 : r.cg) * groups;
  const k = r.family === 'mobileone' ? r.k : r.family === 'dbb' || r.family === 'acb' ? (r.k === 1 ? 3 : r.k) : 3;
  const names = { mobileone: ['official', 'timm'], repconv: ['yolov7', 'ultralytics', 'yolov6'], qarepvgg: ['yolov6'], dbb: ['official'], repvgg: ['official'], acb: ['official'] }[r.family];
  return {
    family: r.family, in: cin, out: cout, kernelSize: k, stride: r.stride, groups, eps: r.eps, branches: r.branches,
    se: r.family === 'repvgg' || r.family === 'mobileone' ? r.se && cout >= 1 : undefined,
    names: names[r.names % names.length], activation: r.activation as FamilySpec['activation'], identity: true,
  };
});

describe('every family fuses to one conv (property)', () => {
  it('deploy block = training-time block in eval mode, float64 and float32', () => {
    fc.assert(fc.property(specArb, fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 1 << 30 }),
      (spec, N, H, W, seed) => {
        for (const dtype of ['float64', 'float32'] as const) {
          const block = familyBlock({ ...spec, dtype, seed });
          randomizeBN(block, seed + 1);
          randomizeIdentityConvs(block, new Rng(seed + 3));
          pinIm2col(block).eval();
          const x = uniform([N, spec.in, H, W], new Rng(seed + 2), -1, 1, dtype);
          const y = block.forward(x);
          const deploy = pinIm2col(deployBlock(block, deployKey(spec)));
          const yd = deploy.forward(x);
          const S = familyMagnitude(spec, block, x);
          if (dtype === 'float64') {
            expect(maxAbsDiff(yd, y)).toBeLessThanOrEqual(1e-12 * maxAbs(S));
          } else {
            const n = familyTerms(block, x), g = (n * U32) / (1 - n * U32);
            expect(worstRatio(yd, y, (i) => 2 * g * S.data[i] + 1e-30)).toBeLessThanOrEqual(1);
          }
        }
      }), { numRuns: 60 });
  });
});

describe('the fuser never writes into the modules it reads', () => {
  it('a float64 block whose branches are bare convs and a BN after the sum: weights, biases and statistics unchanged; the closed form Σ K + b, then the BN', () => {
    const rng = new Rng(31);
    const c3 = new Conv2d(2, 3, 3, { padding: 1, bias: true, dtype: 'float64', rng }), c1 = new Conv2d(2, 3, 1, { bias: true, dtype: 'float64', rng });
    const post = new BatchNorm2d(3, { dtype: 'float64' });
    randomizeBN(post, 32);
    const block = new BranchBlock('bare', 3, [[c3], [c1]], post.eval(), { inChannels: 2 });
    const before = [c3.weight, c3.bias!, c1.weight, c1.bias!, post.weight, post.bias].map((p) => Float64Array.from(p.data.data));
    const kb = fuseBranchBlock(block);
    [c3.weight, c3.bias!, c1.weight, c1.bias!, post.weight, post.bias].forEach((p, i) => expect(p.data.data).toEqual(before[i]));
    // K = pad(K1) + K3, b = b1 + b3, then BN: K' = K·s, b' = β + (b − μ)·s
    for (let f = 0; f < 3; f++) {
      const sc = post.weight.data.data[f] / Math.sqrt(post.runningVar.data[f] + post.eps);
      for (let c = 0; c < 2; c++) for (let t = 0; t < 9; t++) {
        const k = c3.weight.data.data[(f * 2 + c) * 9 + t] + (t === 4 ? c1.weight.data.data[f * 2 + c] : 0);
        expect(kb.kernel.data[(f * 2 + c) * 9 + t]).toBeCloseTo(k * sc, 14);
      }
      expect(kb.bias.data[f]).toBeCloseTo(post.bias.data.data[f] + (c3.bias!.data.data[f] + c1.bias!.data.data[f] - post.runningMean.data[f]) * sc, 14);
    }
  });
});

describe('the fuser refuses what is not one conv, naming the stage', () => {
  const rng = () => new Rng(1);
  const conv = (cin: number, cout: number, k: number, padding: number, bias = false) => new Conv2d(cin, cout, k, { padding, bias, rng: rng() });
  const blockOf = (branches: [string, Module][][], opts = {}) =>
    new BranchBlock('test', 2, branches.map((b) => b.map(([, m]) => m)), null, { names: branches.map((b) => b.map(([n]) => n)), ...opts }).eval();

  it('a 1×1 conv without bias, then a padded 3×3 conv fuses (the sequential merge the old fuser never reached)', () => {
    const block = blockOf([[['first', conv(2, 2, 1, 0)], ['second', conv(2, 2, 3, 1, true)]]], { activation: 'none' });
    const x = uniform([1, 2, 5, 4], new Rng(2), -1, 1, 'float64');
    const f = fuseBranchBlock(block);
    const y = block.forward(x.to('float32'));
    const yd = deployBlock(block, 'conv').forward(x.to('float32'));
    expect(f.kernel.shape).toEqual([2, 2, 3, 3]);
    expect(maxAbsDiff(yd, y)).toBeLessThanOrEqual(64 * U32 * maxAbs(y)); // 18 + 2 terms of |·| ≤ 1 each way
  });
  it('zero padding after a stage with a bias is refused (the border would see the bias)', () => {
    const block = blockOf([[['first', conv(2, 2, 1, 0, true)], ['second', conv(2, 2, 3, 1)]]]);
    expect(() => fuseBranchBlock(block, 'blk')).toThrow("blk.second: pads with the value of 0 but the stages before it have a bias");
  });
  it('a border equal to the bias of the 1×1 stage before it moves to the input (an ONNX BNAndPad); any other border is refused', () => {
    const first = conv(2, 2, 1, 0, true);
    const b = Float64Array.from(first.bias!.data.data);
    const block = blockOf([[['first', first], ['border', new ChannelPad2d(b, [1, 1])], ['second', conv(2, 2, 3, 0, true)]]], { activation: 'none' });
    const x = uniform([1, 2, 5, 4], new Rng(2), -1, 1, 'float32');
    const y = block.forward(x); // the border really is b: the modules pad, then convolve
    const yd = deployBlock(block, 'conv').forward(x);
    expect(fuseBranchBlock(block).kernel.shape).toEqual([2, 2, 3, 3]);
    expect(maxAbsDiff(yd, y)).toBeLessThanOrEqual(64 * U32 * maxAbs(y)); // as above: 18 + 2 + 2 terms of |·| ≤ 1 each way
    const off = Float64Array.from(b);
    off[1] += 1e-3;
    const wrong = blockOf([[['first', first], ['border', new ChannelPad2d(off, [1, 1])], ['second', conv(2, 2, 3, 0)]]]);
    expect(() => fuseBranchBlock(wrong, 'blk')).toThrow(`blk.border: pads channel 1 with ${off[1]}, but what comes before it maps 0 to ${b[1]}`);
  });
  it('a conv after a spatial stage is refused', () => {
    const block = blockOf([[['a', conv(2, 2, 3, 1)], ['b', conv(2, 2, 1, 0)]]]);
    expect(() => fuseBranchBlock(block)).toThrow('b: follows a spatial stage');
  });
  it('a SiLU inside a branch is refused as nonlinear', () => {
    const block = blockOf([[['a', conv(2, 2, 3, 1)], ['act', new SiLU()]]]);
    expect(() => fuseBranchBlock(block)).toThrow("act: a SiLU inside a branch makes it nonlinear");
  });
  it('a kernel whose padding does not centre it in the fused conv is refused', () => {
    const block = blockOf([[['a', conv(2, 2, 3, 1)]], [['b', conv(2, 2, 1, 1)]]]);
    expect(() => fuseBranchBlock(block)).toThrow('b: a 1×1 kernel with padding 1×1 is not centred like the fused 3×3 conv with padding 1');
  });
  it('a BN in training mode and a block in training mode are refused', () => {
    const block = blockOf([[['a', conv(2, 2, 3, 1)], ['bn', new BatchNorm2d(2)]]]);
    block.train();
    expect(() => fuseBranchBlock(block)).toThrow('bn: a BatchNorm in training mode cannot be fused');
    expect(() => deployBlock(block, 'conv')).toThrow('deployBlock: the block is in training mode');
  });
});

describe('family specs are validated', () => {
  it.each([
    [{ family: 'nope', in: 2, out: 2 }, "unknown block family 'nope'"],
    [{ family: 'repconv', in: 2, out: 2, names: 'yolov9' }, "repconv: unknown names 'yolov9' (expected yolov7, ultralytics, yolov6)"],
    [{ family: 'mobileone', in: 2, out: 2, kernelSize: 2 }, 'kernelSize 2: the families here use odd kernels'],
    [{ family: 'mobileone', in: 0, out: 2 }, 'in channels must be a positive integer, got 0'],
    [{ family: 'mobileone', in: 2, out: 2, branches: -1 }, "mobileone: branches (the paper's k) must be an integer ≥ 0, got -1"],
    [{ family: 'dbb', in: 3, out: 2, groups: 2 }, 'channels 3→2 are not divisible by groups 2'],
    [{ family: 'dbb', in: 4, out: 2, groups: 2 }, 'dbbBlock: with groups 2 ≥ out channels the average-pool branch pools the input'],
    [{ family: 'qarepvgg', in: 2, out: 2, kernelSize: 5 }, 'qarepvgg: kernelSize is 3'],
    [{ family: 'repconv', in: 2, out: 2, eps: 0 }, 'eps must be a positive number, got 0'],
    [{ family: 'repconv', in: 2, out: 2, stride: 1.5 }, 'stride must be a positive integer, got 1.5'],
    [{ family: 'repconv', in: 2, out: 2, activation: 'gelu' }, "activation 'gelu' is not one of relu, silu, none (FastViT's MobileOne blocks use GELU, which is not built here; the fused conv is the same, as the activation is outside the sum: build the block with activation 'none' and apply GELU after it)"],
  ] as [FamilySpec, string][])('%j', (spec, message) => {
    expect(() => familyBlock(spec)).toThrow(message);
  });
});

// A layer describes itself to the fuser (Module.fuseStage); a type the fuser has never seen fuses
// without a line of the fuser changing, and one that does not describe itself is refused by name.
describe('layers describe themselves to the fuser', () => {
  // y = diag(s) x: a per-channel scale, written here as a new layer type
  class ChannelScale extends Module {
    constructor(readonly s: Float64Array) { super(); }
    forward(x: Tensor): Tensor {
      const P = x.shape[2] * x.shape[3], y = x.data.slice();
      for (let i = 0; i < y.length; i++) y[i] *= this.s[Math.floor(i / P) % this.s.length];
      return new Tensor(y, x.shape);
    }
    backward(dy: Tensor): Tensor { return dy; }
    override fuseStage(): FuseStage {
      const C = this.s.length, w = new Float64Array(C * C);
      for (let c = 0; c < C; c++) w[c * C + c] = this.s[c];
      return { kind: 'conv', weight: new Tensor(w, [C, C, 1, 1]), bias: null, padding: 0, stride: 1, dilation: 1, groups: 1, what: 'the scale as a 1×1 kernel' };
    }
  }
  class Opaque extends Module {
    forward(x: Tensor): Tensor { return x; }
    backward(dy: Tensor): Tensor { return dy; }
  }

  it('a new layer type fuses (float64: within 1e-13·max|y| of the branched block) and an undescribed one is refused', () => {
    const conv = new Conv2d(2, 2, 3, { padding: 1, bias: true, rng: new Rng(3), dtype: 'float64' });
    const block = new BranchBlock('scaled', 2, [[new ChannelScale(Float64Array.of(0.5, -2)), conv], []], null, { activation: 'none' }).eval();
    const x = uniform([1, 2, 5, 4], new Rng(4), -1, 1, 'float64');
    const y = block.forward(x), yd = deployBlock(block, 'conv', { dtype: 'float64' }).forward(x);
    expect(maxAbsDiff(yd, y)).toBeLessThanOrEqual(1e-13 * maxAbs(y)); // ~20 float64 terms of O(1): u·20 ≈ 2e-15
    const bad = new BranchBlock('opaque', 2, [[new Opaque()]], null, { names: [['mystery']] }).eval();
    expect(() => fuseBranchBlock(bad, 'blk')).toThrow('blk.mystery: cannot fuse a Opaque');
  });
});
