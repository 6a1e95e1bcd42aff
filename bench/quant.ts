// INT8, measured (issue targets: quantize + report on RepVGG-A0 < 10 s; 0 differing codes against
// onnxruntime on RepVGG-A0 at 64×64): quantizeOnnx of a deploy A0 and quantReport of the training-time
// one, on an 8×3×64×64 calibration batch, median of 3, one thread; then every quantized activation of
// the QDQ file run here and in onnxruntime-web (per channel and per tensor, uint8 and int8), counted.
// Then the INT8 run's pace at 224 against the float graph and onnxruntime-web.
//   npm run build && tsc -p tsconfig.bench.json && node build/bench/quant.js
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { toOnnx } from '../src/io/onnx.js';
import { readOnnx } from '../src/io/onnx_read.js';
import { quantizeOnnx } from '../src/onnx/quantize.js';
import { quantReport } from '../src/onnx/quant_report.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { setThreads } from '../src/backend/threads.js';
import { alternate, median } from './harness.js';
import { onnxProtoOf } from '../src/io/onnx.js';
import { runOnnx } from '../src/onnx/run.js';
import * as ort from 'onnxruntime-web';

setThreads(1);
const train = RepVGG.fromConfig(zooConfig('A0'), { seed: 1 }).eval();
const calib = uniform([8, 3, 64, 64], new Rng(1), -1, 1);
const q: number[] = [], r: number[] = [];
for (let k = 0; k < 3; k++) {
  let t = performance.now();
  quantizeOnnx(readOnnx(toOnnx(convert(train))), calib);
  q.push(performance.now() - t);
  t = performance.now();
  quantReport(train, calib);
  r.push(performance.now() - t);
}
console.log(`RepVGG-A0, 8×3×64×64 calibration, one thread: quantize ${(median(q) / 1000).toFixed(2)} s, quant-report ${(median(r) / 1000).toFixed(2)} s, together ${((median(q) + median(r)) / 1000).toFixed(2)} s (target < 10 s)`);

ort.env.wasm.numThreads = 1;
const a0 = readOnnx(toOnnx(convert(train)));
const x = uniform([1, 3, 64, 64], new Rng(2), -1, 1);
for (const perChannel of [true, false]) for (const activations of ['uint8', 'int8'] as const) {
  const { model: qm } = quantizeOnnx(a0, calib, { perChannel, activations });
  const acts = qm.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.outputs[0]);
  const bytes = onnxProtoOf({ ...qm, outputs: [...qm.outputs, ...acts.map((a) => ({ name: a, dtype: activations, dims: null }))] }).encode();
  const ours = runOnnx(readOnnx(bytes), { input: x }, { algorithm: 'im2col' });
  const session = await ort.InferenceSession.create(bytes);
  const theirs = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) });
  let codes = 0, differing = 0;
  for (const a of acts) {
    const o = ours.get(a)!.data, t = theirs[a].data as Uint8Array | Int8Array;
    codes += o.length;
    for (let i = 0; i < o.length; i++) if (o[i] !== t[i]) differing++;
  }
  console.log(`RepVGG-A0 at 64×64, ${perChannel ? 'per channel' : 'per tensor'}, ${activations}: ${differing} of ${codes} activation codes differ from onnxruntime-web's (${acts.length} quantized tensors; target 0)`);
}

// The INT8 reference's pace: the QDQ A0 (per channel, uint8) at 224, batch 1, run here as onnxruntime
// runs it (its integer kernels), beside the float graph through the same evaluator, and
// onnxruntime-web (one thread) on the same QDQ bytes; alternating, medians
{
  const calib224 = uniform([4, 3, 224, 224], new Rng(3), -1, 1), x224 = uniform([1, 3, 224, 224], new Rng(4), -1, 1);
  const { model: qm } = quantizeOnnx(a0, calib224);
  const bytes = onnxProtoOf(qm).encode();
  const session = await ort.InferenceSession.create(bytes);
  const feed = { input: new ort.Tensor('float32', x224.data as Float32Array, [...x224.shape]) };
  const t = await alternate([
    ['int8', () => runOnnx(qm, { input: x224 })],
    ['float', () => runOnnx(a0, { input: x224 })],
    ['ort', () => session.run(feed)],
  ], 20_000, 5, 30);
  console.log(`RepVGG-A0 INT8 (QDQ, per channel, uint8) at 224, batch 1, one thread: runOnnx ${t.int8.toFixed(1)} ms, the float graph ${t.float.toFixed(1)} ms (${(t.int8 / t.float).toFixed(2)}×), onnxruntime-web ${t.ort.toFixed(1)} ms (${(t.int8 / t.ort).toFixed(2)}×)`);
}
