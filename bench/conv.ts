// Conv benchmark: every distinct conv shape of RepVGG-A0 at 224×224 (the 3×3 convs of the deploy
// model and the 1×1 convs of the training-time one), batch 1 and 8, each algorithm and the tfjs peer.
// GFLOP/s = 2·N·F·Ho·Wo·(C/g)·k² / time.
import { conv2d, winogradApplies, type ConvAlgorithm } from '../src/ops/conv2d.js';
import { convGeometry, convMacs } from '../src/ops/conv2d_geometry.js';
import { PreparedConv } from '../src/ops/conv2d_prepared.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { medians } from './harness.js';
import { tfjsConv, tfjsReady } from './tfjs.js';

export interface ConvShape { name: string; C: number; F: number; H: number; stride: number; k: 1 | 3 }

const T = (C: number, F: number, H: number, stride: number, k: 1 | 3): ConvShape =>
  ({ name: `${k}×${k} ${C}→${F} @${H}${stride === 2 ? ` s2` : ''}`, C, F, H, stride, k });

/** Distinct conv shapes of RepVGG-A0 at 224×224 (input size H; stride-2 halves it). */
export const A0_SHAPES: ConvShape[] = [
  T(3, 48, 224, 2, 3), T(48, 48, 112, 2, 3), T(48, 48, 56, 1, 3), T(48, 96, 56, 2, 3),
  T(96, 96, 28, 1, 3), T(96, 192, 28, 2, 3), T(192, 192, 14, 1, 3), T(192, 1280, 14, 2, 3),
  T(3, 48, 224, 2, 1), T(48, 48, 112, 2, 1), T(48, 48, 56, 1, 1), T(48, 96, 56, 2, 1),
  T(96, 96, 28, 1, 1), T(96, 192, 28, 2, 1), T(192, 192, 14, 1, 1), T(192, 1280, 14, 2, 1),
];

type Candidate = { label: string; algorithm: ConvAlgorithm; winogradTile?: 2 | 4 };
const ALGORITHMS: Candidate[] = [
  { label: 'direct', algorithm: 'direct' },
  { label: 'im2col', algorithm: 'im2col' },
  { label: 'winograd F2', algorithm: 'winograd', winogradTile: 2 },
  { label: 'winograd F4', algorithm: 'winograd', winogradTile: 4 },
];

export interface ConvResult { shape: string; batch: number; k: number; stride: number; algo: string; ms: number; gflops: number }

export async function benchConv(shapes: ConvShape[], batches: number[], opts: { direct?: boolean; tfjs?: boolean } = {}): Promise<ConvResult[]> {
  const rng = new Rng(0);
  const out: ConvResult[] = [];
  if (opts.tfjs !== false) await tfjsReady();
  for (const batch of batches) {
    for (const s of shapes) {
      const pad = s.k === 3 ? 1 : 0;
      const x = uniform([batch, s.C, s.H, s.H], rng, -1, 1);
      const w = uniform([s.F, s.C, s.k, s.k], rng, -1, 1);
      const conv = { stride: s.stride, padding: pad };
      const g = convGeometry(x.shape, w.shape, conv);
      const flops = 2 * convMacs(g);
      // as a deploy model runs each algorithm: its filters prepared once (Winograd's transform, the
      // GEMM's packing), outside the timing, the way Conv2d keeps them
      const prepared = new PreparedConv(true).for(w, 0);
      const tasks: [string, () => void][] = ALGORITHMS
        .filter((v) => (v.algorithm !== 'winograd' || winogradApplies(g)) && (v.algorithm !== 'direct' || opts.direct !== false))
        .map((v) => [v.label, () => { conv2d(x, w, null, { ...conv, algorithm: v.algorithm, winogradTile: v.winogradTile, prepared }); }] as [string, () => void]);
      const peer = opts.tfjs === false ? null : tfjsConv(batch, s.C, s.H, s.F, s.k, s.stride, pad);
      if (peer !== null) tasks.push(['tfjs-backend-cpu', peer.run]);
      for (const t of await medians(tasks, { time: 250, iterations: 3 })) {
        out.push({ shape: s.name, batch, k: s.k, stride: s.stride, algo: t.name, ms: t.medianMs, gflops: flops / (t.medianMs * 1e6) });
      }
      peer?.dispose();
      prepared.release();
    }
  }
  return out;
}
