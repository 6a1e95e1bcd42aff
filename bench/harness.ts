// Thin tinybench wrapper: run named tasks side by side, return the median latency of each.
import { Bench } from 'tinybench';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Module } from '../src/nn/module.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { SGD } from '../src/train/sgd.js';
import { TrainingSteps } from '../src/train/fit.js';
import { AUTO_AFTER } from '../src/ops/conv2d.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from '../src/ops/loss.js';
import { setFusedMultiplyAdd } from '../src/backend/backend.js';
import { allowRelaxedSimd } from '../src/cli/relaxed_simd.js';

// The benches run the kernels `repvgg` runs: relaxed SIMD turned on where Node 20 has it behind V8's
// flag, so the GEMM fuses its multiply-adds where the CPU does; UNFUSED=1 pins multiply then add (what
// Node 20 runs without the flag, and the library in a user's process there).
allowRelaxedSimd();
if (process.env.UNFUSED === '1') setFusedMultiplyAdd(false);

/** A training step of `model` on (x, labels): softmax cross-entropy, backward, SGD (lr 0.01, momentum
 * 0.9, weight decay 10⁻⁴, as the PyTorch peer's). */
export function sgdStep(model: Module, x: Tensor, labels: number[]): () => void {
  const opt = new SGD(model.namedParameters().map(([, p]) => p), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
  return () => {
    model.zeroGrad();
    const { probs } = softmaxCrossEntropy(model.forward(x), labels);
    model.backwardParameters(softmaxCrossEntropyBackward(probs, labels));
    opt.step();
  };
}

/** The same step as fit runs it (TrainingSteps: after the first, where no kernel splits, on two
 * threads by halves of the batch or on this thread with plain arrays, as its trial finds faster;
 * `halves` pins that choice), warmed up first (its steps from here all run one way). */
export function fitStep(model: Module, x: Tensor, labels: number[], halves?: boolean): () => void {
  const params = model.namedParameters().map(([, p]) => p);
  const opt = new SGD(params, { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
  const steps = new TrainingSteps(model, params, halves);
  const step = () => void steps.run(x, labels, () => opt.step());
  // warm: 'auto' past its untimed calls, and fit's trial of its two ways on two threads over
  for (let i = 0; i <= AUTO_AFTER + 4 || !steps.settled; i++) step();
  return step;
}

/** The median of the values (the upper one of an even count's two middle ones). */
export function median(a: number[]): number {
  return a.slice().sort((p, q) => p - q)[a.length >> 1];
}

/** A new temporary folder, removed when this process exits (a bench's models can be gigabytes). */
export function benchDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `repvgg-bench-${name}-`));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Timed {
  name: string;
  medianMs: number;
  samples: number;
}

export async function medians(tasks: [string, () => void][], opts: { time?: number; iterations?: number } = {}): Promise<Timed[]> {
  const bench = new Bench({ time: opts.time ?? 400, iterations: opts.iterations ?? 5, warmupTime: 50, warmupIterations: 2 });
  for (const [name, fn] of tasks) bench.add(name, fn);
  await bench.run();
  return bench.tasks.map((t) => {
    const r = t.result as { latency?: { p50: number; samplesCount?: number }; state?: string; error?: unknown };
    if (r.latency === undefined) throw new Error(`bench task ${t.name} failed: ${String(r.error)}`);
    return { name: t.name, medianMs: r.latency.p50, samples: r.latency.samplesCount ?? 0 };
  });
}

/**
 * Runs each contender once per round, in turn, for at least `minRounds` rounds and about `ms`
 * milliseconds (40 rounds at most), after two warm-up calls each; the median of each. Alternating
 * makes the noise of this shared machine hit every contender alike, unlike timing them one after another.
 */
export async function alternate(contenders: [string, () => unknown][], ms: number, minRounds = 5, warmup = 2): Promise<Record<string, number>> {
  // warm-up (workspaces, JIT, packing; 'auto' needs AUTO_AFTER calls of a conv before it times it)
  for (let r = 0; r < warmup; r++) for (const [, f] of contenders) await f();
  const times = contenders.map(() => [] as number[]);
  const t0 = performance.now();
  while (times[0].length < minRounds || (performance.now() - t0 < ms && times[0].length < 40)) {
    for (const [i, [, f]] of contenders.entries()) {
      const t = performance.now();
      await f();
      times[i].push(performance.now() - t);
    }
  }
  return Object.fromEntries(contenders.map(([n], i) => [n, median(times[i])]));
}

/** f's median wall time in µs over `runs` synchronous calls, after `warmup` untimed ones. */
export function medianMicros(f: () => void, warmup: number, runs: number): number {
  for (let i = 0; i < warmup; i++) f();
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    ts.push(performance.now() - t);
  }
  return median(ts) * 1000;
}

export function table(rows: (string | number)[][], head: string[]): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) => r.map((c, i) => String(c).padStart(widths[i])).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}
