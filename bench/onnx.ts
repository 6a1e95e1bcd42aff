// ONNX in, measured (issue targets; ratios within one run, alternating, one thread):
//  - the evaluator (float32) on deploy RepVGG-A0 at 224, batch 1, against the same model through `forward`
//  - fuse-onnx on a training-time RepVGG-B0 graph (our export): read + fuse + probe check + encode
//  - onnxruntime-web on the fused graph against the unfused one (B0, 224, batch 1)
//   npm run build && tsc -p tsconfig.bench.json && node build/bench/onnx.js
import * as ort from 'onnxruntime-web';
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { toOnnx, onnxProtoOf } from '../src/io/onnx.js';
import { readOnnx } from '../src/io/onnx_read.js';
import { runOnnx } from '../src/onnx/run.js';
import { fuseOnnx } from '../src/onnx/fuse.js';
import { checkFused } from '../src/onnx/check.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { setThreads } from '../src/backend/pool.js';
import { alternate } from './harness.js';

setThreads(1);
ort.env.wasm.numThreads = 1;

const a0 = convert(RepVGG.fromConfig(zooConfig('A0'), { seed: 1 }).eval());
const x = uniform([1, 3, 224, 224], new Rng(2), -1, 1);
const a0Graph = readOnnx(toOnnx(a0));
const evalVsForward = await alternate([
  ['forward', () => a0.forward(x)],
  ['runOnnx', () => runOnnx(a0Graph, { input: x })],
], 20_000);
console.log(`A0 deploy, 224, batch 1, one thread: forward ${evalVsForward.forward.toFixed(1)} ms, runOnnx ${evalVsForward.runOnnx.toFixed(1)} ms (${(evalVsForward.runOnnx / evalVsForward.forward).toFixed(2)}× forward; target ≤ 1.2×)`);

if (process.argv.includes("--eval-only")) process.exit(0);
const b0 = RepVGG.fromConfig(zooConfig('B0'), { seed: 3 }).eval();
const b0Bytes = toOnnx(b0);
const fuseTimes: number[] = [];
let fusedBytes: Uint8Array = new Uint8Array(0);
for (let r = 0; r < 3; r++) {
  const t = performance.now();
  const m = readOnnx(b0Bytes);
  const res = fuseOnnx(m);
  const check = checkFused(m, res); // the CLI's default probe: 2×3×32×32
  if (!(check.maxAbsDiff <= check.bound)) throw new Error('fused B0 fails its check');
  fusedBytes = onnxProtoOf(res.model).encode();
  fuseTimes.push(performance.now() - t);
}
fuseTimes.sort((p, q) => p - q);
console.log(`fuse-onnx of training-time B0 (${(b0Bytes.length / 2 ** 20).toFixed(1)} MiB, probe 2×3×32×32 as the CLI): median ${(fuseTimes[1] / 1000).toFixed(2)} s of 3 (target < 2 s)`);

const xo = new ort.Tensor('float32', x.data as Float32Array, [...x.shape]);
const unfused = await ort.InferenceSession.create(b0Bytes);
const fusedSession = await ort.InferenceSession.create(fusedBytes);
const ortTimes = await alternate([
  ['unfused', async () => { await unfused.run({ input: xo }); }],
  ['fused', async () => { await fusedSession.run({ input: xo }); }],
], 20_000);
console.log(`onnxruntime-web (wasm, one thread), B0 224 batch 1: unfused ${ortTimes.unfused.toFixed(1)} ms, fused ${ortTimes.fused.toFixed(1)} ms (${(ortTimes.unfused / ortTimes.fused).toFixed(2)}× faster; target ≥ 1.3×)`);
