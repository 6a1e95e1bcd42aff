// npm run bench: conv kernels against direct, each other, the V8 ceiling and tfjs-backend-cpu; whole
// models (training-time in eval mode vs deploy, and a training step) with peak RSS. Writes
// bench/results.json and bench/results.svg. `npm run bench -- --quick` skips batch 8 and B0.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchConv, A0_SHAPES, type ConvResult } from './conv.js';
import { v8CeilingGflops } from './ceiling.js';
import { table } from './harness.js';
import { lineChart, svgDocument } from '../src/cli/svg.js';
import { setThreads } from '../src/backend/threads.js';
import { setBackend } from '../src/backend/backend.js';
import { benchGemm } from './gemm.js';
import { getFusedMultiplyAdd } from '../src/backend/backend.js';

const quick = process.argv.includes('--quick');
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const repo = (f: string) => fileURLToPath(new URL(`../../${f}`, import.meta.url));

// The kernel tables: the TypeScript reference kernels on one thread, against the scalar V8 ceiling;
// the WebAssembly SIMD GEMM and the pool have their own rows below.
setThreads(1);
setBackend('js');
const ceiling = v8CeilingGflops();
console.log(`V8 ceiling (4×4 register tile, 256-long panel in L1): ${ceiling.toFixed(2)} GFLOP/s\n`);

const conv = await benchConv(A0_SHAPES, quick ? [1] : [1, 8], { direct: true });
for (const batch of quick ? [1] : [1, 8]) {
  const rows = conv.filter((r) => r.batch === batch);
  console.log(`conv2d on RepVGG-A0 shapes, batch ${batch}, float32 (median ms, GFLOP/s, share of the V8 ceiling)`);
  console.log(table(rows.map((r) => [r.shape, r.algo, r.ms, r.gflops, `${((100 * r.gflops) / ceiling).toFixed(0)}%`]), ['shape', 'algorithm', 'ms', 'GFLOP/s', 'ceiling']) + '\n');
}

const get = (shape: string, algo: string, batch = 1) => conv.find((r) => r.shape === shape && r.algo === algo && r.batch === batch);
const best = (shape: string, batch = 1) => conv.filter((r) => r.shape === shape && r.batch === batch && r.algo !== 'tfjs-backend-cpu').sort((a, b) => a.ms - b.ms)[0];
const ratio = (a?: ConvResult, b?: ConvResult) => (a !== undefined && b !== undefined ? b.ms / a.ms : NaN);
const s48 = '3×3 48→48 @56', s192 = '3×3 192→192 @14';
const stride1 = A0_SHAPES.filter((s) => s.k === 3 && s.stride === 1).map((s) => s.name);
const threeByThree = A0_SHAPES.filter((s) => s.k === 3).map((s) => s.name);
const im2colShare = threeByThree.map((n) => get(n, 'im2col')!.gflops / ceiling);
const targets = {
  im2colOverDirect48: ratio(get(s48, 'im2col'), get(s48, 'direct')),
  winogradF4OverIm2col48: ratio(get(s48, 'winograd F4'), get(s48, 'im2col')),
  bestOverTfjs48: ratio(best(s48), get(s48, 'tfjs-backend-cpu')),
  bestOverTfjs192: ratio(best(s192), get(s192, 'tfjs-backend-cpu')),
  im2colShareOfCeilingOn3x3: { min: Math.min(...im2colShare), median: im2colShare.slice().sort()[im2colShare.length >> 1], max: Math.max(...im2colShare) },
  winogradF4OverIm2colStride1: Object.fromEntries(stride1.map((n) => [n, ratio(get(n, 'winograd F4'), get(n, 'im2col'))])),
};

const models: Record<string, unknown>[] = [];
const runs: [string, number, string, number][] = [];
for (const arch of quick ? ['A0'] : ['A0', 'B0']) for (const batch of quick ? [1] : [1, 8]) for (const kind of ['train-eval', 'deploy']) runs.push([arch, batch, kind, 224]);
runs.push(['demo', 32, 'train-step', 28], ['A0', 8, 'train-step', 64]);
const threadRuns = runs.slice();
for (const [arch, batch, kind, size] of threadRuns) {
  for (const threads of [1, 2]) {
    const outp = execFileSync(process.execPath, [here('./model_worker.js'), arch, String(batch), kind, String(size), String(threads)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    models.push(JSON.parse(outp.trim().split('\n').pop()!));
  }
}
console.log('whole models, float32 (each in its own process; peak RSS of that process)');
console.log(table(models.map((m) => [`${m.arch}${m.kind === 'train-step' ? '' : ' @224'}`, String(m.batch), String(m.kind), String(m.threads), m.imagesPerSecond as number, m.ms as number, m.peakRssMiB as number, String(m.workspaceGrowthBytes)]),
  ['model', 'batch', 'run', 'threads', 'images/s', 'ms', 'peak RSS MiB', 'workspace growth B']) + '\n');
// The speed-up itself is measured side by side: both models in one process, alternating runs.
const compare: Record<string, unknown>[] = [];
for (const arch of quick ? ['A0'] : ['A0', 'B0']) for (const batch of quick ? [1] : [1, 8]) {
  const outp = execFileSync(process.execPath, [here('./model_worker.js'), arch, String(batch), 'compare', '224'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  compare.push(JSON.parse(outp.trim().split('\n').pop()!));
}
console.log('deploy vs training-time (eval), alternating runs in one process (median ms)');
console.log(table(compare.map((c) => [`${c.arch} @224`, String(c.batch), c.trainEvalMs as number, c.deployMs as number, `${(c.ratio as number).toFixed(2)}×`, String(c.samples)]),
  ['model', 'batch', 'training-time ms', 'deploy ms', 'speed-up', 'runs each']) + '\n');
const speedups = Object.fromEntries(compare.map((c) => [`${c.arch} batch ${c.batch}`, c.ratio as number]));

// The peers, alternating with our deploy model on 1 and 2 threads in one process (bench/peers.ts).
const peers = JSON.parse(execFileSync(process.execPath, [here('./peers.js'), ...(quick ? ['--quick'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop()!) as
  { models: { arch: string; batch: number; ms: Record<string, number>; maxAbsDiffTfjs: number; maxAbsDiffOrt: number }[]; layers: { shape: string; ms: Record<string, number> }[] };
const PEERS = ['ours js, 1 thread', 'ours wasm, 1 thread', 'ours wasm, 2 threads', 'tfjs-backend-wasm', 'onnxruntime-web'];
const W1 = 'ours wasm, 1 thread', W2 = 'ours wasm, 2 threads';
console.log('deploy models against the WebAssembly peers (one thread each unless stated; alternating runs, median ms)');
console.log(table(peers.models.map((m) => [`${m.arch} @224`, String(m.batch), ...PEERS.map((p) => m.ms[p]), `${(m.ms[W1] / m.ms[W2]).toFixed(2)}×`, `${(m.ms['tfjs-backend-wasm'] / m.ms[W1]).toFixed(2)}×`]),
  ['model', 'batch', ...PEERS, '2 threads / 1', 'ours wasm / tfjs-wasm (speed)']) + '\n');
console.log(table(peers.layers.map((l) => [l.shape, ...PEERS.slice(0, 4).map((p) => l.ms[p]), `${(l.ms[W1] / l.ms[W2]).toFixed(2)}×`]),
  ['A0 layer, batch 1', ...PEERS.slice(0, 4), '2 threads / 1']) + '\n');
const threadSpeedup = Object.fromEntries(peers.models.map((m) => [`${m.arch} batch ${m.batch}`, m.ms[W1] / m.ms[W2]]));

const gemmRows = await benchGemm();
console.log(`GEMM, float32, one thread (median ms, GFLOP/s, × the scalar V8 ceiling); wasm ${getFusedMultiplyAdd() ? 'fuses its multiply-adds (relaxed SIMD)' : 'multiplies then adds (the engine or the CPU cannot fuse, or UNFUSED=1)'}`);
console.log(table(gemmRows.map((r) => [r.shape, r.backend, r.ms, r.gflops, `${(r.gflops / ceiling).toFixed(2)}×`]), ['M×N×K', 'backend', 'ms', 'GFLOP/s', '× ceiling']) + '\n');

console.log('targets (ratios from this run):');
console.log(`  im2col / direct on 48→48 @56:            ${targets.im2colOverDirect48.toFixed(2)}× (≥ 4)`);
console.log(`  Winograd F4 / im2col on 48→48 @56:       ${targets.winogradF4OverIm2col48.toFixed(2)}× (≥ 1.8)`);
console.log(`  best / tfjs-backend-cpu, 48→48 @56:      ${targets.bestOverTfjs48.toFixed(2)}× (≥ 5)`);
console.log(`  best / tfjs-backend-cpu, 192→192 @14:    ${targets.bestOverTfjs192.toFixed(2)}× (≥ 5)`);
console.log(`  im2col share of the V8 ceiling, 3×3:     min ${(100 * targets.im2colShareOfCeilingOn3x3.min).toFixed(0)}%, median ${(100 * targets.im2colShareOfCeilingOn3x3.median).toFixed(0)}%, max ${(100 * targets.im2colShareOfCeilingOn3x3.max).toFixed(0)}% (≥ 60%)`);
for (const [n, r] of Object.entries(targets.winogradF4OverIm2colStride1)) console.log(`  Winograd F4 / im2col, ${n}: ${r.toFixed(2)}× (≥ 1.8)`);
for (const [k, v] of Object.entries(speedups)) console.log(`  deploy / training-time (eval) images/s, ${k}: ${v.toFixed(2)}× (≥ 1.5 at batch 1)`);
for (const [k, v] of Object.entries(threadSpeedup)) console.log(`  deploy, 2 threads / 1 thread, ${k}: ${v.toFixed(2)}× (≥ 1.7 at A0 batch 8)`);

const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, date: new Date().toISOString() };
writeFileSync(repo('bench/results.json'), JSON.stringify({ machine, ceilingGflops: ceiling, conv, models, compare, peers, gemm: gemmRows, targets, speedups, threadSpeedup }, null, 1) + '\n');

// Chart: GFLOP/s per 3×3 shape (batch 1), one line per algorithm, the ceiling as a flat line.
const algos = ['direct', 'im2col', 'winograd F2', 'winograd F4', 'tfjs-backend-cpu'];
const colors = ['#7f8c8d', '#2c7fb8', '#27ae60', '#c0392b', '#8e44ad'];
const series = algos.map((a, i) => ({
  name: a, color: colors[i],
  points: threeByThree.map((n, j) => [j + 1, get(n, a)?.gflops ?? NaN] as [number, number]).filter((p) => !Number.isNaN(p[1])),
}));
series.push({ name: `V8 ceiling ${ceiling.toFixed(1)}`, color: '#333', points: [[1, ceiling], [threeByThree.length, ceiling]] });
const body = lineChart(series, { title: 'conv2d GFLOP/s on RepVGG-A0 3×3 layers, batch 1 (Winograd: direct-equivalent FLOPs / time)', xLabel: threeByThree.map((n, j) => `${j + 1}: ${n.slice(4)}`).join('  '), yLabel: 'GFLOP/s', width: 960, height: 420, yMin: 0 });
writeFileSync(repo('bench/results.svg'), svgDocument(960, 420, body));
console.log('\nwrote bench/results.json and bench/results.svg');
