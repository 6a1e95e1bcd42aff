// The onnxruntime-node peer of bench/torch.ts, run in a process of its own (its thread pool spins
// after a run, which would slow ours beside it): a deploy model's ONNX file on one input, on n intra-op
// threads, timed as bench/torch_peer.py times PyTorch (at least 5 runs, then until `seconds` or 200).
// onnxruntime-node is never a dependency: it is measured only where it was installed by hand,
//   ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node
// argv: CASE.json {"onnx": PATH, "input": PATH (float32, little-endian), "shape": [N, C, H, W],
//                  "threads": n, "seconds": s}
// prints one JSON line: {"medianMs": …, "runs": …, "ort": version}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

interface OrtTensor { readonly dims: readonly number[] }
interface Ort {
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(path: string, opts: object): Promise<{ inputNames: readonly string[]; run(feeds: Record<string, OrtTensor>): Promise<unknown> }> };
  env: { versions?: { common?: string } };
}

const c = JSON.parse(readFileSync(process.argv[2], 'utf8')) as { onnx: string; input: string; shape: number[]; threads: number; seconds: number };
const ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;
const session = await ort.InferenceSession.create(c.onnx, { intraOpNumThreads: c.threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
const bytes = readFileSync(c.input);
const x = new ort.Tensor('float32', new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), c.shape);
const feeds = { [session.inputNames[0]]: x };
for (let i = 0; i < 3; i++) await session.run(feeds);
const times: number[] = [];
const t0 = performance.now();
while (times.length < 5 || (performance.now() - t0 < c.seconds * 1000 && times.length < 200)) {
  const t = performance.now();
  await session.run(feeds);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const mid = times.length >> 1;
const medianMs = times.length % 2 === 1 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
console.log(JSON.stringify({ medianMs, runs: times.length, ort: ort.env.versions?.common ?? 'unknown' }));
