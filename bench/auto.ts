// npm run bench:auto — is 'auto' right? For every stride-1 3×3 layer of RepVGG-A0 and B0 at 224×224
// (where it has a choice), batch 1 and 8: the steady-state median of each pinned algorithm as a
// Conv2d module in eval mode runs it (filters transformed and packed once, kept in WebAssembly
// memory), the algorithm 'auto' chose, and its cost relative to the best pinned one. Target: within
// 5% on every layer. Measured side by side in one run. Then the same for whole training steps.
import { AUTO_AFTER, measuredAlgorithm, type ConvAlgorithm } from '../src/ops/conv2d.js';
import { convGeometry } from '../src/ops/conv2d_geometry.js';
import { Conv2d } from '../src/nn/layers.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { alternate, sgdStep, table } from './harness.js';
import { setThreads } from '../src/backend/threads.js';
import { RepVGG } from '../src/nn/repvgg.js';
import { type RepVGGConfig, zooConfig } from '../src/nn/config.js';

// argv: [--threads N] (default: the library's default) [--training] (only the training steps below)
const ti = process.argv.indexOf('--threads');
if (ti > 0) setThreads(Number(process.argv[ti + 1]));
const trainingOnly = process.argv.includes('--training');

const LAYERS: [string, number, number][] = [ // name, channels, map size
  ['A0 48@56', 48, 56], ['A0 96@28', 96, 28], ['A0 192@14', 192, 14],
  ['B0 64@56', 64, 56], ['B0 128@28', 128, 28], ['B0 256@14', 256, 14],
];
const rows: (string | number)[][] = [];
let worst = 0;
for (const batch of trainingOnly ? [] : [1, 8]) {
  for (const [name, C, H] of LAYERS) {
    const rng = new Rng(1);
    const x = uniform([batch, C, H, H], rng, -1, 1), w = uniform([C, C, 3, 3], rng, -0.1, 0.1), b = uniform([C], rng, -0.1, 0.1);
    const pinned: [string, ConvAlgorithm, 2 | 4][] = [['im2col', 'im2col', 4], ['winograd F2', 'winograd', 2], ['winograd F4', 'winograd', 4]];
    const modules = pinned.map(([, algorithm, tile]) => {
      const m = new Conv2d(C, C, 3, { padding: 1 }).eval();
      m.weight.data.data.set(w.data);
      m.bias!.data.data.set(b.data);
      m.algorithm = algorithm;
      m.winogradTile = tile;
      return m;
    });
    // 'auto' measures here, once, when the shape has run AUTO_AFTER times (a module in eval mode)
    const auto = new Conv2d(C, C, 3, { padding: 1 }).eval();
    auto.weight.data.data.set(w.data);
    auto.bias!.data.data.set(b.data);
    for (let i = 0; i <= AUTO_AFTER; i++) auto.forward(x, undefined, true);
    const g = convGeometry(x.shape, w.shape, { padding: 1 });
    const m = measuredAlgorithm(g, 'float32')!;
    const chosen = m.algorithm === 'im2col' ? 'im2col' : `winograd F${m.winogradTile}`;
    const med = await alternate(pinned.map(([label], i) => [label, () => { modules[i].forward(x, undefined, true); }]), 1000);
    const t = pinned.map(([label]) => ({ name: label, medianMs: med[label] }));
    const best = Math.min(...t.map((r) => r.medianMs));
    const mine = t.find((r) => r.name === chosen)!.medianMs;
    worst = Math.max(worst, mine / best);
    rows.push([name, batch, ...t.map((r) => r.medianMs), chosen, `${((mine / best - 1) * 100).toFixed(1)}%`]);
  }
}
if (!trainingOnly) {
  console.log(table(rows, ['layer', 'batch', 'im2col ms', 'F2 ms', 'F4 ms', "'auto' chose", 'over best']));
  console.log(`\n'auto' is within ${((worst - 1) * 100).toFixed(1)}% of the best pinned algorithm on every layer (target: 5%)`);
}

// Training: whole SGD steps (forward, backward, update; the weights change every step, so Winograd
// pays its filter transform per step) of the demo's model (28×28, batch 32) and of RepVGG-A0 (64×64,
// batch 8), 'auto' past its untimed calls against every conv pinned to im2col, and to Winograd F(2×2)
// and F(4×4) where it applies (im2col elsewhere), side by side. Target: 'auto' within 5% of the best.
const DEMO: RepVGGConfig = { num_blocks: [1, 2, 2, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 10, in_channels: 1 };
const STEPS: [string, RepVGGConfig, number[]][] = [
  ['demo model @28, batch 32', DEMO, [32, 1, 28, 28]],
  ['A0 @64, batch 8', { ...zooConfig('A0'), num_classes: 10 }, [8, 3, 64, 64]],
];
const trainRows: (string | number)[][] = [];
let trainWorst = 0;
for (const [name, config, shape] of STEPS) {
  const x = uniform(shape, new Rng(2), -1, 1);
  const labels = Array.from({ length: shape[0] }, (_, i) => i % 10);
  const pins: [string, ConvAlgorithm | null, 2 | 4][] = [['auto', null, 4], ['im2col', 'im2col', 4], ['winograd F2', 'winograd', 2], ['winograd F4', 'winograd', 4]];
  const steps = pins.map(([label, algorithm, tile]): [string, () => void] => {
    const model = RepVGG.fromConfig(config, { seed: 1 }).train();
    if (algorithm !== null) {
      model.setAlgorithm(algorithm);
      for (const [, c] of model.namedConvs()) c.winogradTile = tile;
    }
    const step = sgdStep(model, x, labels);
    for (let i = 0; i <= AUTO_AFTER + 1; i++) step(); // 'auto' past its untimed calls, and timed
    return [label, step];
  });
  const med = await alternate(steps, 8000);
  const best = Math.min(...pins.slice(1).map(([label]) => med[label]));
  trainWorst = Math.max(trainWorst, med.auto / best);
  trainRows.push([name, ...pins.map(([label]) => med[label]), `${((med.auto / best - 1) * 100).toFixed(1)}%`]);
}
console.log(table(trainRows, ['training step', "'auto' ms", 'im2col ms', 'F2 ms', 'F4 ms', "'auto' over best pinned"]));
console.log(`\n'auto' in training is within ${((trainWorst - 1) * 100).toFixed(1)}% of the best pinned algorithm (target: 5%; negative: faster than every pin)`);
