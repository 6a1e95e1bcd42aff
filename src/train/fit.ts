// Mini-batch training and evaluation for classifiers.

import { Tensor, allocLike } from '../tensor/tensor.js';
import { checkNumber, fmtShape } from '../tensor/check.js';
import { RepVGG } from '../nn/repvgg.js';
import { MobileOne } from '../nn/mobileone.js';
import { Rng } from '../tensor/rng.js';
import type { Module, Parameter } from '../nn/module.js';
import { SGD, cosineLR } from './sgd.js';
import { anyConvSplits } from '../nn/conv_algorithm.js';
import { getThreads, onOneThread } from '../backend/threads.js';
import { sgdCouldSplit } from '../ops/sgd.js';
import { AUTO_AFTER } from '../ops/conv2d.js';
import { HalvesTrainer, wholeStep } from './data_parallel.js';

export interface Dataset {
  /** (N, C, H, W) */
  x: Tensor;
  /** N labels */
  y: Int32Array;
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum?: number;
  weightDecay?: number;
  seed?: number;
  /** steps already taken (resuming): the cosine schedule continues from here */
  startStep?: number;
  onStep?: (p: StepInfo) => void;
  /** in-place augmentation of each gathered batch */
  augment?: (x: Tensor, rng: Rng) => void;
  /** after each epoch, e.g. to write a resumable checkpoint */
  onEpoch?: (e: EpochStats, step: number) => void;
  /** on two threads, a RepVGG's steps by halves of the batch: true wherever they apply, false never;
   * by default a trial of both ways keeps the faster (the same bits every way: TrainingSteps) */
  halves?: boolean;
}

export interface StepInfo {
  epoch: number;
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  /** images processed in this step */
  images: number;
  /** what the trial of halves measured, once it has (then on every step) */
  halves: HalvesTrial | null;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  accuracy: number;
}

/** Rows idx of (N, …) gathered into a new (idx.length, …) tensor. */
function gatherRows(t: Tensor, idx: ArrayLike<number>, from = 0, to = idx.length): Tensor {
  const row = t.size / t.shape[0];
  const out = allocLike(t.data, (to - from) * row);
  for (let i = from; i < to; i++) out.set(t.data.subarray(idx[i] * row, (idx[i] + 1) * row), (i - from) * row);
  return new Tensor(out, [to - from, ...t.shape.slice(1)]);
}

/** Train; returns each epoch's mean loss and accuracy. */
export function fit(model: Module, data: Dataset, opts: FitOptions): EpochStats[] {
  const steps = fitSteps(model, data, opts);
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/**
 * The same training, returning to the event loop about every `yieldMs` milliseconds (between
 * batches), so that timers and signal handlers run: a CLI can stop cleanly on Ctrl-C.
 */
export async function fitAsync(model: Module, data: Dataset, opts: FitOptions, yieldMs = 100): Promise<EpochStats[]> {
  const steps = fitSteps(model, data, opts);
  let last = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    if (performance.now() - last >= yieldMs) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      last = performance.now();
    }
  }
}

// The training loop, one batch per step of the generator.
function* fitSteps(model: Module, data: Dataset, opts: FitOptions): Generator<void, EpochStats[], void> {
  checkNumber(opts.epochs, 'count', 'fit: epochs');
  checkNumber(opts.batchSize, 'count', 'fit: batchSize');
  checkNumber(opts.lr, 'positive', 'fit: lr');
  if (opts.startStep !== undefined) checkNumber(opts.startStep, 'index', 'fit: startStep');
  for (const [k, v] of [['momentum', opts.momentum], ['weightDecay', opts.weightDecay]] as const) if (v !== undefined) checkNumber(v, 'nonnegative', `fit: ${k}`);
  checkLabels(data.y, model instanceof RepVGG || model instanceof MobileOne ? model.numClasses : Infinity, 'fit: training label');
  refuseSingleValueBatches(model, data.x.shape, opts.batchSize);
  const N = data.x.shape[0];
  if (data.y.length !== N) throw new Error(`fit: ${data.y.length} labels for ${N} images`);
  const rng = new Rng(opts.seed ?? 0);
  const params = model.namedParameters().map(([, p]) => p);
  const opt = new SGD(params, { lr: opts.lr, momentum: opts.momentum ?? 0.9, weightDecay: opts.weightDecay ?? 1e-4 });
  const stepsPerEpoch = Math.ceil(N / opts.batchSize);
  const totalSteps = stepsPerEpoch * opts.epochs;
  let step = opts.startStep ?? 0;
  const order = Int32Array.from({ length: N }, (_, i) => i);
  const history: EpochStats[] = [];
  model.train();
  const steps = new TrainingSteps(model, params, opts.halves);
  const firstEpoch = Math.floor(step / stepsPerEpoch);
  for (let e = 0; e < firstEpoch; e++) rng.shuffle(order); // replay the shuffles a resumed run skipped
  for (let epoch = firstEpoch; epoch < opts.epochs; epoch++) {
    rng.shuffle(order);
    let lossSum = 0, correct = 0, seen = 0;
    for (let b = 0; b < N; b += opts.batchSize) {
      const end = Math.min(N, b + opts.batchSize);
      const xb = gatherRows(data.x, order, b, end);
      opts.augment?.(xb, rng);
      const yb = Array.from(order.subarray(b, end), (i) => data.y[i]);
      const { logits, loss } = steps.run(xb, yb, () => {
        opt.lr = cosineLR(opts.lr, step, totalSteps);
        opt.step();
      });
      lossSum += loss * (end - b);
      correct += countCorrect(logits, yb);
      seen += end - b;
      step++;
      opts.onStep?.({ epoch, step, totalSteps, loss, lr: opt.lr, images: end - b, halves: steps.trial });
      yield;
    }
    history.push({ epoch, loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, seen) });
    opts.onEpoch?.(history[history.length - 1], step);
  }
  return history;
}

/** How a run's steps were split between two threads, once measured (StepInfo, TrainingSteps). */
export interface HalvesTrial {
  /** whether the steps go by halves of the batch from here */
  byHalves: boolean;
  /** median ms of a step by halves and of one as before, over the trial's steps */
  halvesMs: number;
  otherMs: number;
}

/**
 * The trial's outcome from each way's timed steps (ms): the faster by its median step. Steps 300–364
 * of a run still have V8 compiling now and then on either thread (a step of 20–45 ms among steps of
 * 5–8) and the first step after each switch of way is slow, and those tails decided a trial by means
 * at random: on the AMD VM (docs/performance.md, nineteenth session) six trials by means kept the way
 * that ran slower over the next 600 steps of each way three times (by 8–11%); their medians kept the
 * faster one in all six. On a tie the other way is kept.
 */
export function trialOutcome(halves: readonly number[], other: readonly number[]): HalvesTrial {
  const halvesMs = medianOf(halves), otherMs = medianOf(other);
  return { byHalves: halvesMs < otherMs, halvesMs, otherMs };
}

// the middle value, or the mean of the two middle values of an even count
function medianOf(a: readonly number[]): number {
  const s = [...a].sort((p, q) => p - q), m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Steps of each kind a trial times, after halvesWarmup by halves untimed, the two ways taking
 * turns TRIAL_BLOCK steps at a time. The warm-up: the worker's replica is built in its first step,
 * and V8 compiles both halves' code over hundreds (on a 2-vCPU VM, the demo's step by halves took
 * ~20 ms a step over the first 25, 8–11 ms to the 100th, and stalled now and then past the 300th:
 * while a thread compiles, the other waits at the next meeting). With 20 steps of warm-up and the
 * halves timed before the other way, the trial kept the other way in every run on a VM where the
 * halves were 1.4× faster from the 300th step on. 32 a way: ~12% of the steps by halves took over
 * 10 ms on a busy VM (Threads in docs/performance.md), and 12 a way kept the slower way in runs
 * whose steps by halves were the faster over hundreds. */
const TRIAL_STEPS = 32;
const TRIAL_BLOCK = 4;
let halvesWarmup = 300;

/** Sets the steps by halves run untimed before the trial and returns the count before (for the tests:
 * the trial's schedule at a warm-up a test can afford; the default is 300). */
export function setHalvesWarmup(steps: number): number {
  if (!Number.isInteger(steps) || steps < 0) throw new Error(`setHalvesWarmup: expected a count of steps, got ${steps}`);
  const before = halvesWarmup;
  halvesWarmup = steps;
  return before;
}

/**
 * Training steps as fit runs them: zeroGrad, forward, cross-entropy, backward, then `update` (the
 * optimizer). After the first step (each conv has seen a whole batch), where no kernel of the step
 * can split among the threads, the rest run one of two ways, the same bits either way:
 * - a RepVGG (HalvesTrainer.applies): this thread and a worker each take one half of the batch
 *   (src/train/data_parallel.ts);
 * - its kernels on this thread with the arrays in plain memory, the blocks' dW on the workers
 *   (background jobs: see PooledClassifier). Shared memory, which the pool's split kernels need,
 *   makes every copy into and out of the kernels slower than plain memory: V8 copies it with relaxed
 *   atomics, 1.4–3.6× plain memory's time for 400 KB in cache on the VMs measured.
 * Where both can run, a trial times TRIAL_STEPS of each (after halvesWarmup by halves) and keeps
 * the faster by its median step (trialOutcome).
 * `halves` pins the choice (true: by halves wherever they apply, false: never); `trial` says what
 * was measured. The one-thread switch is decided once: an epoch's smaller last batch does not move
 * later epochs. (Exported for bench/torch.ts, which runs a step as fit does.)
 */
export class TrainingSteps {
  private oneThread: boolean | null = null;
  private halves: HalvesTrainer | null = null;
  private steps = 0;
  /** the trial's times so far (ms), then its outcome */
  private timed = { halves: [] as number[], other: [] as number[] };
  trial: HalvesTrial | null = null;
  /** steps by halves run untimed so far (halvesWarmup) */
  private warm = 0;

  constructor(private readonly model: Module, private readonly params: readonly Parameter[], private readonly pinned?: boolean) {}

  /** Whether the steps from here run one way: the first step done, and any trial of halves over. */
  get settled(): boolean {
    return this.oneThread !== null && (this.halves === null || this.pinned !== undefined || this.trial !== null);
  }

  /** Whether the next step of a batch of `images` runs by halves. */
  private byHalves(images: number): boolean {
    if (this.halves === null || !HalvesTrainer.applies(this.model, images)) return false;
    if (this.pinned === true) return true;
    if (this.trial !== null) return this.trial.byHalves;
    if (this.warm < halvesWarmup) return true;
    // the trial: the two ways take turns, TRIAL_BLOCK steps at a time, so that both meet the same
    // phases of a shared machine, whose speed drifts over seconds
    return Math.floor((this.timed.halves.length + this.timed.other.length) / TRIAL_BLOCK) % 2 === 0;
  }

  // x: (N, C, H, W), N labels → logits: (N, classes) and the mean loss
  run(x: Tensor, labels: number[], update: () => void): { logits: Tensor; loss: number } {
    const model = this.model, halves = this.byHalves(x.shape[0]);
    const timed = this.halves !== null && this.trial === null && this.pinned === undefined && HalvesTrainer.applies(model, x.shape[0]);
    const t0 = performance.now();
    const r = halves ? this.halvesStep(x, labels, update) : this.step(x, labels, update);
    if (timed) {
      if (!halves || this.warm === halvesWarmup) (halves ? this.timed.halves : this.timed.other).push(performance.now() - t0);
      else this.warm++;
      if (this.timed.other.length === TRIAL_STEPS && this.timed.halves.length === TRIAL_STEPS) this.trial = trialOutcome(this.timed.halves, this.timed.other);
    }
    return r;
  }

  private halvesStep(x: Tensor, labels: number[], update: () => void): { logits: Tensor; loss: number } {
    const r = this.halves!.step(x, labels);
    onOneThread(update);
    return r;
  }

  private step(x: Tensor, labels: number[], update: () => void): { logits: Tensor; loss: number } {
    const model = this.model;
    const trainStep = () => {
      const r = wholeStep(model, x, labels);
      update();
      return r;
    };
    const r = this.oneThread === true ? onOneThread(trainStep) : trainStep();
    this.steps++;
    this.oneThread ??= getThreads() > 1 && !threadsPay(model, this.params);
    // by halves once every conv has its algorithm: after the first step, or where a conv is on
    // 'auto', once it has timed its candidates (its untimed calls past)
    if (this.oneThread && this.halves === null && this.pinned !== false && HalvesTrainer.applies(model, x.shape[0]) && (this.steps > AUTO_AFTER + 1 || model.namedConvs().every(([, c]) => c.algorithm !== 'auto'))) {
      this.halves = new HalvesTrainer(model);
    }
    return r;
  }
}

/** Whether any kernel of a training step may split among the threads: a conv (by its last forward's
 * multiply-adds) or SGD's update (by the parameter count). */
function threadsPay(model: Module, params: readonly { data: Tensor }[]): boolean {
  return anyConvSplits(model) || sgdCouldSplit(params.reduce((n, p) => n + p.data.size, 0));
}

/**
 * BatchNorm in training mode needs more than one value per channel (PyTorch raises "Expected more than
 * 1 value per channel when training"): a batch of one image fails where a map is 1×1. Checked before
 * the first step, not discovered at the end of an epoch. For a RepVGG or MobileOne the smallest map
 * follows from its strides; for any other module a batch of one is refused.
 */
function refuseSingleValueBatches(model: Module, shape: readonly number[], batchSize: number): void {
  const N = shape[0];
  const last = N % batchSize === 0 ? Math.min(batchSize, N) : N % batchSize;
  if (Math.min(batchSize, N) !== 1 && last !== 1) return;
  let area = 1;
  if (model instanceof RepVGG) {
    let h = shape[2], w = shape[3];
    for (const b of model.blocks()) { h = Math.floor((h - 1) / b.spec.stride) + 1; w = Math.floor((w - 1) / b.spec.stride) + 1; }
    area = h * w;
  } else if (model instanceof MobileOne) {
    let h = shape[2], w = shape[3];
    for (const b of model.plan.blocks) { h = Math.floor((h - 1) / b.stride) + 1; w = Math.floor((w - 1) / b.stride) + 1; } // k3 p1 and k1 p0 alike
    area = h * w;
  }
  if (area === 1) {
    const where = batchSize === 1 || N === 1 ? `--batch-size ${batchSize} gives batches of one image` : `${N} images in batches of ${batchSize} leave a last batch of one image`;
    throw new Error(`fit: ${where}, and the model's last feature map is 1×1: BatchNorm in training mode needs more than one value per channel (PyTorch refuses it too); choose another batch size`);
  }
}

/** Every label an integer in [0, classes). */
export function checkLabels(labels: ArrayLike<number>, classes: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new Error(`${what} ${y} at index ${i} is outside [0, ${classes})`);
  }
}

function countCorrect(logits: Tensor, labels: ArrayLike<number>): number {
  const [N, K] = logits.shape;
  let c = 0;
  for (let n = 0; n < N; n++) if (argmaxRow(logits, n, K) === labels[n]) c++;
  return c;
}

export function argmaxRow(t: Tensor, n: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (t.data[n * K + k] > t.data[n * K + best]) best = k;
  return best;
}

/** Logits of the whole set in eval mode, in batches. */
export function predict(model: Module, x: Tensor, batchSize = 256): Tensor {
  if (x.shape.length === 0 || x.shape[0] === 0) throw new Error(`predict: the input ${fmtShape(x.shape)} holds no images`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`predict: batchSize must be a positive integer, got ${batchSize}`);
  model.eval();
  const N = x.shape[0];
  const parts: Tensor[] = [];
  const row = x.size / N;
  // consecutive rows are already a contiguous (n, …) batch: a view, no copy
  for (let b = 0; b < N; b += batchSize) {
    const end = Math.min(N, b + batchSize);
    parts.push(model.forward(new Tensor(x.data.subarray(b * row, end * row), [end - b, ...x.shape.slice(1)])));
  }
  const K = parts[0].shape[1];
  const out = allocLike(parts[0].data, N * K);
  let at = 0;
  for (const p of parts) { out.set(p.data, at); at += p.size; }
  return new Tensor(out, [N, K]);
}

export function accuracy(logits: Tensor, labels: ArrayLike<number>): number {
  if (labels.length !== logits.shape[0]) throw new Error(`accuracy: ${labels.length} labels for ${logits.shape[0]} predictions`);
  checkLabels(labels, logits.shape[1], 'accuracy: label');
  return countCorrect(logits, labels) / logits.shape[0];
}
