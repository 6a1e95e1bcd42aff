// npm run bench:interop — the interop targets: reading a ~100 MB .pth (target < 1 s, peak extra
// memory < 1.5× the file) and exporting RepVGG-B3 to ONNX (target < 5 s). Medians of tinybench runs.
// The .pth is RepVGG-A2 training-time (28 M parameters, ~110 MB), written by our writer in the zip
// layout torch.save uses (PyTorch reads it: test/cli/interop.test.ts, fixtures/pth/readback.json).
import { medians, table } from './harness.js';
import { RepVGG } from '../src/nn/repvgg.js';
import { planFromConfig, zooConfig } from '../src/nn/config.js';
import { stateDict } from '../src/io/state_dict.js';
import { serializePth } from '../src/io/pth.js';
import { parseCheckpoint } from '../src/io/checkpoint.js';
import { toOnnx } from '../src/io/onnx.js';

const MiB = 2 ** 20;
const a2 = RepVGG.fromConfig(zooConfig('A2'), { seed: 0 });
const file = serializePth(stateDict(a2));
console.log(`RepVGG-A2 training-time .pth: ${(file.length / MiB).toFixed(1)} MiB`);

// Peak extra memory of one read: external + array buffers sampled before and right after (the parse
// holds its copies until it returns; nothing is freed inside it, so after-minus-before is its peak).
globalThis.gc?.();
const before = process.memoryUsage();
const parsed = parseCheckpoint(file);
const after = process.memoryUsage();
const extra = after.arrayBuffers - before.arrayBuffers;
console.log(`parse: ${parsed.entries.size} tensors; extra array-buffer memory ${(extra / MiB).toFixed(1)} MiB = ${(extra / file.length).toFixed(2)}× the file (target < 1.5×)`);

const b3 = new RepVGG(planFromConfig(zooConfig('B3')), { deploy: true, init: false }).eval();
let onnxBytes = 0;
const t = await medians([
  ['read 110 MiB .pth (parseCheckpoint)', () => { parseCheckpoint(file); }],
  ['export RepVGG-B3 deploy to ONNX (toOnnx)', () => { onnxBytes = toOnnx(b3).length; }],
], { time: 2000, iterations: 5 });
console.log(table(t.map((r) => [r.name, r.medianMs, r.samples]), ['task', 'median ms', 'samples']));
console.log(`B3 ONNX: ${(onnxBytes / MiB).toFixed(1)} MiB`);
console.log(`targets: read ${t[0].medianMs < 1000 ? 'met' : 'NOT met'} (${(t[0].medianMs / 1000).toFixed(2)} s < 1 s), ` +
  `memory ${extra / file.length < 1.5 ? 'met' : 'NOT met'} (${(extra / file.length).toFixed(2)}× < 1.5×), ` +
  `export ${t[1].medianMs < 5000 ? 'met' : 'NOT met'} (${(t[1].medianMs / 1000).toFixed(2)} s < 5 s)`);
