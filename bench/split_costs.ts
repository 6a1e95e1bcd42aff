// Per-op cost of splitting a conv across two threads: each of the demo's conv shapes (batch 32) and a
// few larger ones, forward, dW + db and dx alone, one thread against two with every kernel split
// (the pool's threshold set to 1), medians of 31 calls in one process. Run after `npm run bench`:
//   node build/bench/split_costs.js
import { conv2d, conv2dBackward, convGeometry, convMacs } from '../src/ops/conv2d.js';
import { setMinMacsPerPart, setThreads, workersReady } from '../src/backend/threads.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { Tensor, sharedArrayLike } from '../src/tensor/tensor.js';
import { medianMicros, table } from './harness.js';

setThreads(2);
await workersReady(1);
// in shared memory, as a model built with threads holds them (no copy into the pool)
const shared = (t: Tensor) => {
  const d = sharedArrayLike(t.size, t.data);
  d.set(t.data);
  return new Tensor(d, t.shape);
};
const median = (f: () => void): number => medianMicros(f, 10, 31);
const SHAPES: [number, number, number, number][] = [ // channels, size, kernel, stride
  [16, 14, 3, 2], [32, 7, 3, 2], [32, 4, 3, 1], [64, 4, 3, 2], [64, 2, 3, 1], [128, 2, 3, 2], // the demo's
  [16, 14, 3, 1], [32, 7, 3, 1], [32, 14, 3, 1], [64, 7, 3, 1],
];
const rows: (string | number)[][] = [];
for (const [C, H, k, s] of SHAPES) {
  const x = shared(uniform([32, C, H, H], new Rng(1), -1, 1)), w = shared(uniform([C, C, k, k], new Rng(2), -1, 1));
  const o = { stride: s, padding: (k - 1) / 2, algorithm: 'im2col' as const };
  const dy = shared(uniform(conv2d(x, w, null, o).shape, new Rng(3), -1, 1));
  const row: (string | number)[] = [`${C}@${H}, ${k}×${k} stride ${s}`, convMacs(convGeometry(x.shape, w.shape, o)) / 1e6];
  for (const f of [() => conv2d(x, w, null, o), () => conv2dBackward(dy, x, w, o, { dx: false }), () => conv2dBackward(dy, x, w, o, { dw: false, db: false })]) {
    setThreads(1);
    const one = median(f);
    setThreads(2);
    const old = setMinMacsPerPart('wasm', 1);
    const two = median(f);
    setMinMacsPerPart('wasm', old);
    row.push(`${one.toFixed(0)} / ${two.toFixed(0)} (${(one / two).toFixed(2)}×)`);
  }
  rows.push(row);
}
console.log('µs, one thread / two (every kernel split), batch 32:');
console.log(table(rows, ['layer', 'M multiply-adds', 'forward', 'dW + db', 'dx']));
process.exit(0);
