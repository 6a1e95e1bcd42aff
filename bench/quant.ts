// INT8, measured (issue target: quantize + report on RepVGG-A0 < 10 s): quantizeOnnx of a deploy A0
// and quantReport of the training-time one, on an 8×3×64×64 calibration batch; median of 3, one thread.
//   npm run build && tsc -p tsconfig.bench.json && node build/bench/quant.js
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { toOnnx } from '../src/io/onnx.js';
import { readOnnx } from '../src/io/onnx_read.js';
import { quantizeOnnx } from '../src/onnx/quantize.js';
import { quantReport } from '../src/onnx/quant_report.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { setThreads } from '../src/backend/pool.js';

setThreads(1);
const train = RepVGG.fromConfig(zooConfig('A0'), { seed: 1 }).eval();
const calib = uniform([8, 3, 64, 64], new Rng(1), -1, 1);
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
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
