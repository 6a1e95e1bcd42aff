// Post-training quantization (src/onnx/quantize.ts): the weights' and biases' integers against their
// closed forms, and the quantized deploy RepVGG run here and in onnxruntime-web: every quantized
// activation bit for bit (tolerance 0: integers, onnxruntime's QDQ semantics, src/onnx/qdq.ts).
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { readOnnx } from '../../src/io/onnx_read.js';
import { onnxProtoOf, toOnnx } from '../../src/io/onnx.js';
import { RepVGG } from '../../src/nn/repvgg.js';
import { convert } from '../../src/reparam/repvgg.js';
import { affineParams, quantizationMse, quantizeOnnx } from '../../src/onnx/quantize.js';
import { runOnnx } from '../../src/onnx/run.js';
import { roundHalfEven } from '../../src/onnx/value.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { readFileSync } from 'node:fs';
import type { OnnxModel } from '../../src/io/onnx_read.js';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { classifierFromStateDict } from '../../src/io/state_dict.js';
import type { MobileOne } from '../../src/nn/mobileone.js';
import { DEMO_CONFIG } from '../../src/cli/commands/demo.js';
import { fixturePath } from '../helpers.js';

ort.env.wasm.numThreads = 1;

function deployGraph() {
  const cfg = { num_blocks: [1, 2, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], num_classes: 5, in_channels: 3 };
  const train = RepVGG.fromConfig(cfg, { seed: 5 }).eval();
  for (const b of train.blocks()) for (const bn of [b.rbrDense?.bn, b.rbr1x1?.bn, b.rbrIdentity]) if (bn) { bn.runningMean.data.fill(0.05); bn.runningVar.data.fill(0.8); }
  return readOnnx(toOnnx(convert(train)));
}

describe('quantizeOnnx', () => {
  it('a graph exported with a fixed batch calibrates that many images a run: min-max over all of them, percentiles over every value; a count that is not a multiple is refused', () => {
    const model = readOnnx(readFileSync(fixturePath('onnx/resnet_basic_opset17.onnx'))); // input [2, 3, 32, 30]
    const calib = uniform([6, 3, 32, 30], new Rng(3), -1, 1), image = 3 * 32 * 30;
    const { layers } = quantizeOnnx(model, calib);
    // each conv's (and the classifier's) input range seen here directly: min and max of what it reads over the three runs of two images
    const seen = new Map<string, [number, number]>(), values = new Map<string, number[]>();
    for (let k = 0; k < 3; k++) {
      runOnnx(model, [new Tensor(calib.data.slice(2 * k * image, 2 * (k + 1) * image), [2, 3, 32, 30])], { algorithm: 'im2col', onNode: (_i, _n, node, xs) => {
        if (node.opType !== 'Conv' && node.opType !== 'Gemm') return;
        const v = xs[0]!.data, r = seen.get(node.name) ?? [Infinity, -Infinity];
        seen.set(node.name, [Math.min(r[0], ...v), Math.max(r[1], ...v)]);
        values.set(node.name, [...(values.get(node.name) ?? []), ...v]);
      } });
    }
    expect(layers.length).toBe(7); // 6 convs and the classifier
    for (const l of layers) expect(l.input.range, l.conv).toEqual(seen.get(l.conv));
    expect(() => quantizeOnnx(model, uniform([5, 3, 32, 30], new Rng(4), -1, 1))).toThrow("the graph's input has a fixed batch of 2; calibrate on a multiple of 2 images (got 5; e.g. --calib-count 4)");
    // percentiles of all six images' values: the sorted values at round(q/100·(n − 1)), q = 1 and 99
    const pct = quantizeOnnx(model, calib, { method: 'percentile', percentile: 99 }).layers;
    for (const l of pct.slice(1)) {
      const sorted = values.get(l.conv)!.sort((a, b) => a - b), at = (q: number) => sorted[Math.round((q / 100) * (sorted.length - 1))];
      expect(l.input.range, l.conv).toEqual([at(1), at(99)]);
    }
  });

  it('bits b: weights on ±(2^(b−1) − 1) at max|w|/(2^(b−1) − 1), activations on 2^b codes; outside 2–8 refused before any work', () => {
    // b = 4: weights ±7, s = max|w|/7; uint8 [0, 15], s = (hi − lo)/15; int8 [−8, 7]
    expect(affineParams(-1, 3, 'uint8', 4)).toEqual({ scale: Math.fround(4 / 15), zeroPoint: 4 }); // 15/4 = 3.75 → 4
    expect(affineParams(-2, 2, 'int8', 4)).toEqual({ scale: Math.fround(4 / 15), zeroPoint: -1 }); // −8 + 2/fl(4/15) = −0.50000002 (fl rounds 4/15 up) → −1
    const model = deployGraph();
    const calib = uniform([4, 3, 16, 16], new Rng(2), -1, 1);
    const { model: q } = quantizeOnnx(model, calib, { bits: 4 });
    for (const [name, t] of q.initializers) {
      if (!name.endsWith('.weight_quantized')) continue;
      const conv = q.nodes.find((n) => n.inputs[1] === `${name.slice(0, -'.weight_quantized'.length)}.weight_dq`)!;
      if (conv.opType !== 'Conv') continue; // the classifier's MatMul: its transposed per-tensor weights are checked in the next test
      const w = model.initializers.get(model.nodes.find((n) => n.name === conv.name)!.inputs[1])!.data;
      const scales = q.initializers.get(name.replace('_quantized', '_scale'))!.data;
      const per = t.data.length / scales.length;
      for (let c = 0; c < scales.length; c++) {
        let m = 0;
        for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(w[i]));
        expect(scales[c]).toBe(Math.fround(m / 7));
        for (let i = c * per; i < (c + 1) * per; i++) expect(Math.abs(t.data[i])).toBeLessThanOrEqual(7);
      }
    }
    // the calibration batch itself lands on the 4-bit grid: codes 0…15
    const acts = q.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.outputs[0]);
    const run = runOnnx({ ...q, outputs: [...q.outputs, ...acts.map((a) => ({ name: a, dtype: 'uint8' as const, dims: null }))] }, { input: calib });
    for (const a of acts) expect(Math.max(...run.get(a)!.data), a).toBeLessThanOrEqual(15);
    for (const bits of [1, 9, 2.5]) expect(() => quantizeOnnx(model, new Tensor(Float32Array.of(NaN), [1, 1, 1, 1]), { bits })).toThrow(`bits must be an integer from 2 to 8 (int8/uint8 containers), got ${bits}`);
  });

  it('scale and zero point: the range widened to hold 0, s = (hi − lo)/255, zp = rte(qmin − lo/s)', () => {
    expect(affineParams(-1, 3, 'uint8')).toEqual({ scale: Math.fround(4 / 255), zeroPoint: 64 }); // 255/4 = 63.75 → 64
    expect(affineParams(0.5, 2, 'uint8')).toEqual({ scale: Math.fround(2 / 255), zeroPoint: 0 }); // lo raised to 0
    expect(affineParams(-2, 2, 'int8')).toEqual({ scale: Math.fround(4 / 255), zeroPoint: -1 }); // −128 + 2/fl(4/255) = −0.5000000x (the float32 scale) → −1
  });

  it('weights int8 per output channel at max|w|/127, biases int32 at s_x·s_w, every Relu folded into its output\'s zero point', () => {
    const model = deployGraph();
    const first = model.initializers.get(model.nodes.find((n) => n.opType === 'Conv')!.inputs[1])!;
    first.data[first.data.length / first.dims[0] - 1] = -3; // channel 0's largest |w| is its last element
    const calib = uniform([4, 3, 16, 16], new Rng(1), -1, 1);
    const { model: q, layers } = quantizeOnnx(model, calib);
    expect(layers.length).toBe(7); // stage0 and 1 + 2 + 1 + 1 blocks, then the classifier
    expect(layers.slice(0, 6).every((l) => l.reluFolded && l.output.zeroPoint === 0 && l.output.range[0] >= 0)).toBe(true);
    // the classifier y = x·Wᵀ + b: MatMul on W' = Wᵀ, int8 per tensor at max|W|/127, the bias added after in float
    const gemm = model.nodes.find((n) => n.opType === 'Gemm')!, W = model.initializers.get(gemm.inputs[1])!;
    const [N, K] = W.dims, Wq = q.initializers.get(`${gemm.name}.weight_quantized`)!, Ws = q.initializers.get(`${gemm.name}.weight_scale`)!.data[0];
    expect(Wq.dims).toEqual([K, N]);
    expect(Ws).toBe(Math.fround(Math.max(...Array.from(W.data, Math.abs)) / 127));
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) expect(Wq.data[k * N + n]).toBe(roundHalfEven(Math.fround(W.data[n * K + k] / Ws)));
    expect(q.nodes.filter((n) => n.opType === 'Gemm')).toEqual([]);
    expect(q.nodes.at(-1)).toMatchObject({ opType: 'Add', inputs: [`${gemm.outputs[0]}.matmul`, gemm.inputs[2]], outputs: gemm.outputs });
    expect(quantizeOnnx(model, calib, { keepLastFloat: true }).layers.length).toBe(6);
    const conv = model.nodes.find((n) => n.opType === 'Conv')!;
    const w = model.initializers.get(conv.inputs[1])!, b = model.initializers.get(conv.inputs[2])!;
    const F = w.dims[0], per = w.data.length / F;
    const wq = q.initializers.get(`${conv.name}.weight_quantized`)!.data, ws = q.initializers.get(`${conv.name}.weight_scale`)!.data;
    const bq = q.initializers.get(`${conv.name}.bias_quantized`)!.data;
    for (let f = 0; f < F; f++) {
      const m = Math.max(...Array.from(w.data.subarray(f * per, (f + 1) * per), Math.abs));
      expect(ws[f]).toBe(Math.fround(m / 127));
      for (let i = f * per; i < (f + 1) * per; i++) expect(wq[i]).toBe(roundHalfEven(Math.fround(w.data[i] / ws[f])));
      expect(Math.max(...Array.from(wq.subarray(f * per, (f + 1) * per), Math.abs))).toBe(127);
      expect(bq[f]).toBe(roundHalfEven(b.data[f] / Math.fround(layers[0].input.scale * ws[f])));
    }
    expect(q.nodes.filter((n) => n.opType === 'Relu')).toEqual([]);
  });

  it('quantizationMse: 0 for values on the grid, (s/2)² for one half a step off', () => {
    const { scale: s } = affineParams(0, 2.55, 'uint8');
    expect(quantizationMse([0, s, 2 * s], 0, 2.55, 'uint8')).toBe(0);
    expect(quantizationMse([Math.fround(0.5 * s)], 0, 2.55, 'uint8')).toBeCloseTo((0.5 * s) ** 2, 12); // rte(0.5) = 0
  });

  it('mse calibration clips the tails of a Gaussian (10⁵ values), and its error measured directly is below min-max\'s', () => {
    const rng = new Rng(8), n = 100_000, g = new Float32Array(n);
    for (let i = 0; i < n; i += 2) { // Box–Muller
      const r = Math.sqrt(-2 * Math.log(1 - rng.next())), t = 2 * Math.PI * rng.next();
      g[i] = r * Math.cos(t); g[i + 1] = r * Math.sin(t);
    }
    const model = deployGraph();
    const calib = new Tensor(g.subarray(0, 3 * 16 * 16 * 130), [130, 3, 16, 16]);
    const mm = quantizeOnnx(model, calib).layers[0].input, mse = quantizeOnnx(model, calib, { method: 'mse' }).layers[0].input;
    expect(mse.range[1]).toBeLessThan(0.95 * mm.range[1]);
    expect(quantizationMse(calib.data, ...mse.range, 'uint8')).toBeLessThan(quantizationMse(calib.data, ...mm.range, 'uint8'));
  });

  it('the quantized graph runs here and in onnxruntime-web to the same integers at every quantized activation', async () => {
    const model = deployGraph();
    const { model: q } = quantizeOnnx(model, uniform([4, 3, 16, 16], new Rng(2), -1, 1), { method: 'percentile', percentile: 99.9 });
    const acts = q.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.outputs[0]);
    const withActs = { ...q, outputs: [...q.outputs, ...acts.map((name) => ({ name, dtype: 'uint8' as const, dims: null }))] };
    const bytes = onnxProtoOf(withActs).encode();
    const x = uniform([2, 3, 16, 16], new Rng(3), -1, 1);
    const ours = runOnnx(readOnnx(bytes), { input: x }, { algorithm: 'im2col' });
    const session = await ort.InferenceSession.create(bytes);
    const theirs = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape as number[]) });
    await session.release();
    for (const a of acts) expect(Array.from(ours.get(a)!.data), a).toEqual(Array.from(theirs[a].data as Uint8Array));
    // the same graph as opset 26 (IR 13): QuantizeLinear and DequantizeLinear at their version 25, which
    // adds element types and attributes left at their defaults here: the same integers, here and there
    const bytes26 = onnxProtoOf({ ...withActs, opset: 26, irVersion: 13 }).encode();
    const ours26 = runOnnx(readOnnx(bytes26), { input: x }, { algorithm: 'im2col' });
    const s26 = await ort.InferenceSession.create(bytes26);
    const theirs26 = await s26.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape as number[]) });
    await s26.release();
    for (const a of acts) {
      expect(Array.from(theirs26[a].data as Uint8Array), `${a} at opset 26`).toEqual(Array.from(theirs[a].data as Uint8Array));
      expect(Array.from(ours26.get(a)!.data), `${a} at opset 26`).toEqual(Array.from(theirs26[a].data as Uint8Array));
    }
    // the QOperator form: the same integers, from QLinearConv nodes on integer tensors
    const { model: qop } = quantizeOnnx(model, uniform([4, 3, 16, 16], new Rng(2), -1, 1), { method: 'percentile', percentile: 99.9, form: 'qoperator' });
    expect(qop.nodes.filter((n) => n.opType === 'QLinearConv').length).toBe(6);
    expect(qop.nodes.filter((n) => n.opType === 'QLinearMatMul').length).toBe(1); // the classifier
    expect(qop.nodes.filter((n) => n.opType === 'Conv')).toEqual([]);
    const last = acts.at(-1)!;
    const opBytes = onnxProtoOf({ ...qop, outputs: [...qop.outputs, { name: last, dtype: 'uint8', dims: null }] }).encode();
    const s2 = await ort.InferenceSession.create(opBytes);
    const theirs2 = await s2.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape as number[]) });
    await s2.release();
    expect(Array.from(theirs2[last].data as Uint8Array)).toEqual(Array.from(ours.get(last)!.data));
    expect(Array.from(runOnnx(readOnnx(opBytes), { input: x }).get(last)!.data)).toEqual(Array.from(ours.get(last)!.data));
    const float = runOnnx(model, { input: x }, { algorithm: 'im2col' }).get('logits')!.data, quant = ours.get('logits')!.data;
    let err = 0, big = 0;
    for (let i = 0; i < float.length; i++) { err = Math.max(err, Math.abs(float[i] - quant[i])); big = Math.max(big, Math.abs(float[i])); }
    expect(err).toBeLessThan(0.2 * big); // a sanity bound only: 5 layers of 8-bit rounding on random weights
  });

  // The targets' fixtures: a grouped RepVGG, a MobileOne (depthwise and pointwise blocks, an SE left in
  // float between quantized convs), the demo's model and a 1-D CNN; per channel and per tensor; uint8 and int8.
  const fixtures: [string, () => OnnxModel, number[]][] = [
    ['grouped RepVGG (groups 2 and 4)', () => {
      const train = RepVGG.fromConfig({ num_blocks: [1, 2, 1, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], override_groups_map: { 2: 2, 3: 4 }, num_classes: 5 }, { seed: 6 }).eval();
      for (const b of train.blocks()) for (const bn of [b.rbrDense?.bn, b.rbr1x1?.bn, b.rbrIdentity]) if (bn) { bn.runningMean.data.fill(0.05); bn.runningVar.data.fill(0.8); }
      return readOnnx(toOnnx(convert(train)));
    }, [2, 3, 16, 16]],
    ['MobileOne, depthwise with SE', () => readOnnx(toOnnx(classifierFromStateDict(parseCheckpoint(new Uint8Array(readFileSync(fixturePath('networks/ours/mobileone_s4_deploy.pth')))).entries) as MobileOne)), [2, 3, 32, 32]],
    ['the demo model', () => {
      const train = RepVGG.fromConfig(DEMO_CONFIG, { seed: 7 }).eval();
      for (const b of train.blocks()) for (const bn of [b.rbrDense?.bn, b.rbr1x1?.bn, b.rbrIdentity]) if (bn) { bn.runningMean.data.fill(0.05); bn.runningVar.data.fill(0.8); }
      return readOnnx(toOnnx(convert(train)));
    }, [2, 1, 28, 28]],
    // 1-D convs, exported by PyTorch with a fixed batch of 2 (the 4 calibration sequences run 2 at a time)
    ['a 1-D CNN from PyTorch', () => readOnnx(new Uint8Array(readFileSync(fixturePath('onnx/sequence1d_opset17.onnx')))), [2, 3, 37]],
  ];
  for (const [name, make, shape] of fixtures) {
    it(`${name}: 0 differing codes against onnxruntime-web (per channel and per tensor, uint8 and int8; 4-bit grids on the grouped one); the fake-quantized float path within one step`, async () => {
      const model = make();
      const calib = uniform([4, ...shape.slice(1)], new Rng(8), -1, 1), x = uniform(shape, new Rng(9), -1, 1);
      // every form on the grouped RepVGG; two on the larger ones (the forms' code paths are the same)
      const forms = name.startsWith('grouped') ? [[true, 'uint8', 8], [true, 'int8', 8], [false, 'uint8', 8], [false, 'int8', 8], [true, 'uint8', 4]] as const : [[true, 'uint8', 8], [false, 'int8', 8]] as const;
      for (const [perChannel, activations, bits] of forms) {
        const { model: q } = quantizeOnnx(model, calib, { perChannel, activations, bits });
        const acts = q.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.outputs[0]);
        const bytes = onnxProtoOf({ ...q, outputs: [...q.outputs, ...acts.map((a) => ({ name: a, dtype: activations, dims: null }))] }).encode();
        const ours = runOnnx(readOnnx(bytes), { input: x }, { algorithm: 'im2col' });
        const session = await ort.InferenceSession.create(bytes);
        const theirs = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape as number[]) });
        await session.release();
        let differing = 0, offByMore = 0;
        // the fake-quantized path: every Q/DQ in float around float convs (runOnnx qdq 'float')
        const fake = runOnnx(readOnnx(bytes), { input: x }, { algorithm: 'im2col', qdq: 'float' });
        for (const a of acts) {
          const o = ours.get(a)!.data, t = theirs[a].data as Uint8Array | Int8Array, f = fake.get(a)!.data;
          for (let i = 0; i < o.length; i++) { if (o[i] !== t[i]) differing++; if (Math.abs(o[i] - f[i]) > 1) offByMore++; }
        }
        expect(differing, `${perChannel ? 'per channel' : 'per tensor'} ${activations} ${bits} bits`).toBe(0);
        expect(offByMore, `${perChannel ? 'per channel' : 'per tensor'} ${activations} ${bits} bits: fake-quantized codes more than one step from the integer ones`).toBe(0);
      }
    }, 20_000);
  }
});
