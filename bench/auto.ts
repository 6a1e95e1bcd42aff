// npm run bench:auto — is 'auto' right? For every stride-1 3×3 layer of RepVGG-A0 and B0 at 224×224
// (where it has a choice), batch 1 and 8: the steady-state median of each pinned algorithm (Winograd
// filters transformed once, as eval mode has them), the algorithm 'auto' chose, and its cost relative
// to the best pinned one. Target: within 5% on every layer. Measured side by side in one run.
import { conv2d, measuredAlgorithm, type ConvAlgorithm } from '../src/ops/conv2d.js';
import { convGeometry } from '../src/ops/conv2d_geometry.js';
import { winogradWeights } from '../src/ops/conv2d_winograd.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { medians, table } from './harness.js';

const LAYERS: [string, number, number][] = [ // name, channels, map size
  ['A0 48@56', 48, 56], ['A0 96@28', 96, 28], ['A0 192@14', 192, 14],
  ['B0 64@56', 64, 56], ['B0 128@28', 128, 28], ['B0 256@14', 256, 14],
];
const rows: (string | number)[][] = [];
let worst = 0;
for (const batch of [1, 8]) {
  for (const [name, C, H] of LAYERS) {
    const rng = new Rng(1);
    const x = uniform([batch, C, H, H], rng, -1, 1), w = uniform([C, C, 3, 3], rng, -0.1, 0.1), b = uniform([C], rng, -0.1, 0.1);
    const U2 = winogradWeights(w.data, C, C, 1, 2), U4 = winogradWeights(w.data, C, C, 1, 4);
    const pinned: [string, ConvAlgorithm, 2 | 4, typeof U4 | undefined][] = [['im2col', 'im2col', 4, undefined], ['winograd F2', 'winograd', 2, U2], ['winograd F4', 'winograd', 4, U4]];
    conv2d(x, w, b, { padding: 1 }); // 'auto' measures here, once
    const g = convGeometry(x.shape, w.shape, { padding: 1 });
    const m = measuredAlgorithm(g, 'float32')!;
    const chosen = m.algorithm === 'im2col' ? 'im2col' : `winograd F${m.winogradTile}`;
    const t = await medians(pinned.map(([label, algorithm, tile, U]) => [label, () => { conv2d(x, w, b, { padding: 1, algorithm, winogradTile: tile, winogradWeights: U }); }]), { time: 600, iterations: 5 });
    const best = Math.min(...t.map((r) => r.medianMs));
    const mine = t.find((r) => r.name === chosen)!.medianMs;
    worst = Math.max(worst, mine / best);
    rows.push([name, batch, ...t.map((r) => r.medianMs), chosen, `${((mine / best - 1) * 100).toFixed(1)}%`]);
  }
}
console.log(table(rows, ['layer', 'batch', 'im2col ms', 'F2 ms', 'F4 ms', "'auto' chose", 'over best']));
console.log(`\n'auto' is within ${((worst - 1) * 100).toFixed(1)}% of the best pinned algorithm on every layer (target: 5%)`);
