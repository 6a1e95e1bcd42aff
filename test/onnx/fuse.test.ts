// Graph-level re-parameterization (fuseOnnx) on PyTorch's exports: the expected node counts after
// fusion (what onnx.checker accepted in fixtures/make_onnx_fixtures.py, recorded in the manifest),
// the fused graph's outputs against PyTorch's and onnxruntime-web's on the fused file, and nothing
// fused where fusing would change the function (a residual add across a ReLU, a nonlinear branch).
//
// Tolerance for the fused float32 graph against PyTorch (the unfused model): the model contract
// 1e-4·max|ref| of test/onnx/run.test.ts (fusing moves each weight by one float32 rounding, far
// below it). float64: the error model of fuseBound (src/onnx/check.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { readOnnx } from '../../src/io/onnx_read.js';
import { onnxProtoOf, toOnnx } from '../../src/io/onnx.js';
import { runOnnx } from '../../src/onnx/run.js';
import { fuseOnnx } from '../../src/onnx/fuse.js';
import { checkFused, probeRun } from '../../src/onnx/check.js';
import { workspaceBytes } from '../../src/tensor/workspace.js';
import { ProtoMessage } from '../../src/io/protobuf.js';
import { RepVGG } from '../../src/nn/repvgg.js';
import { convert } from '../../src/reparam/repvgg.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { fixturePath, loadTorchFixture } from '../helpers.js';
import { FLOAT, INT64, type NodeSpec, P, f32, floatAttr, i64, intAttr, intsAttr, model as graph, strAttr, tensor, valueInfo } from './build.js';

ort.env.wasm.numThreads = 1;
type Info = { reference: string; opset: number; float64?: boolean; fused?: { ops: Record<string, number> } };
const manifest = JSON.parse(readFileSync(fixturePath('onnx/manifest.json'), 'utf8')).files as Record<string, Info>;
const opCounts = (nodes: { opType: string }[]) => { const c: Record<string, number> = {}; for (const n of nodes) c[n.opType] = (c[n.opType] ?? 0) + 1; return c; };
const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

describe('fuseOnnx on PyTorch exports', () => {
  // what each family must become (the exporter already folded Conv+BN pairs; the rest is ours)
  const EXPECTED: Record<string, { fused: number; conv: number; skipped?: RegExp; patterns?: string[] }> = {
    repvgg_train: { fused: 7, conv: 7 }, mobileone_stack: { fused: 3, conv: 5 }, yolov7_repconv: { fused: 2, conv: 2 }, yolov6_stack: { fused: 3, conv: 3 },
    acb_block: { fused: 2, conv: 2 }, resnet_basic: { fused: 0, conv: 6 }, neck: { fused: 0, conv: 6 },
    // its BNAndPad exports as Pad + ScatterND writes with indices from Shape arithmetic (844 nodes): the borders are evaluated, then all four branches fuse
    dbb_block: { fused: 1, conv: 1 },
    // AvgPool (padding counted), scalar and per-channel Mul, BN → 1×1 conv; BN → 3×3 conv with padding 1 stays (BN(0) ≠ 0 at the border)
    branch_stages: { fused: 2, conv: 3, skipped: /pads with the value of 0 but the stages before it have a bias/ },
    // RepViT's RepVGGDW (two depthwise convs and the input, a BN after the sum) and GELU's scalar ½ into the next 1×1 conv;
    // nothing crosses PReLU, GELU, LayerNorm, InstanceNorm, Mish, ELU or Softplus
    modern: { fused: 2, conv: 9 },
    // a 1-D RepVGG-style block (k3 | k1 | identity BN) fuses as 2-D of height 1, written back as one 1-D conv
    sequence1d: { fused: 1, conv: 3 },
    // a 3-D CNN: its residual add is across a ReLU; nothing fuses, and the graph runs (depth slices through the 2-D kernels)
    volume3d: { fused: 0, conv: 3 },
    // UniRepLKNet's dilated re-param block (7×7 | 5×5 | 3×3 dilation 2 | 3×3 dilation 3) → one 7×7 depthwise conv; branches that all
    // dilate by 2 → one 3×3 conv with dilation 2; a ZeroPad2d → 3×3 branch beside a 1×1 (the Pad reads the input the 1×1 reads) → one 3×3
    dilated: { fused: 3, conv: 4, patterns: [
      'pad 1×1+Conv 3×3 | Conv 1×1 ⇒ Conv 3×3',
      'Conv 3×3 dilation 2 | Conv 1×1 | identity ⇒ Conv 3×3 dilation 2',
      'Conv 7×7 | Conv 5×5 | Conv 3×3 dilation 2 | Conv 3×3 dilation 3 ⇒ Conv 7×7',
    ] },
    // SimpleBaseline's head: each ConvTranspose → BN (which the exporter leaves, one without bias, one grouped) folded into the ConvTranspose
    pose_head: { fused: 2, conv: 2, patterns: ['ConvTranspose 4×4+BN ⇒ ConvTranspose 4×4', 'ConvTranspose 4×4+BN ⇒ ConvTranspose 4×4'] },
    // FastViT's RepMixer x + γ·(mixer(x) − norm(x)) (a Sub, and a per-channel Mul of it) and without γ, and RepCPE x + dwconv7×7(x): one depthwise conv each
    fastvit: { fused: 3, conv: 4, patterns: [
      'identity | Conv 7×7 ⇒ Conv 7×7',
      'identity | Conv 1×1 | BN | Conv 3×3 | −BN ⇒ Conv 3×3',
      'identity | Conv 1×1·scale | BN·scale | Conv 3×3·scale | −BN·scale ⇒ Conv 3×3',
    ] },
    // PP-LCNetV3's LearnableRepLayer: identity BN | 1×1 | two k×k (its `0 +` start a shift by 0), then the learnable affine block s·x + b folded in;
    // a second pass folds the affine block after Hardswish into the next layer, now one 1×1 conv; before a padded 3×3 it stays (the border would see its bias)
    pplcnet: { fused: 4, conv: 4, skipped: /blocks\.3\/lab\/Mul: pads with the value of 0 but the stages before it have a bias/, patterns: [
      'Conv 1×1+shift·scale | Conv 3×3·scale | Conv 3×3·scale → shift ⇒ Conv 3×3',
      'Conv 1×1+shift·scale | Conv 1×1·scale → shift ⇒ Conv 1×1',
      'BN+shift·scale | Conv 1×1·scale | Conv 3×3·scale | Conv 3×3·scale → shift ⇒ Conv 3×3',
      'scale+shift+Conv 1×1 ⇒ Conv 1×1',
    ] },
  };
  for (const [file, info] of Object.entries(manifest)) {
    if (info.float64 === true) continue;
    const name = info.reference.replace('.safetensors', '');
    it(`${file}: ${EXPECTED[name].fused} pattern(s) fused; the fused file runs in onnxruntime-web and matches PyTorch`, async () => {
      const model = readOnnx(new Uint8Array(readFileSync(fixturePath(`onnx/${file}`))));
      const r = fuseOnnx(model);
      expect(r.fused.length).toBe(EXPECTED[name].fused);
      if (EXPECTED[name].patterns !== undefined) expect(r.fused.map((p) => p.pattern)).toEqual(EXPECTED[name].patterns);
      const skip = EXPECTED[name].skipped;
      if (skip === undefined) expect(r.skipped).toEqual([]);
      else expect(r.skipped.map((p) => p.why)).toEqual([expect.stringMatching(skip)]);
      expect(opCounts(r.model.nodes)).toEqual(info.fused!.ops); // as onnx.checker saw our CLI's output
      expect(opCounts(r.model.nodes).Conv).toBe(EXPECTED[name].conv);
      if (r.fused.length === 0) expect(r.model.nodes).toEqual(model.nodes); // untouched, names and all
      const check = checkFused(model, r);
      expect(check.maxAbsDiff).toBeLessThanOrEqual(check.bound);
      const ref = loadTorchFixture(`onnx/${name}`);
      const x = ref.t('x'), y = ref.t('y');
      const bytes = onnxProtoOf(r.model).encode();
      const again = readOnnx(bytes); // our writer's output reads back to the same graph
      expect(opCounts(again.nodes)).toEqual(opCounts(r.model.nodes));
      const ours = runOnnx(again, { input: x }, { algorithm: 'im2col' }).get('output')!;
      expect(maxDiff(ours.data, y.data)).toBeLessThanOrEqual(1e-4 * maxAbs(y.data));
      const session = await ort.InferenceSession.create(bytes);
      const theirs = (await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape as number[]) })).output.data as Float32Array;
      await session.release();
      expect(maxDiff(theirs, y.data)).toBeLessThanOrEqual(1e-4 * maxAbs(y.data));
    });
  }

  it('dilated: the lattice block is written back with dilation 2 (9 taps, not 25), the large kernel as one depthwise 7×7', () => {
    const r = fuseOnnx(readOnnx(new Uint8Array(readFileSync(fixturePath('onnx/dilated_opset17.onnx')))));
    const attrs = (at: string) => { const n = r.model.nodes.find((m) => m.name === at)!; return ['kernel_shape', 'dilations', 'pads', 'group'].map((a) => n.attributes.get(a)?.value); };
    expect(attrs(r.fused[1].at)).toEqual([[3, 3], [2, 2], [2, 2, 2, 2], 1]);
    expect(attrs(r.fused[2].at)).toEqual([[7, 7], [1, 1], [3, 3, 3, 3], 8]);
  });

  it('pose_head: each ConvTranspose takes the BN after it (weights and bias scaled per output channel, its attributes kept)', () => {
    const model = readOnnx(new Uint8Array(readFileSync(fixturePath('onnx/pose_head_opset17.onnx'))));
    const r = fuseOnnx(model);
    const before = model.nodes.filter((n) => n.opType === 'ConvTranspose'), after = r.model.nodes.filter((n) => n.opType === 'ConvTranspose');
    expect(after.map((n) => [...n.attributes])).toEqual(before.map((n) => [...n.attributes]));
    expect(after.map((n) => n.inputs.length)).toEqual([3, 3]); // the bias-free one has a bias now: β − μ·s
    // a ConvTranspose whose output is also a graph output keeps its BN apart
    const bn = ['s', 'b', 'm', 'v'].map((k, i) => tensor(k, [2], FLOAT, f32(...[[1.5, 0.5], [0.25, -1], [0.5, 0], [2, 1]][i])));
    const both = readOnnx(graph([
      { op: 'ConvTranspose', inputs: ['x', 'w'], outputs: ['t'], name: 'up', attrs: [intsAttr('strides', [2, 2])] },
      { op: 'BatchNormalization', inputs: ['t', 's', 'b', 'm', 'v'], outputs: ['y'], name: 'bn' },
    ], { inits: [tensor('w', [2, 2, 2, 2], FLOAT, f32(...new Array(16).fill(0.5))), ...bn], inputs: [valueInfo('x', [1, 2, 3, 3])], outputs: ['t', 'y'] }));
    const q = fuseOnnx(both);
    expect(q.fused).toEqual([]);
    expect(q.model.nodes).toEqual(both.nodes);
  });

  // The float64 exports, fused in float64: what is left of the difference to PyTorch's float64 outputs
  // is the fuser's own float64 roundings (a few per weight, against 2⁻²⁴ in float32), so every fold,
  // centring, dilation and sign is checked to 1e-10·max|ref| rather than to float32's 1e-4.
  for (const [file, info] of Object.entries(manifest).filter(([, i]) => i.float64 === true)) {
    const name = info.reference.replace('.safetensors', '');
    it(`${file}: fused in float64, its outputs match PyTorch's float64 ones (1e-10·max|ref|)`, () => {
      const r = fuseOnnx(readOnnx(new Uint8Array(readFileSync(fixturePath(`onnx/${file}`)))));
      expect(r.fused.length).toBe(EXPECTED[name].fused);
      const ref = loadTorchFixture(`onnx/${name}`);
      const y = runOnnx(r.model, { input: ref.t('x').to('float64') }, { dtype: 'float64' }).get('output')!;
      // the neck's float attributes are stored as float32 (test/onnx/run.test.ts): 1e-7 there
      expect(maxDiff(y.data, ref.t('y@f64').data)).toBeLessThanOrEqual((name === 'neck' ? 1e-7 : 1e-10) * maxAbs(ref.t('y@f64').data));
    });
  }

  it('our own training-time export (Conv → BN pairs unfolded, identity BNs) becomes the deploy graph: one Conv per block', () => {
    const cfg = { num_blocks: [2, 1, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], num_classes: 4, in_channels: 3 };
    const train = RepVGG.fromConfig(cfg, { seed: 3 }).eval();
    for (const b of train.blocks()) for (const bn of [b.rbrDense?.bn, b.rbr1x1?.bn, b.rbrIdentity]) if (bn) { bn.runningMean.data.fill(0.1); bn.runningVar.data.fill(1.7); }
    const model = readOnnx(toOnnx(train));
    const r = fuseOnnx(model);
    expect(opCounts(r.model.nodes)).toEqual({ Conv: 6, Relu: 6, GlobalAveragePool: 1, Flatten: 1, Gemm: 1 });
    expect(opCounts(readOnnx(toOnnx(convert(train))).nodes)).toEqual(opCounts(r.model.nodes)); // the same graph convert() exports
    const x = uniform([2, 3, 20, 20], new Rng(4), -1, 1);
    const want = train.setAlgorithm('im2col').forward(x); // the branched model's own forward
    const got = runOnnx(r.model, { input: x }, { algorithm: 'im2col' }).get('logits')!;
    expect(maxDiff(got.data, want.data)).toBeLessThanOrEqual(1e-4 * maxAbs(want.data)); // the model contract
  });

  it('reuseStorage: each fused kernel is written over the 3×3 weight it replaces, bit for bit the kernel of a fresh fuse; a weight another conv reads is left alone', () => {
    const cfg = { num_blocks: [2, 1, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], num_classes: 4, in_channels: 3 };
    const bytes = toOnnx(RepVGG.fromConfig(cfg, { seed: 5 }).eval());
    const fresh = fuseOnnx(readOnnx(bytes));
    const consumed = readOnnx(bytes);
    const dense = new Map([...consumed.initializers].filter(([k]) => k.endsWith('rbr_dense.conv.weight')).map(([k, t]) => [k, t.data]));
    const r = fuseOnnx(consumed, { reuseStorage: true });
    expect(r.fused.length).toBe(6);
    for (const f of r.fused) {
      const w = r.model.initializers.get(`${f.at}.fused.weight`)!;
      expect(w.data).toEqual(fresh.model.initializers.get(`${f.at}.fused.weight`)!.data);
      expect([...dense.values()].some((d) => d === w.data), f.at).toBe(true); // the very array of the replaced weight
    }
    // two convs reading one weight: fusing the first must not overwrite what the second still reads
    const rnd = (n: number, seed: number) => new Uint8Array(uniform([n], new Rng(seed), -1, 1).data.buffer);
    const w = rnd(36, 7), bn = (n: string) => [tensor(`${n}.s`, [2], FLOAT, rnd(2, 8)), tensor(`${n}.b`, [2], FLOAT, rnd(2, 9)), tensor(`${n}.m`, [2], FLOAT, rnd(2, 10)), tensor(`${n}.v`, [2], FLOAT, f32(1.5, 2))];
    const shared = readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], attrs: [intsAttr('pads', [1, 1, 1, 1])] },
      { op: 'BatchNormalization', inputs: ['a', 'bn.s', 'bn.b', 'bn.m', 'bn.v'], outputs: ['y1'] },
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['y2'], attrs: [intsAttr('pads', [1, 1, 1, 1])] },
    ], { inits: [tensor('w', [2, 2, 3, 3], FLOAT, w), ...bn('bn')], inputs: [valueInfo('x', [1, 2, 5, 5])], outputs: ['y1', 'y2'], outputInfos: [valueInfo('y1', [1, 2, 5, 5]), valueInfo('y2', [1, 2, 5, 5])] }));
    const before = Float32Array.from(shared.initializers.get('w')!.data);
    const s = fuseOnnx(shared, { reuseStorage: true });
    expect(s.fused.length).toBe(1);
    expect(s.model.initializers.get('w')!.data).toEqual(before);
  });

  it('the probe runs leave no scratch behind (a B3 probe grew ~1 GB of workspaces that stayed for the process)', () => {
    const cfg = { num_blocks: [1, 1, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], num_classes: 4, in_channels: 3 };
    const model = readOnnx(toOnnx(RepVGG.fromConfig(cfg, { seed: 5 }).eval()));
    const check = checkFused(model, fuseOnnx(model), { size: 16 });
    expect(check.maxAbsDiff).toBeLessThanOrEqual(check.bound);
    expect(workspaceBytes()).toBe(0);
  });

  it('a branch with a ReLU inside is not fused (the sum is not of linear maps of one tensor)', () => {
    const P = () => new ProtoMessage();
    const f32 = (n: number) => new Uint8Array(uniform([n], new Rng(n), -1, 1).data.buffer);
    const init = (name: string, dims: number[]) => { const m = P(); for (const d of dims) m.varint(1, d); return m.varint(2, 1).string(8, name).bytes(9, f32(dims.reduce((a, b) => a * b, 1))); };
    const node = (op: string, ins: string[], out: string, attrs: ProtoMessage[] = []) => { const m = P(); for (const i of ins) m.string(1, i); m.string(2, out).string(3, out).string(4, op); for (const a of attrs) m.message(5, a); return m; };
    const pads = P().string(1, 'pads').varint(8, 1).varint(8, 1).varint(8, 1).varint(8, 1).varint(20, 7);
    const g = P().message(1, node('Conv', ['x', 'w1'], 'a', [pads])).message(1, node('Relu', ['a'], 'ra')).message(1, node('Conv', ['x', 'w2'], 'b')).message(1, node('Add', ['ra', 'b'], 'y'))
      .string(2, 'g').message(5, init('w1', [2, 2, 3, 3])).message(5, init('w2', [2, 2, 1, 1]));
    const vi = (n: string) => P().string(1, n).message(2, P().message(1, P().varint(1, 1).message(2, P().message(1, P().varint(1, 1)).message(1, P().varint(1, 2)).message(1, P().varint(1, 5)).message(1, P().varint(1, 5)))));
    g.message(11, vi('x')).message(12, vi('y'));
    const model = readOnnx(P().varint(1, 8).message(7, g).message(8, P().string(1, '').varint(2, 17)).encode());
    const r = fuseOnnx(model);
    expect(r.fused).toEqual([]);
    expect(r.model.nodes).toEqual(model.nodes);
  });
});

describe('fuseOnnx: stages beyond Conv and BN, on small graphs (closed forms)', () => {
  const w = [0.75, -1.5, 0.125, 2]; // a 1×1 conv 2 → 2, (F, C, 1, 1)
  const padRun = (pads: number[], dims: (number | string)[]) => readOnnx(graph([
    { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], name: 'conv' },
    { op: 'Pad', inputs: ['a', 'pads'], outputs: ['p'], name: 'pad' },
    { op: 'AveragePool', inputs: ['p'], outputs: ['y'], name: 'pool', attrs: [intsAttr('kernel_shape', [3, 3]), intsAttr('strides', [1, 1])] },
  ], { inits: [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w)), tensor('pads', [8], INT64, i64(...pads))], inputs: [valueInfo('x', dims)] }));

  it('Conv 1×1 → Pad → AveragePool 3×3 becomes one 3×3 conv with padding 1 and weight w/9 on every tap', () => {
    const r = fuseOnnx(padRun([0, 0, 1, 1, 0, 0, 1, 1], [1, 2, 5, 5]));
    expect(r.skipped).toEqual([]);
    expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 1×1+pad 1×1+AvgPool 3×3 ⇒ Conv 3×3']);
    expect(r.model.nodes.map((n) => n.opType)).toEqual(['Conv']);
    const k = r.model.initializers.get(r.model.nodes[0].inputs[1])!;
    expect(k.dims).toEqual([2, 2, 3, 3]);
    expect([...k.data]).toEqual(w.flatMap((v) => new Array(9).fill(Math.fround(v / 9))));
    expect(r.model.nodes[0].attributes.get('pads')?.value).toEqual([1, 1, 1, 1]);
  });
  it('a padding run is only evaluated on static input dims, and must pad both sides alike', () => {
    const symbolic = padRun([0, 0, 1, 1, 0, 0, 1, 1], ['N', 2, 5, 5]);
    const r = fuseOnnx(symbolic);
    expect(r.fused).toEqual([]);
    expect(r.skipped).toEqual([{ at: 'pad', why: expect.stringMatching(/symbolic input dims.*export with static shapes/) }]);
    expect(r.model.nodes).toEqual(symbolic.nodes);
    const lopsided = fuseOnnx(padRun([0, 0, 1, 0, 0, 0, 0, 0], [1, 2, 5, 5]));
    expect(lopsided.fused).toEqual([]);
    expect(lopsided.skipped).toEqual([{ at: 'pad', why: 'a padding run from [1, 2, 5, 5] to [1, 2, 6, 5]: not the same padding on both sides of H and W only' }]);
  });
  it('an AveragePool that leaves its padding out of the mean is not a stage, and a chain stops at a border whose input another node reads', () => {
    const inits = [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w)), tensor('pads', [8], INT64, i64(0, 0, 1, 1, 0, 0, 1, 1))];
    const excluded = readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], name: 'conv' },
      { op: 'AveragePool', inputs: ['a'], outputs: ['y'], name: 'pool', attrs: [intsAttr('kernel_shape', [3, 3]), intsAttr('pads', [1, 1, 1, 1])] },
      { op: 'Mul', inputs: ['y', 's'], outputs: ['z'], name: 'mul' },
    ], { inits: [...inits, tensor('s', [], FLOAT, f32(2))], inputs: [valueInfo('x', [1, 2, 5, 5])] }));
    const r = fuseOnnx(excluded); // count_include_pad = 0: the border taps divide by fewer than 9
    expect(r.fused).toEqual([]);
    expect(r.model.nodes).toEqual(excluded.nodes);
    const shared = readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], name: 'conv' },
      { op: 'Pad', inputs: ['a', 'pads'], outputs: ['p'], name: 'pad' },
      { op: 'AveragePool', inputs: ['p'], outputs: ['y'], name: 'pool', attrs: [intsAttr('kernel_shape', [3, 3])] },
      { op: 'Relu', inputs: ['a'], outputs: ['r'], name: 'relu' },
    ], { inits, inputs: [valueInfo('x', [1, 2, 5, 5])], outputs: ['y', 'r'] }));
    const q = fuseOnnx(shared); // the Relu still needs the conv's output: the border is a stage, the conv before it is not
    expect(q.fused).toEqual([]);
    expect(q.model.nodes).toEqual(shared.nodes);
    const inner = readOnnx(graph([ // two Pads, the Relu reading between them: the run is no border
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], name: 'conv' },
      { op: 'Pad', inputs: ['a', 'pads'], outputs: ['p'], name: 'pad' },
      { op: 'Pad', inputs: ['p', 'pads'], outputs: ['p2'], name: 'pad2' },
      { op: 'AveragePool', inputs: ['p2'], outputs: ['y'], name: 'pool', attrs: [intsAttr('kernel_shape', [3, 3])] },
      { op: 'Relu', inputs: ['p'], outputs: ['r'], name: 'relu' },
    ], { inits, inputs: [valueInfo('x', [1, 2, 5, 5])], outputs: ['y', 'r'] }));
    const t = fuseOnnx(inner);
    expect(t.fused).toEqual([]);
    expect(t.model.nodes).toEqual(inner.nodes);
  });
  it('auto_pad (as tf2onnx writes Keras\' padding): SAME at stride 1 on an odd kernel is its explicit pads, VALID none; SAME at stride 2 or on an even kernel is refused', () => {
    const w3 = [0.5, -0.25, 0.75, 1, -1, 0.125, 0.25, 0.5, -0.5], w1 = [0.75, -1.5, 0.125, 2];
    const sameBlock = (mode: string, stride: number, k: number) => readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'wk'], outputs: ['a'], name: 'conv_k', attrs: [strAttr('auto_pad', mode), intsAttr('strides', [stride, stride])] },
      { op: 'Conv', inputs: ['x', 'w1'], outputs: ['b'], name: 'conv_1', attrs: [strAttr('auto_pad', 'VALID'), intsAttr('strides', [stride, stride])] },
      { op: 'Add', inputs: ['a', 'b'], outputs: ['y'], name: 'add' },
    ], { inits: [tensor('wk', [2, 2, k, k], FLOAT, f32(...Array.from({ length: 4 * k * k }, (_, i) => w3[i % 9]))), tensor('w1', [2, 2, 1, 1], FLOAT, f32(...w1))], inputs: [valueInfo('x', [1, 2, 6, 7])] }));
    for (const mode of ['SAME_UPPER', 'SAME_LOWER']) {
      const m = sameBlock(mode, 1, 3);
      const r = fuseOnnx(m);
      expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 3×3 | Conv 1×1 ⇒ Conv 3×3']);
      const conv = r.model.nodes[0];
      expect([conv.attributes.get('pads')?.value, conv.attributes.has('auto_pad')]).toEqual([[1, 1, 1, 1], false]);
      const k = [...r.model.initializers.get(conv.inputs[1])!.data];
      expect(k).toEqual(Array.from({ length: 36 }, (_, i) => w3[i % 9] + (i % 9 === 4 ? w1[Math.floor(i / 9)] : 0))); // dyadic: exact
      const check = checkFused(m, r);
      expect(check.maxAbsDiff).toBeLessThanOrEqual(check.bound);
    }
    const stride2 = fuseOnnx(sameBlock('SAME_UPPER', 2, 3));
    expect(stride2.fused).toEqual([]);
    expect(stride2.skipped).toEqual([{ at: 'add', why: "conv_k: auto_pad SAME_UPPER with strides 2×2 and a 3×3 kernel pads by the input's size or unevenly; only stride 1 with an odd kernel fuses (export with explicit pads)" }]);
    const even = fuseOnnx(sameBlock('SAME_LOWER', 1, 2));
    expect(even.skipped.map((p) => p.why)).toEqual([expect.stringMatching(/^conv_k: auto_pad SAME_LOWER with strides 1×1 and a 2×2 kernel/)]);
  });
  it('Gemm → BatchNormalization (Linear → BatchNorm1d) folds: B′ = B·s per output column, C′ = s·(β_g·C − μ) + β, beta 1; a BN parameter behind an Identity is a constant too', () => {
    const gemmBn = (cDims: number[], c: number[]) => readOnnx(graph([
      { op: 'Identity', inputs: ['mu'], outputs: ['mu_alias'], name: 'alias' }, // torch.onnx.export's form for equal initializers
      { op: 'Gemm', inputs: ['x', 'B', 'C'], outputs: ['g'], name: 'fc', attrs: [intAttr('transB', 1), floatAttr('alpha', 0.5), floatAttr('beta', 2)] },
      { op: 'BatchNormalization', inputs: ['g', 'gamma', 'beta', 'mu_alias', 'var'], outputs: ['y'], name: 'bn', attrs: [floatAttr('epsilon', 1)] },
    ], { inits: [tensor('B', [2, 3], FLOAT, f32(1, -0.5, 0.25, 2, 0.75, -1)), tensor('C', cDims, FLOAT, f32(...c)), tensor('gamma', [2], FLOAT, f32(1.5, 0.5)), tensor('beta', [2], FLOAT, f32(0.25, -1)),
      tensor('mu', [2], FLOAT, f32(0.5, 0)), tensor('var', [2], FLOAT, f32(3, 0))], inputs: [valueInfo('x', [2, 3])] }));
    const m = gemmBn([2], [0.5, -1]);
    const r = fuseOnnx(m);
    expect(r.fused.map((p) => p.pattern)).toEqual(['Gemm+BN ⇒ Gemm']);
    expect(r.model.nodes.map((n) => `${n.opType} ${n.name}`)).toEqual(['Gemm bn']); // the Identity went with the BN
    const g = r.model.nodes[0];
    // s = γ/√(σ² + ε) = [0.75, 0.5]; dyadic, so exact
    expect(g.inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data])).toEqual([[0.75, -0.375, 0.1875, 1, 0.375, -0.5], [0.625, -2]]);
    expect(['alpha', 'beta', 'transB'].map((a) => g.attributes.get(a)?.value)).toEqual([0.5, 1, 1]);
    const check = checkFused(m, r);
    expect(check.maxAbsDiff).toBeLessThanOrEqual(check.bound);
    const perRow = fuseOnnx(gemmBn([2, 1], [0.5, -1])); // C broadcast down the columns: one value per row
    expect(perRow.fused).toEqual([]);
    expect(perRow.skipped).toEqual([{ at: 'bn', why: 'fc: a C of shape [2, 1] differs per row; only one value or one per output column folds' }]);
  });
  it('MatMul → BatchNormalization (a bias-free Linear → BatchNorm1d) becomes a Gemm when A is 2-D (declared, or from a Flatten); of unstated rank it stays, with the reason', () => {
    const matMulBn = (nodes: NodeSpec[], x: ReturnType<typeof valueInfo>) => readOnnx(graph([...nodes,
      { op: 'MatMul', inputs: ['a', 'B'], outputs: ['m'], name: 'fc' },
      { op: 'BatchNormalization', inputs: ['m', 'gamma', 'beta', 'mu', 'var'], outputs: ['y'], name: 'bn', attrs: [floatAttr('epsilon', 1)] },
    ], { inits: [tensor('B', [3, 2], FLOAT, f32(1, -0.5, 0.25, 2, 0.75, -1)), tensor('gamma', [2], FLOAT, f32(1.5, 0.5)), tensor('beta', [2], FLOAT, f32(0.25, -1)),
      tensor('mu', [2], FLOAT, f32(0.5, 0)), tensor('var', [2], FLOAT, f32(3, 0))], inputs: [x] }));
    for (const m of [matMulBn([{ op: 'Relu', inputs: ['x'], outputs: ['a'] }], valueInfo('x', [2, 3])), matMulBn([{ op: 'Flatten', inputs: ['x'], outputs: ['a'] }], valueInfo('x', [2, 3, 1, 1]))]) {
      const r = fuseOnnx(m);
      expect(r.fused.map((p) => p.pattern)).toEqual(['MatMul+BN ⇒ Gemm']);
      const g = r.model.nodes.at(-1)!;
      expect(g.opType).toBe('Gemm');
      // s = γ/√(σ² + ε) = [0.75, 0.5] per column of B (3×2); bias s·(0 − μ) + β = [−0.125, −1]; dyadic, so exact
      expect(g.inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data])).toEqual([[0.75, -0.25, 0.1875, 1, 0.5625, -0.5], [-0.125, -1]]);
      const check = checkFused(m, r);
      expect(check.maxAbsDiff).toBeLessThanOrEqual(check.bound);
    }
    const unstated = fuseOnnx(matMulBn([{ op: 'Identity', inputs: ['x'], outputs: ['a'] }], valueInfo('x', null)));
    expect(unstated.fused).toEqual([]);
    expect(unstated.skipped).toEqual([{ at: 'bn', why: "fc: its A's rank is not stated (no Flatten or Gemm before it, no declared shape): the BN scales the MatMul's output columns only for a 2-D A" }]);
    const threeD = fuseOnnx(matMulBn([{ op: 'Identity', inputs: ['x'], outputs: ['a'] }], valueInfo('x', [2, 4, 3]))); // BN's axis 1 is the 4, not B's columns
    expect([threeD.fused, threeD.skipped]).toEqual([[], []]);
  });
  it('a Sub subtracts a branch and a constant Mul of a sum scales each of its terms (FastViT\'s RepMixer): s·(conv(x) − x) becomes one conv, s·(W − I) and s·b', () => {
    const scaledDiff = (outputs: string[]) => readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['a'], name: 'conv' },
      { op: 'Sub', inputs: ['a', 'x'], outputs: ['d'], name: 'sub' },
      { op: 'Mul', inputs: ['d', 's'], outputs: ['y'], name: 'mul' },
    ], { inits: [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w)), tensor('b', [2], FLOAT, f32(0.5, -3)), tensor('s', [1, 2, 1, 1], FLOAT, f32(0.5, -2))], inputs: [valueInfo('x', [1, 2, 3, 3])], outputs }));
    const m = scaledDiff(['y']);
    const r = fuseOnnx(m);
    expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 1×1·scale | −identity·scale ⇒ Conv 1×1']);
    expect(r.model.nodes.map((n) => `${n.opType} ${n.name} ${n.outputs[0]}`)).toEqual(['Conv mul y']);
    const [k, bias] = r.model.nodes[0].inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data]);
    expect(k).toEqual([-0.125, -0.75, -0.25, -2]); // s_f·(W − I)[f, c], dyadic: exact
    expect(bias).toEqual([0.25, 6]);
    const check = checkFused(m, r);
    expect(check.maxAbsDiff).toBeLessThanOrEqual(check.bound);
    // the difference is a graph output too: it is fused on its own, and the Mul stays after it
    const kept = fuseOnnx(scaledDiff(['y', 'd']));
    expect(kept.fused.map((p) => `${p.at}: ${p.pattern}`)).toEqual(['sub: Conv 1×1 | −identity ⇒ Conv 1×1']);
    expect(kept.model.nodes.map((n) => `${n.opType} ${n.outputs[0]}`)).toEqual(['Conv d', 'Mul y']);
  });
  it('an Add or Sub of a constant is a shift stage (b ∓ c), and affine stages after a sum (BN, scale, shift) are its post map; c − x is not a shift', () => {
    const inits = [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w)), tensor('b', [2], FLOAT, f32(0.5, -3)), tensor('c', [1, 2, 1, 1], FLOAT, f32(0.25, 1)), tensor('two', [], FLOAT, f32(2))];
    const shifted = (sub: NodeSpec) => readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['a'], name: 'conv' }, sub,
      { op: 'Mul', inputs: ['d', 'two'], outputs: ['y'], name: 'mul' },
    ], { inits, inputs: [valueInfo('x', [1, 2, 3, 3])] }));
    const m = shifted({ op: 'Sub', inputs: ['a', 'c'], outputs: ['d'], name: 'sub' });
    const r = fuseOnnx(m);
    expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 1×1+shift+scale ⇒ Conv 1×1']);
    expect(r.model.nodes[0].inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data])).toEqual([w.map((v) => 2 * v), [0.5, -8]]); // 2·(b − c)
    const flipped = shifted({ op: 'Sub', inputs: ['c', 'a'], outputs: ['d'], name: 'sub' }); // c − conv(x): a negation, not a shift
    const q = fuseOnnx(flipped);
    expect(q.fused).toEqual([]);
    expect(q.model.nodes).toEqual(flipped.nodes);
    // conv(x) + x → BN → ·2 → + 0.5: a = γ/√(σ² + ε) = [0.75, 0.5] then ·2, c = β − μ·a = [−0.125, −1] then ·2 + 0.5
    const bn = ['g', 'be', 'mu', 'v'].map((k, i) => tensor(k, [2], FLOAT, f32(...[[1.5, 0.5], [0.25, -1], [0.5, 0], [3, 0]][i])));
    const post = readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], name: 'conv' },
      { op: 'Add', inputs: ['a', 'x'], outputs: ['s'], name: 'add' },
      { op: 'BatchNormalization', inputs: ['s', 'g', 'be', 'mu', 'v'], outputs: ['n'], name: 'bn', attrs: [floatAttr('epsilon', 1)] },
      { op: 'Mul', inputs: ['n', 'two'], outputs: ['m'], name: 'mul' },
      { op: 'Add', inputs: ['m', 'half'], outputs: ['y'], name: 'shift' },
    ], { inits: [...inits, ...bn, tensor('half', [1], FLOAT, f32(0.5))], inputs: [valueInfo('x', [1, 2, 3, 3])] }));
    const p = fuseOnnx(post);
    expect(p.fused.map((f) => `${f.at}: ${f.pattern}`)).toEqual(['add: Conv 1×1 | identity → BN+scale+shift ⇒ Conv 1×1']);
    expect(p.model.nodes.map((n) => `${n.opType} ${n.outputs[0]}`)).toEqual(['Conv y']);
    expect(p.model.nodes[0].inputs.slice(1).map((t) => [...p.model.initializers.get(t)!.data])).toEqual([[2.625, -2.25, 0.125, 3], [0.25, -1.5]]); // a·(W + I), c: dyadic, exact
    const check = checkFused(post, p);
    expect(check.maxAbsDiff).toBeLessThanOrEqual(check.bound);
  });
  it('a Div by a constant is a scale of 1/c and a Neg one of −1: conv(x)/4 − x becomes W/4 − I, b/4; a Div by 0 is kept with the reason', () => {
    const divNeg = (c: number, ins = ['a', 'c']) => readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['a'], name: 'conv' },
      { op: 'Div', inputs: ins, outputs: ['q'], name: 'div' },
      { op: 'Neg', inputs: ['x'], outputs: ['n'], name: 'neg' },
      { op: 'Add', inputs: ['q', 'n'], outputs: ['y'], name: 'add' },
    ], { inits: [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w)), tensor('b', [2], FLOAT, f32(0.5, -3)), tensor('c', [], FLOAT, f32(c))], inputs: [valueInfo('x', [1, 2, 3, 3])] }));
    const r = fuseOnnx(divNeg(4));
    expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 1×1+scale | negate ⇒ Conv 1×1']);
    expect(r.model.nodes[0].inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data])).toEqual([[0.1875 - 1, -0.375, 0.03125, 0.5 - 1], [0.125, -0.75]]);
    const why = 'div: divides channel 0 by 0; no finite scale'; // the sum, then the Conv → Div chain alone
    expect(fuseOnnx(divNeg(0)).skipped).toEqual([{ at: 'add', why }, { at: 'div', why }]);
    const inverse = divNeg(4, ['c', 'a']); // 4 / conv(x): not linear in x
    expect(fuseOnnx(inverse).fused).toEqual([]);
  });
  it('a sum tree gives a term at most ~16 factors: x − (x − (… − conv(x))) fuses 8 deep, not 40 deep (10⁵ deep took 44 s and 4 GB before the cap)', () => {
    const nested = (d: number) => readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['s0'], name: 'conv' },
      ...Array.from({ length: d }, (_, i) => ({ op: 'Sub', inputs: ['x', `s${i}`], outputs: [`s${i + 1}`], name: `sub${i + 1}` })),
    ], { inits: [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w))], inputs: [valueInfo('x', [1, 2, 3, 3])], outputs: [`s${d}`] }));
    const m = nested(8), r = fuseOnnx(m);
    expect(r.fused.map((p) => p.nodesBefore)).toEqual([9]);
    // 8 negations: conv(x) enters with +1, and the x terms alternate to 0: W exactly
    expect([...r.model.initializers.get(r.model.nodes[0].inputs[1])!.data]).toEqual(w);
    expect(fuseOnnx(nested(40)).fused).toEqual([]);
    const scaled = readOnnx(graph([ // ½·(x + ½·(x + … conv(x))), 40 deep
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['m0'], name: 'conv' },
      ...Array.from({ length: 40 }, (_, i) => [{ op: 'Add', inputs: ['x', `m${i}`], outputs: [`s${i + 1}`], name: `add${i + 1}` }, { op: 'Mul', inputs: [`s${i + 1}`, 'half'], outputs: [`m${i + 1}`], name: `mul${i + 1}` }]).flat(),
    ], { inits: [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w)), tensor('half', [], FLOAT, f32(0.5))], inputs: [valueInfo('x', [1, 2, 3, 3])], outputs: ['m40'] }));
    expect(fuseOnnx(scaled).fused.map((p) => p.nodesBefore)).toEqual([]);
  });
  it('on a 1-D map only a scalar constant is a scale: a (C,1,1) one broadcasts (N, C, L) to another shape', () => {
    const m = readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], name: 'conv' },
      { op: 'Mul', inputs: ['a', 's'], outputs: ['y'], name: 'mul' },
    ], { inits: [tensor('w', [2, 2, 1], FLOAT, f32(...w)), tensor('s', [2, 1, 1], FLOAT, f32(0.5, 2))], inputs: [valueInfo('x', [1, 2, 5])] }));
    const r = fuseOnnx(m);
    expect(r.fused).toEqual([]);
    expect(r.skipped).toEqual([{ at: 'mul', why: 'mul: a scale of 2 values on 2 channels of a 1-D map' }]);
  });
  it('pplcnet: the learnable affine block after the sum folds in; the one after Hardswish folds into a 1×1 conv after it (second pass) and stays before a padded 3×3', () => {
    const r = fuseOnnx(readOnnx(new Uint8Array(readFileSync(fixturePath('onnx/pplcnet_opset17.onnx')))));
    expect(opCounts(r.model.nodes)).toMatchObject({ HardSwish: 2, Mul: 1, Add: 1 });
  });
  it('a dilation that would make the fused kernel huge is refused from its estimate (nothing allocated)', () => {
    const D = 100_000; // dense 200001×200001: 298 GiB in float64
    const r = fuseOnnx(readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w3'], outputs: ['a'], name: 'wide', attrs: [intsAttr('dilations', [D, D]), intsAttr('pads', [D, D, D, D])] },
      { op: 'Conv', inputs: ['x', 'w1'], outputs: ['b'], name: 'one' },
      { op: 'Add', inputs: ['a', 'b'], outputs: ['y'], name: 'add' },
    ], { inits: [tensor('w3', [1, 1, 3, 3], FLOAT, f32(...new Array(9).fill(0.5))), tensor('w1', [1, 1, 1, 1], FLOAT, f32(2))], inputs: [valueInfo('x', [1, 1, 4, 4])] })));
    expect(r.fused).toEqual([]);
    expect(r.skipped).toEqual([{ at: 'add', why: 'wide: dilation 100000 makes the fused kernel 200001×200001, 298.03 GiB in float64 (over 0.25 GiB); not fused' }]);
  });
  it('Conv → Mul by a Constant node scalar folds the scale into the weights and bias; the Constant goes too', () => {
    const value = P().string(1, 'value').message(5, tensor('s', [], FLOAT, f32(2.5))).varint(20, 4);
    const m = readOnnx(graph([
      { op: 'Constant', inputs: [], outputs: ['s'], name: 'scale', attrs: [value] },
      { op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['a'], name: 'conv' },
      { op: 'Mul', inputs: ['s', 'a'], outputs: ['y'], name: 'mul' },
    ], { inits: [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w)), tensor('b', [2], FLOAT, f32(0.5, -3))], inputs: [valueInfo('x', [1, 2, 3, 3])] }));
    const r = fuseOnnx(m);
    expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 1×1+scale ⇒ Conv 1×1']);
    expect(r.model.nodes.map((n) => `${n.opType} ${n.name} ${n.outputs[0]}`)).toEqual(['Conv mul y']);
    const [k, bias] = r.model.nodes[0].inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data]);
    expect(k).toEqual(w.map((v) => Math.fround(2.5 * v)));
    expect(bias).toEqual([1.25, -7.5]);
  });
  it('a Sum of three branches (tf2onnx\'s AddN) fuses as an Add tree does: 1×1 conv | 1×1 conv | identity → one conv, W₁ + W₂ + I', () => {
    const w2 = [0.5, 0.25, -0.25, 1];
    const m = readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], name: 'conv_a' },
      { op: 'Conv', inputs: ['x', 'w2', 'b2'], outputs: ['c'], name: 'conv_c' },
      { op: 'Sum', inputs: ['a', 'c', 'x'], outputs: ['y'], name: 'sum' },
    ], { inits: [tensor('w', [2, 2, 1, 1], FLOAT, f32(...w)), tensor('w2', [2, 2, 1, 1], FLOAT, f32(...w2)), tensor('b2', [2], FLOAT, f32(0.5, -3))], inputs: [valueInfo('x', [1, 2, 3, 3])] }));
    const r = fuseOnnx(m);
    expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 1×1 | Conv 1×1 | identity ⇒ Conv 1×1']);
    expect(r.model.nodes.map((n) => `${n.opType} ${n.name} ${n.outputs[0]}`)).toEqual(['Conv sum y']);
    const [k, bias] = r.model.nodes[0].inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data]);
    expect(k).toEqual(w.map((v, i) => v + w2[i] + (i === 0 || i === 3 ? 1 : 0))); // dyadic: exact
    expect(bias).toEqual([0.5, -3]);
  });

  it('a sum around a sum, x + BN(conv₁(x) + conv₂(x)), fuses in two passes: the inner sum into one conv, then the identity with it', () => {
    // one channel; BN with γ = 2, β = 0.5, μ = 0.25, σ² = 1, ε = 0: BN(v) = 2(v − 0.25) + 0.5 = 2v
    const w3 = [0.5, 0, -0.25, 1, 0.75, 0, 0, 0.25, -1];
    const m = readOnnx(graph([
      { op: 'Conv', inputs: ['x', 'w3'], outputs: ['a'], name: 'conv3', attrs: [intsAttr('pads', [1, 1, 1, 1])] },
      { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c'], name: 'conv1' },
      { op: 'Add', inputs: ['a', 'c'], outputs: ['s'], name: 'inner' },
      { op: 'BatchNormalization', inputs: ['s', 'g', 'be', 'mu', 'var'], outputs: ['t'], name: 'bn', attrs: [floatAttr('epsilon', 0)] },
      { op: 'Add', inputs: ['x', 't'], outputs: ['y'], name: 'outer' },
    ], { inits: [tensor('w3', [1, 1, 3, 3], FLOAT, f32(...w3)), tensor('w1', [1, 1, 1, 1], FLOAT, f32(0.5)), tensor('b1', [1], FLOAT, f32(0.25)),
      tensor('g', [1], FLOAT, f32(2)), tensor('be', [1], FLOAT, f32(0.5)), tensor('mu', [1], FLOAT, f32(0.25)), tensor('var', [1], FLOAT, f32(1))], inputs: [valueInfo('x', [1, 1, 4, 4])] }));
    const r = fuseOnnx(m);
    expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 3×3 | Conv 1×1 → BN ⇒ Conv 3×3', 'identity | Conv 3×3 ⇒ Conv 3×3']);
    expect(r.model.nodes.map((n) => `${n.opType} ${n.name} ${n.outputs[0]}`)).toEqual(['Conv outer y']);
    const [k, bias] = r.model.nodes[0].inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data]);
    // K = I + 2·(W₃ + pad(w₁)), b = 2·(b₁ − μ) + β = 2·0 + 0.5; dyadic: exact
    expect(k).toEqual(w3.map((v, i) => 2 * v + (i === 4 ? 2 * 0.5 + 1 : 0)));
    expect(bias).toEqual([0.5]);
  });

  it('sums nested six deep, s₀ = conv(x) + conv(x), sᵢ₊₁ = x + BN(sᵢ), fuse a level a pass into one 1×1 conv of weight 2 − 2⁻⁶', () => {
    const nodes: NodeSpec[] = [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['a'] }, { op: 'Conv', inputs: ['x', 'w'], outputs: ['b'] }, { op: 'Add', inputs: ['a', 'b'], outputs: ['s0'] }];
    for (let i = 0; i < 6; i++) {
      nodes.push({ op: 'BatchNormalization', inputs: [`s${i}`, 'g', 'be', 'mu', 'var'], outputs: [`t${i}`], attrs: [floatAttr('epsilon', 0)] });
      nodes.push({ op: 'Add', inputs: ['x', `t${i}`], outputs: [`s${i + 1}`] });
    }
    const m = readOnnx(graph(nodes, { outputs: ['s6'], inputs: [valueInfo('x', [1, 1, 3, 3])],
      inits: [tensor('w', [1, 1, 1, 1], FLOAT, f32(0.5)), tensor('g', [1], FLOAT, f32(0.5)), tensor('be', [1], FLOAT, f32(0)), tensor('mu', [1], FLOAT, f32(0)), tensor('var', [1], FLOAT, f32(1))] }));
    const r = fuseOnnx(m);
    expect(r.skipped).toEqual([]);
    expect(r.model.nodes.map((n) => n.opType)).toEqual(['Conv']);
    // s₀ = x, sᵢ₊₁ = x + sᵢ/2: s₆ = (2 − 2⁻⁶)·x; dyadic: exact
    const [k, bias] = r.model.nodes[0].inputs.slice(1).map((t) => [...r.model.initializers.get(t)!.data]);
    expect(k).toEqual([2 - 2 ** -6]);
    expect(bias).toEqual([0]);
  });
});

describe('the probe\'s multiply-adds', () => {
  it('count Conv, ConvTranspose, Gemm and MatMul: 864 + 384 + 640 + 15', () => {
    const m = readOnnx(graph([
      // (1,2,4,4) → 3×3 conv, 3 out, pad 1: 48 outputs × 2·9
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['a'], attrs: [intsAttr('pads', [1, 1, 1, 1])] },
      // → 2×2 stride-2 transposed conv, 2 out: 48 inputs × 2·2·2 (each input meets its whole kernel slice)
      { op: 'ConvTranspose', inputs: ['a', 'wt'], outputs: ['b'], attrs: [intsAttr('strides', [2, 2])] },
      { op: 'Flatten', inputs: ['b'], outputs: ['f'] },
      // (1, 128) · (128, 5): 5 outputs × 128; then (1, 5) · (5, 3): 3 × 5
      { op: 'Gemm', inputs: ['f', 'g'], outputs: ['h'] },
      { op: 'MatMul', inputs: ['h', 'mm'], outputs: ['y'] },
    ], { inputs: [valueInfo('x', [1, 2, 4, 4])], outputs: ['y'], inits: [tensor('w', [3, 2, 3, 3], FLOAT, f32(...new Array(54).fill(0.5))), tensor('wt', [3, 2, 2, 2], FLOAT, f32(...new Array(24).fill(0.25))),
      tensor('g', [128, 5], FLOAT, f32(...new Array(640).fill(0.125))), tensor('mm', [5, 3], FLOAT, f32(...new Array(15).fill(1)))] }));
    expect(probeRun(m).macs).toBe(864 + 384 + 640 + 15);
  });
});

describe('float16 graphs', () => {
  // float16 bits by hand (IEEE 754 binary16): the fuser's sums rounded once to nearest even, then written as float16
  const F16 = 10, h16 = (...bits: number[]) => new Uint8Array(new Uint16Array(bits).buffer);
  // 3×3 taps 0.25, 0, −0.5, 1, 0.5, 0, 0, 0.125, −1; the 1×1 weight 0.5 + 2⁻¹¹ (0x3801)
  const w3 = h16(0x3400, 0, 0xb800, 0x3c00, 0x3800, 0, 0, 0x3000, 0xbc00), w1 = h16(0x3801);
  const bytes = graph([
    { op: 'Conv', inputs: ['x', 'w3'], outputs: ['a'], name: 'conv3', attrs: [intsAttr('pads', [1, 1, 1, 1])] },
    { op: 'Conv', inputs: ['x', 'w1'], outputs: ['c'], name: 'conv1' },
    { op: 'Add', inputs: ['a', 'c'], outputs: ['s'], name: 'add1' },
    { op: 'Add', inputs: ['s', 'x'], outputs: ['y'], name: 'add2' },
  ], { inits: [tensor('w3', [1, 1, 3, 3], F16, w3), tensor('w1', [1, 1, 1, 1], F16, w1)], inputs: [valueInfo('x', [1, 1, 3, 3], F16)], outputInfos: [valueInfo('y', [1, 1, 3, 3], F16)] });

  it('fuse into float16 weights, the centre 0.5 + (0.5 + 2⁻¹¹) + 1 rounded to 2 (a tie, to even); written as float16 that onnxruntime-web runs', async () => {
    const r = fuseOnnx(readOnnx(bytes));
    expect(r.fused.map((p) => p.pattern)).toEqual(['Conv 3×3 | Conv 1×1 | identity ⇒ Conv 3×3']);
    const [wt, bt] = r.model.nodes[0].inputs.slice(1).map((t) => r.model.initializers.get(t)!);
    expect([wt.dtype, bt.dtype]).toEqual(['float16', 'float16']);
    const K = [0.25, 0, -0.5, 1, 2, 0, 0, 0.125, -1];
    expect(Array.from(wt.data)).toEqual(K);
    expect(Array.from(bt.data)).toEqual([0]);
    // the written file holds those float16 bits, and reads back to the same graph
    const out = onnxProtoOf(r.model).encode();
    const back = readOnnx(out);
    expect(back.initializers.get(wt.name)!.dtype).toBe('float16');
    expect(Array.from(back.initializers.get(wt.name)!.data)).toEqual(K);
    // onnxruntime-web runs the fused float16 graph: small integers in, every sum exact in float16
    // (multiples of 1/8 below 2¹¹/8), so its output is the exact convolution, summed here in float64
    const x = [1, -2, 3, 0, 4, -1, 2, 1, -3];
    const session = await ort.InferenceSession.create(out);
    const y = (await session.run({ x: new ort.Tensor('float16', new Uint16Array(h16(0x3c00, 0xc000, 0x4200, 0, 0x4400, 0xbc00, 0x4000, 0x3c00, 0xc200).buffer), [1, 1, 3, 3]) })).y;
    await session.release();
    const want: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let sum = 0;
      for (let di = -1; di <= 1; di++) for (let dj = -1; dj <= 1; dj++) if (i + di >= 0 && i + di < 3 && j + dj >= 0 && j + dj < 3) sum += K[(di + 1) * 3 + dj + 1] * x[(i + di) * 3 + j + dj];
      want.push(sum);
    }
    expect(y.type).toBe('float16');
    const halves = new Uint16Array((y.data as Uint16Array).buffer, (y.data as Uint16Array).byteOffset, 9);
    const { halfToFloat } = await import('../../src/io/dtypes.js');
    expect(Array.from(halves, halfToFloat)).toEqual(want);
  });

  it('the probe holds a float16 graph to u = 2⁻¹¹ (its weights are float16), not float32\'s 2⁻²⁴', () => {
    const original = readOnnx(bytes), r = fuseOnnx(readOnnx(bytes));
    const check = checkFused(original, r, { size: 3 });
    // the rounding of the centre moved outputs by 2⁻¹¹·|x| at most; the bound 16·1·2⁻¹¹·max|y| is above it, float32's would not be
    expect(check.maxAbsDiff).toBeGreaterThan(16 * 2 ** -24 * check.maxAbsOutput);
    expect(check.maxAbsDiff).toBeLessThanOrEqual(check.bound);
    expect(check.bound).toBeCloseTo(16 * 2 ** -11 * check.maxAbsOutput + 1e-12 * check.maxAbsOutput, 12);
  });
});

describe('repvgg explain --onnx', () => {
  it('lists every fusable pattern and walks the first through the fuser\'s steps, ending at the fused conv fuse-onnx writes', async () => {
    const { cli } = await import('../cli/run.js');
    const r = await cli('explain', '--onnx', fixturePath('onnx/yolov6_stack_opset17.onnx'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/19 nodes, opset 17; 3 pattern\(s\) fuse/);
    expect(r.out).toMatch(/Conv 3×3 \| Conv 1×1 \| identity → BN ⇒ Conv 3×3 \(5 nodes → 1\)/);
    expect(r.out).toMatch(/centre the branch in 3×3[\s\S]*add the branches[\s\S]*fold the BN after the sum/);
    const t = await cli('explain', '--onnx', fixturePath('onnx/pose_head_opset17.onnx')); // a first pattern that is a ConvTranspose → BN fold
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/step by step[^\n]*\n1\. \/up1\/up1\.1\/BatchNormalization: fold the BN into the ConvTranspose's output channels[^\n]*\n  K \(8, 8, 4, 4\)/);
  });
});

// Random multi-branch blocks: 1–3 branches (3×3 or 1×1 conv with or without BN and bias, identity
// with or without BN, 1×1 → 3×3 chains with or without a BN between, a scalar Mul), strides 1 and
// 2, groups 1 and 2, an optional BN after the sum and a nonlinearity. Every weight and BN parameter
// is dyadic (weights k/64, γ and β k/8, variances ¼, 1 or 4 with ε = 0), so folding and summing are
// exact in float32 and the fused graph computes the same function to float64's own rounding: the
// two graphs, both evaluated in float64, agree within 1e-12·max(1, |y|) (≤ 60 products a term,
// summed in different orders: 60·2⁻⁵³ relative). A fuser that padded, centred or folded wrong
// would differ by O(|y|). A chain with a BN between pads a biased input and must not fuse across it.
describe('fuseOnnx on random multi-branch blocks (dyadic parameters: the fused function is exact)', () => {
  it('150 blocks: the fused graph computes the original function; most of them fuse', () => {
    const gen = new Rng(20261206), r = () => gen.next();
    const ri = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
    const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
    const epsZero = floatAttr('epsilon', 0);
    let fusedBlocks = 0;
    for (let t = 0; t < 150; t++) {
      const g = pick([1, 1, 2]), C = g * ri(1, 3), F = pick([C, g * ri(1, 3)]), s = pick([1, 1, 2]);
      const nodes: NodeSpec[] = [], inits: ProtoMessage[] = [];
      let uid = 0;
      const init = (dims: number[], v: () => number) => { const name = `p${uid++}`; inits.push(tensor(name, dims, FLOAT, f32(...Array.from({ length: dims.reduce((a, b) => a * b, 1) }, v)))); return name; };
      const add = (op: string, inputs: string[], attrs: ProtoMessage[] = []) => { const out = `v${uid++}`; nodes.push({ op, inputs, outputs: [out], attrs }); return out; };
      const k64 = () => ri(-64, 64) / 64, k8 = () => ri(-8, 8) / 8;
      const bn = (x: string, c: number) => add('BatchNormalization', [x, init([c], () => ri(4, 12) / 8), init([c], k8), init([c], k8), init([c], () => pick([0.25, 1, 4]))], [epsZero]);
      const conv = (x: string, cin: number, cout: number, k: number, stride: number, bias: boolean) =>
        add('Conv', [x, init([cout, cin / g, k, k], k64), ...(bias ? [init([cout], k8)] : [])], [intsAttr('kernel_shape', [k, k]), intsAttr('pads', Array(4).fill(k >> 1)), intsAttr('strides', [stride, stride]), intAttr('group', g)]);
      const branches: string[] = [];
      let convs = 0, biasedPad = false; // a chain with a BN between pads a biased input: it must stay apart
      for (let b = ri(1, 3); b > 0; b--) {
        const kind = pick(['3x3', '3x3', '1x1', 'identity', 'chain', 'mul']);
        if (kind === 'identity' && C === F && s === 1) branches.push(r() < 0.7 ? bn('x', C) : 'x');
        else if (kind === 'mul' && C === F && s === 1) branches.push(add('Mul', ['x', init([], () => pick([0.5, 2, -1.5]))]));
        else if (kind === 'chain') { let y = conv('x', C, C, 1, 1, false); if (r() < 0.5) { y = bn(y, C); biasedPad = true; } y = conv(y, C, F, 3, s, false); branches.push(r() < 0.5 ? bn(y, F) : y); convs++; }
        else { const y = conv('x', C, F, kind === '1x1' ? 1 : 3, s, r() < 0.3); branches.push(r() < 0.7 ? bn(y, F) : y); convs++; }
      }
      let y = branches.reduce((a, b) => add('Add', [a, b]));
      if (r() < 0.5) y = bn(y, F);
      nodes.push({ op: pick(['Relu', 'Sigmoid', 'Identity']), inputs: [y], outputs: ['y'] });
      const x = [1, C, ri(3, 7), ri(3, 7)];
      const m = readOnnx(graph(nodes, { inits, inputs: [valueInfo('x', x)], outputs: ['y'], outputInfos: [valueInfo('y', null)] }));
      const fused = fuseOnnx(m);
      if (fused.fused.length > 0) fusedBlocks++;
      // with a conv among the branches and no biased padding, everything linear becomes one Conv
      if (convs > 0 && !biasedPad) expect(fused.model.nodes.map((n) => n.opType).filter((o) => !['Relu', 'Sigmoid', 'Identity'].includes(o)), `block ${t}`).toEqual(['Conv']);
      const input = uniform(x, new Rng(t), -1, 1).to('float64');
      const want = runOnnx(m, { x: input }, { dtype: 'float64' }).get('y')!;
      const got = runOnnx(readOnnx(onnxProtoOf(fused.model).encode()), { x: input }, { dtype: 'float64' }).get('y')!;
      expect(got.shape, `block ${t}`).toEqual(want.shape);
      expect(maxDiff(got.data, want.data), `block ${t}: ${fused.fused.map((f) => f.pattern).join('; ')}`).toBeLessThanOrEqual(1e-12 * Math.max(1, maxAbs(want.data)));
    }
    expect(fusedBlocks).toBeGreaterThan(100); // not vacuous: most blocks had something to fuse
  });
});
