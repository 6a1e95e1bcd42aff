// Deploy RepVGG against the WebAssembly peers, side by side in one process: our deploy model on the
// 'js' backend (one thread) and the 'wasm' backend (1 and 2 threads), tfjs-backend-wasm (XNNPACK, SIMD, one thread) and onnxruntime-web (wasm, one thread)
// running the same weights, alternating run by run so that machine noise hits all alike; medians.
// Also the 3×3 layers of RepVGG-A0 alone (ours vs tfjs-backend-wasm; bias and ReLU included).
// argv: [--quick] (A0 batch 1 only). Prints one JSON line at the end (bench/run.ts collects it).
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-web';
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { toOnnx } from '../src/io/onnx.js';
import { Conv2d } from '../src/nn/layers.js';
import { AUTO_AFTER } from '../src/ops/conv2d.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { poolStats, setThreads, workersReady } from '../src/backend/threads.js';
import { setBackend } from '../src/backend/backend.js';
import { A0_SHAPES } from './conv.js';
import { alternate } from './harness.js';

const quick = process.argv.includes('--quick');
const require = createRequire(import.meta.url);
setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + '/');
setThreadsCount(1);
// tfjs's single-threaded SIMD binary: its multithreaded one, even with one thread, slowed every other
// engine in the process by ~35% on this 2-core machine (our A0 deploy batch 1: 120 ms vs 87 ms)
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
await tf.setBackend('wasm');
ort.env.wasm.numThreads = 1;
setThreads(2);
await workersReady(1);

// NCHW (ours, ONNX) → NHWC (tfjs); (F, C, kh, kw) → (kh, kw, C, F)
function nhwc(x: Tensor): tf.Tensor4D {
  const [N, C, H, W] = x.shape;
  const out = new Float32Array(x.size);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) out[(n * H * W + i) * C + c] = x.data[(n * C + c) * H * W + i];
  return tf.tensor4d(out, [N, H, W, C]);
}
function hwio(w: Tensor): tf.Tensor4D {
  const [F, C, KH, KW] = w.shape;
  const out = new Float32Array(w.size);
  for (let f = 0; f < F; f++) for (let c = 0; c < C; c++) for (let k = 0; k < KH * KW; k++) out[(k * C + c) * F + f] = w.data[(f * C + c) * KH * KW + k];
  return tf.tensor4d(out, [KH, KW, C, F]);
}

// The deploy model as tfjs ops: fused conv + bias + ReLU per block, mean over H and W, dense.
function tfjsModel(deploy: RepVGG): (x: tf.Tensor4D) => tf.Tensor2D {
  const layers = deploy.namedConvs().map(([, conv]) => ({
    w: hwio(conv.weight.data), b: tf.tensor1d(conv.bias!.data.data as Float32Array), stride: typeof conv.stride === 'number' ? conv.stride : conv.stride[0],
  }));
  const lw = tf.transpose(tf.tensor2d(deploy.linear.weight.data.data as Float32Array, deploy.linear.weight.data.shape as [number, number]));
  const lb = tf.tensor1d(deploy.linear.bias.data.data as Float32Array);
  return (x) => tf.tidy(() => {
    let h: tf.Tensor4D = x;
    for (const l of layers) h = tf.fused.conv2d({ x: h, filter: l.w, strides: l.stride, pad: 1, bias: l.b, activation: 'relu' });
    return tf.add(tf.matMul(tf.mean(h, [1, 2]), lw), lb) as tf.Tensor2D;
  });
}

const models: Record<string, unknown>[] = [];
for (const arch of quick ? ['A0'] : ['A0', 'B0']) {
  const deploy = convert(RepVGG.fromConfig(zooConfig(arch), { seed: 1 }).eval());
  const tfm = tfjsModel(deploy);
  const session = await ort.InferenceSession.create(toOnnx(deploy));
  for (const batch of quick ? [1] : [1, 8]) {
    const x = uniform([batch, 3, 224, 224], new Rng(2), -1, 1);
    const xt = nhwc(x);
    const xo = new ort.Tensor('float32', x.data as Float32Array, [...x.shape]);
    let ours: Float32Array = new Float32Array(0), theirs: Float32Array = new Float32Array(0), onnx: Float32Array = new Float32Array(0);
    const ms = await alternate([
      ['ours js, 1 thread', () => { setBackend('js'); setThreads(1); deploy.forward(x); }],
      ['ours wasm, 1 thread', () => { setBackend('wasm'); setThreads(1); ours = deploy.forward(x).data as Float32Array; }],
      ['ours wasm, 2 threads', () => { setBackend('wasm'); setThreads(2); deploy.forward(x); }],
      ['tfjs-backend-wasm', () => { const y = tfm(xt); theirs = y.dataSync() as Float32Array; y.dispose(); }],
      ['onnxruntime-web', async () => { onnx = (await session.run({ input: xo })).logits.data as Float32Array; }],
    ], quick ? 4000 : 8000, 5, Math.ceil((AUTO_AFTER + 2) / 3) + 1); // the model's convs past AUTO_AFTER calls on each of our three contenders
    let dTf = 0, dOrt = 0, scale = 0;
    for (let i = 0; i < ours.length; i++) {
      dTf = Math.max(dTf, Math.abs(ours[i] - theirs[i]));
      dOrt = Math.max(dOrt, Math.abs(ours[i] - onnx[i]));
      scale = Math.max(scale, Math.abs(ours[i]));
    }
    const row = { arch, batch, ms, maxAbsDiffTfjs: dTf, maxAbsDiffOrt: dOrt, maxAbsLogit: scale, sharedCopyBytesPerRun: 0 };
    // bytes copied into and out of shared memory per 2-thread forward (measured over the runs above)
    setThreads(2);
    const c0 = poolStats.copiedBytes;
    deploy.forward(x);
    row.sharedCopyBytesPerRun = poolStats.copiedBytes - c0;
    models.push(row);
    console.error(JSON.stringify(row));
    xt.dispose();
  }
  await session.release();
}

const layers: Record<string, unknown>[] = [];
for (const s of A0_SHAPES.filter((v) => v.k === 3)) {
  const rng = new Rng(0);
  const x = uniform([1, s.C, s.H, s.H], rng, -1, 1);
  const w = uniform([s.F, s.C, 3, 3], rng, -1, 1);
  const b = uniform([s.F], rng, -1, 1);
  const xt = nhwc(x), wt = hwio(w), bt = tf.tensor1d(b.data as Float32Array);
  // a Conv2d module in eval mode, as a deploy model runs it: 'auto', Winograd filters cached, fused ReLU
  const conv = new Conv2d(s.C, s.F, 3, { stride: s.stride, padding: 1 }).eval();
  conv.weight.data.data.set(w.data);
  conv.bias!.data.data.set(b.data);
  const ms = await alternate([
    ['ours js, 1 thread', () => { setBackend('js'); setThreads(1); conv.forward(x, undefined, true); }],
    ['ours wasm, 1 thread', () => { setBackend('wasm'); setThreads(1); conv.forward(x, undefined, true); }],
    ['ours wasm, 2 threads', () => { setBackend('wasm'); setThreads(2); conv.forward(x, undefined, true); }],
    ['tfjs-backend-wasm', () => { const y = tf.fused.conv2d({ x: xt, filter: wt, strides: s.stride, pad: 1, bias: bt, activation: 'relu' }); y.dataSync(); y.dispose(); }],
  ], quick ? 800 : 1500, 5, Math.ceil((AUTO_AFTER + 2) / 3) + 1);
  const row = { shape: s.name, batch: 1, ms };
  layers.push(row);
  console.error(JSON.stringify(row));
  xt.dispose(); wt.dispose(); bt.dispose();
}
process.stdout.write(JSON.stringify({ models, layers }) + '\n');
