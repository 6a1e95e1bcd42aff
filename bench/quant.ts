// INT8, measured (issue targets: quantize + report on RepVGG-A0 < 10 s; 0 differing codes against
// onnxruntime on RepVGG-A0 at 64×64): quantizeOnnx of a deploy A0 and quantReport of the training-time
// one, on an 8×3×64×64 calibration batch, median of 3, one thread; then every quantized activation of
// the QDQ file run here and in onnxruntime-web (per channel and per tensor, uint8 and int8), counted.
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
import { median } from './harness.js';
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
