// ONNX in, measured (issue targets; ratios within one run, alternating, one thread):
//  - the evaluator (float32) on deploy RepVGG-A0 at 224, batch 1, against the same model through `forward`
//  - fuse-onnx on a training-time RepVGG-B0 graph (our export): read + fuse + probe check + encode
//  - onnxruntime-web on the fused graph against the unfused one (B0, 224, batch 1)
//  - peak RSS of `repvgg fuse-onnx` on a training-time RepVGG-B3 graph (470 MiB), one file and external
//    data, each in its own process (--memory; needs python3-onnx for the external-data copy)
//   npm run build && tsc -p tsconfig.bench.json && node build/bench/onnx.js
import * as ort from 'onnxruntime-web';
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { toOnnx, onnxProtoOf } from '../src/io/onnx.js';
import { readOnnx } from '../src/io/onnx_read.js';
import { runOnnx } from '../src/onnx/run.js';
import { fuseOnnx } from '../src/onnx/fuse.js';
import { compareProbes, probeRun } from '../src/onnx/check.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { setThreads } from '../src/backend/threads.js';
import { alternate, benchDir } from './harness.js';

setThreads(1);
ort.env.wasm.numThreads = 1;

// --memory: only the B3 peak-RSS measurement, first, while this process is small
if (process.argv.includes('--memory')) {
  const { statSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { spawnSync } = await import('node:child_process');
  const dir = benchDir('b3'); // ~1.8 GB of models, removed at exit
  const file = join(dir, 'b3.onnx');
  // made by CLI children, so that this process stays small: a child's maxRSS starts from its parent's at the fork
  const cliBin = new URL('../../dist/cli/main.js', import.meta.url).pathname;
  spawnSync(process.execPath, [cliBin, 'init', '--arch', 'B3', '--seed', '5', '--out', join(dir, 'b3.safetensors')]);
  spawnSync(process.execPath, [cliBin, 'export', join(dir, 'b3.safetensors'), file]);
  const py = spawnSync('/usr/bin/python3', ['-c', `import onnx; onnx.save_model(onnx.load('${file}'), '${join(dir, 'b3x.onnx')}', save_as_external_data=True, all_tensors_to_one_file=True, location='b3x.data')`]);
  const size = statSync(file).size;
  // the CLI in a fresh process, which reports its own peak RSS (process.resourceUsage().maxRSS, KiB)
  const cli = new URL('../../dist/cli/main.js', import.meta.url).href;
  const peak = (src: string) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const { runCli } = await import(${JSON.stringify(cli)}); const io = { out: () => {}, err: (l) => console.error(l), progress: () => {} }; const code = await runCli(['fuse-onnx', ${JSON.stringify(src)}, ${JSON.stringify(join(dir, 'out.onnx'))}], io); console.log(JSON.stringify({ code, rss: process.resourceUsage().maxRSS * 1024 }));`], { encoding: 'utf8' });
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { code: number; rss: number };
  };
  for (const [label, src] of [['one file', file], ...(py.status === 0 ? [['external data', join(dir, 'b3x.onnx')]] : [])]) {
    const rs = [peak(src), peak(src), peak(src)].map((r) => { if (r.code !== 0) throw new Error('fuse-onnx failed'); return r.rss; }).sort((p, q) => p - q);
    console.log(`fuse-onnx of training-time B3 (${label}, ${(size / 2 ** 20).toFixed(0)} MiB of weights): peak RSS median ${(rs[1] / 2 ** 20).toFixed(0)} MiB of 3 (${(rs[0] / size).toFixed(2)}–${(rs[2] / size).toFixed(2)}× the file; target < 2×)`);
  }
  process.exit(0);
}

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
  // as the CLI: the original probed first, then fused over its own storage, then the fused graph probed
  const before = probeRun(m); // the CLI's default probe: 2×3×32×32
  const res = fuseOnnx(m, { reuseStorage: true });
  const check = compareProbes(before, probeRun(res.model), res);
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
