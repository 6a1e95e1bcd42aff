// GEMM GFLOP/s on the two backends, one thread, shapes from RepVGG-A0's layers (im2col: F × Ho·Wo × C·9;
// Winograd: F × tiles × C per transform point). tinybench medians, side by side.
import { gemm } from '../src/backend/gemm.js';
import { setBackend } from '../src/backend/backend.js';
import { setThreads } from '../src/backend/threads.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { medians } from './harness.js';

const SHAPES: [number, number, number][] = [[48, 3136, 432], [192, 196, 1728], [192, 16, 192], [1280, 49, 1728]];

export async function benchGemm(): Promise<{ shape: string; backend: string; ms: number; gflops: number }[]> {
  setThreads(1);
  const out: { shape: string; backend: string; ms: number; gflops: number }[] = [];
  const rng = new Rng(3);
  for (const [M, N, K] of SHAPES) {
    const a = uniform([M * K], rng, -1, 1).data, b = uniform([K * N], rng, -1, 1).data, c = new Float32Array(M * N);
    const run = (backend: 'js' | 'wasm') => () => {
      setBackend(backend);
      gemm(M, N, K, { data: a, offset: 0, ld: K, trans: false }, { data: b, offset: 0, ld: N, trans: false }, c, 0, N, false);
    };
    for (const t of await medians([['js', run('js')], ['wasm', run('wasm')]], { time: 300, iterations: 5 })) {
      out.push({ shape: `${M}×${N}×${K}`, backend: t.name, ms: t.medianMs, gflops: (2 * M * N * K) / (t.medianMs * 1e6) });
    }
  }
  setBackend('wasm');
  return out;
}
