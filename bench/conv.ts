// Conv benchmark: every algorithm on the 3×3 shapes of RepVGG-A0 at 224×224, batch 1.
// GFLOP/s = 2·N·F·Ho·Wo·(C/g)·k² / time. Run: npm run bench
import { conv2d, type ConvAlgorithm } from '../src/ops/conv2d.js';
import { convGeometry, convMacs } from '../src/ops/conv2d_geometry.js';
import { winogradApplies } from '../src/ops/conv2d.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { medians, table } from './harness.js';

export interface ConvShape { name: string; C: number; F: number; H: number; stride: number }

export const A0_3X3: ConvShape[] = [
  { name: '48→48 @56', C: 48, F: 48, H: 56, stride: 1 },
  { name: '96→96 @28', C: 96, F: 96, H: 28, stride: 1 },
  { name: '192→192 @14', C: 192, F: 192, H: 14, stride: 1 },
  { name: '3→48 224→112', C: 3, F: 48, H: 224, stride: 2 },
  { name: '48→48 112→56', C: 48, F: 48, H: 112, stride: 2 },
  { name: '48→96 56→28', C: 48, F: 96, H: 56, stride: 2 },
  { name: '96→192 28→14', C: 96, F: 192, H: 28, stride: 2 },
  { name: '192→1280 14→7', C: 192, F: 1280, H: 14, stride: 2 },
];

type Variant = { label: string; algorithm: ConvAlgorithm; winogradTile?: 2 | 4 };
const VARIANTS: Variant[] = [
  { label: 'direct', algorithm: 'direct' },
  { label: 'im2col', algorithm: 'im2col' },
  { label: 'winograd F2', algorithm: 'winograd', winogradTile: 2 },
  { label: 'winograd F4', algorithm: 'winograd', winogradTile: 4 },
];

export async function benchConvShapes(shapes: ConvShape[], batch: number) {
  const rng = new Rng(0);
  const results: { shape: string; algo: string; ms: number; gflops: number }[] = [];
  for (const s of shapes) {
    const x = uniform([batch, s.C, s.H, s.H], rng, -1, 1);
    const w = uniform([s.F, s.C, 3, 3], rng, -1, 1);
    const b = uniform([s.F], rng, -1, 1);
    const opts = { stride: s.stride, padding: 1 };
    const g = convGeometry(x.shape, w.shape, opts);
    const flops = 2 * convMacs(g);
    const tasks: [string, () => void][] = VARIANTS
      .filter((v) => v.algorithm !== 'winograd' || winogradApplies(g))
      .map((v) => [v.label, () => { conv2d(x, w, b, { ...opts, algorithm: v.algorithm, winogradTile: v.winogradTile }); }]);
    for (const t of await medians(tasks, { time: 300, iterations: 3 })) {
      results.push({ shape: s.name, algo: t.name, ms: t.medianMs, gflops: flops / (t.medianMs * 1e6) });
    }
  }
  return results;
}

async function main(): Promise<void> {
  const res = await benchConvShapes(A0_3X3, 1);
  console.log('conv2d, RepVGG-A0 3×3 shapes, batch 1, float32 (median of tinybench samples)\n');
  console.log(table(res.map((r) => [r.shape, r.algo, r.ms, r.gflops]), ['shape', 'algorithm', 'median ms', 'GFLOP/s']));
  const get = (shape: string, algo: string) => res.find((r) => r.shape === shape && r.algo === algo)!.ms;
  const s = '48→48 @56';
  console.log(`\n48→48 @56: im2col / direct speed-up ${(get(s, 'direct') / get(s, 'im2col')).toFixed(2)}× (target ≥ 4×), ` +
    `Winograd F4 / im2col ${(get(s, 'im2col') / get(s, 'winograd F4')).toFixed(2)}× (target ≥ 1.8×)`);
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
