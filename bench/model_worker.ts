// One whole-model measurement in its own process, so its peak RSS is its own.
// argv: arch batch kind(train-eval|deploy|train-step|compare) size [threads (1)]
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig, type RepVGGConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { allocatedBytes } from '../src/tensor/tensor.js';
import { workspaceBytes } from '../src/tensor/workspace.js';
import { median, medians, sgdStep } from './harness.js';
import { AUTO_AFTER } from '../src/ops/conv2d.js';
import { setThreads, workersReady } from '../src/backend/threads.js';

const DEMO: RepVGGConfig = { num_blocks: [1, 2, 2, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 10, in_channels: 1 };

const [arch, batchS, kind, sizeS, threadsS] = process.argv.slice(2);
const batch = Number(batchS), size = Number(sizeS), threads = Number(threadsS ?? 1);
setThreads(threads);
await workersReady();
const cfg = arch === 'demo' ? DEMO : zooConfig(arch);
const model = RepVGG.fromConfig(cfg, { seed: 1 });
const x = uniform([batch, cfg.in_channels ?? 3, size, size], new Rng(2), -1, 1);
let fn: () => void;
if (kind === 'compare') {
  // training-time (eval) and deploy, alternating run by run so drifts on a noisy machine hit both
  model.eval();
  const deploy = convert(model);
  const runs: [number[], number[]] = [[], []];
  for (let r = 0; r < 2; r++) { model.forward(x); deploy.forward(x); }
  const t0 = performance.now();
  while (runs[0].length < 5 || (performance.now() - t0 < 4000 && runs[0].length < 30)) {
    for (const [i, m] of [model, deploy].entries()) {
      const t = performance.now();
      m.forward(x);
      runs[i].push(performance.now() - t);
    }
  }
  process.stdout.write(JSON.stringify({ arch, batch, kind, size, threads, trainEvalMs: median(runs[0]), deployMs: median(runs[1]), samples: runs[0].length, ratio: median(runs[0]) / median(runs[1]) }) + '\n');
  process.exit(0);
}
if (kind === 'train-step') {
  const labels = Array.from({ length: batch }, (_, i) => i % (cfg.num_classes ?? 1000));
  model.train();
  fn = sgdStep(model, x, labels);
} else {
  model.eval();
  const m = kind === 'deploy' ? convert(model) : model;
  fn = () => { m.forward(x); };
}
// warm-up: 'auto' times each conv after AUTO_AFTER of its calls (im2col before), so run past it;
// grows workspaces, caches the prepared filters
for (let i = 0; i <= AUTO_AFTER + 1; i++) fn();
const ws0 = workspaceBytes(), alloc0 = allocatedBytes();
fn();
const perStepAlloc = allocatedBytes() - alloc0, wsGrowth = workspaceBytes() - ws0;
const [t] = await medians([[kind, fn]], { time: 1500, iterations: 3 });
process.stdout.write(JSON.stringify({
  arch, batch, kind, size, threads, ms: t.medianMs, imagesPerSecond: (batch * 1000) / t.medianMs,
  peakRssMiB: process.resourceUsage().maxRSS / 1024, tensorBytesPerStep: perStepAlloc, workspaceGrowthBytes: wsGrowth, workspaceBytes: workspaceBytes(),
}) + '\n');
