// A training step on two threads by data parallelism: each thread takes one half of the batch
// (src/ops/batch_shards.ts: images [0, h) and [h, N), h = ⌈N/2⌉) through its own copy of the
// network, the worker's a replica reading this step's weights from shared memory. The halves meet
// three times per BatchNorm (Σx, Σ(x − μ)², and Σdy, Σdy·x̂ in backward: BatchShard.combine) and
// once for the loss, and the halves' parameter gradients are added at the end. Every sum over the
// batch is by halves on one thread too, so the step gives the same bits on one thread or two.
//
// Where it runs: fit (TrainingSteps, which times a trial of it against the other way and keeps the
// faster), on two or more threads, for a RepVGG in float32 none of whose kernels would split among
// the threads (those models keep the pool's split kernels: A0 at 64×64). Each conv runs
// what it ran on the whole batch ('auto' decided there, past its untimed calls, and reported by
// algorithmPlan): on a half's batch 'auto' would time anew.

import { Tensor } from '../tensor/tensor.js';
import { AnotherPartFailed, defineKernel, getThreads, onOneThread, parallel, workerPartFailed } from '../backend/threads.js';
import { type BatchShard, onBatchShard } from '../ops/batch_shards.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from '../ops/loss.js';
import { addOnto } from '../backend/add.js';
import { RepVGG } from '../nn/repvgg.js';
import type { AlgorithmPlanEntry } from '../nn/conv_algorithm.js';
import type { Conv2d } from '../nn/layers.js';
import type { Module, Parameter } from '../nn/module.js';
import type { RepVGGPlan } from '../nn/config.js';

/** One step's result, as the whole batch gives it. */
export interface HalvesStep {
  /** (N, classes) */
  logits: Tensor;
  /** the mean loss over the batch */
  loss: number;
}

// What the worker's half needs; every array in shared memory.
interface StepArgs {
  id: number;
  plan: RepVGGPlan;
  algorithms: AlgorithmPlanEntry[];
  /** every parameter's values, in namedParameters order, one after another: the model's own (HalvesTrainer) */
  weights: Float32Array;
  /** the parameters' gradients laid out as weights: the first half's (the model's own) and the second's */
  grads: Float32Array; grads1: Float32Array;
  /** the second half's images (N − h, C, H, W) and labels, and where its logits go */
  x: Float32Array; xShape: number[]; labels: Int32Array; logits: Float32Array;
  images: number;
  /** [0]: arrivals at the halves' meetings; [1]: 1 once a half failed */
  sync: Int32Array;
  /** two meetings' sums (taking turns), each half's `slot` float64 */
  slots: Float64Array; slot: number;
}

// The calling thread's side of a step (part 0 of the kernel runs here and reads it; not in StepArgs,
// which the worker gets as a structured clone).
interface Local { model: RepVGG; params: Parameter[]; x: Tensor; labels: ArrayLike<number>; result: HalvesStep | null }
const locals = new Map<number, Local>();
// the worker's replicas, by id: the last few trainers' (a process that trains model after model,
// as ablate does, would otherwise keep every one of them on the worker)
const replicas = new Map<number, { model: RepVGG; params: Parameter[] }>();
const REPLICAS_KEPT = 4;

// Blocks until sync[0] ≥ target or the other half fails. Spins first: the halves do the same work
// and meet after each BatchNorm, so a wait is short, and a wake-up from Atomics.wait costs more than
// most (sleeping at every meeting made the demo's step 7.3 ms against 4.9, medians).
let canSleep: boolean | null = null;
function waitForArrivals(sync: Int32Array, target: number): void {
  for (let spins = 0; ; spins++) {
    const v = Atomics.load(sync, 0);
    if (v >= target) return;
    if (Atomics.load(sync, 1) !== 0 || workerPartFailed()) throw new AnotherPartFailed('data parallel: the other half of the step failed');
    if (spins > 1 << 16) {
      if (canSleep === null) {
        try {
          Atomics.wait(sync, 0, v, 0);
          canSleep = true;
        } catch {
          canSleep = false; // a browser's main thread: keep spinning
        }
      }
      if (canSleep) Atomics.wait(sync, 0, v, 1);
    }
  }
}

// One half's side of the meetings: its sums into its slot, both halves arrived, then the first
// half's + the second half's, each element, in float64 (the same bits on both sides).
class HalfMeetings implements BatchShard {
  private meetings = 0;

  constructor(readonly images: number, readonly half: 0 | 1, private readonly sync: Int32Array, private readonly slots: Float64Array, private readonly slot: number) {}

  combine(sums: Float64Array): void {
    const n = sums.length, slot = this.slot;
    if (n > slot) throw new Error(`data parallel: ${n} sums at a meeting, room for ${slot}`);
    // two sets of slots taking turns: a half cannot write the next meeting's sums over ones the
    // other still reads (it would first have to pass the meeting after this one, which the other
    // reaches only once it has read them)
    const first = (this.meetings & 1) * 2 * slot, second = first + slot;
    this.slots.set(sums, this.half === 0 ? first : second);
    this.arrive();
    const s = this.slots;
    for (let i = 0; i < n; i++) sums[i] = s[first + i] + s[second + i];
  }

  /** Waits until the other half has reached this meeting too. */
  arrive(): void {
    this.meetings++;
    Atomics.add(this.sync, 0, 1);
    Atomics.notify(this.sync, 0);
    waitForArrivals(this.sync, 2 * this.meetings);
  }
}

// One half's forward, loss and backward, meeting the other half; then, once both are done, this
// half's share of the gradients added: grads[i] += grads1[i] for i in its half of them.
function halfStep(model: RepVGG, params: Parameter[], x: Tensor, labels: ArrayLike<number>, a: StepArgs, half: 0 | 1): HalvesStep {
  const meetings = new HalfMeetings(a.images, half, a.sync, a.slots, a.slot);
  const r = onOneThread(() => onBatchShard(meetings, () => wholeStep(model, x, labels)));
  for (const p of params) if (p.gradIsCleared()) void p.grad; // a gradient no backward wrote: its zeros, written
  meetings.arrive();
  const n = a.grads.length, mid = Math.floor(n / 8) * 4;
  if (half === 0) addOnto(a.grads.subarray(0, mid), a.grads1.subarray(0, mid));
  else addOnto(a.grads.subarray(mid, n), a.grads1.subarray(mid, n));
  return r;
}

const stepKernel = defineKernel('train.halvesStep', (a: StepArgs, part: number, parts: number) => {
  try {
    halvesPart(a, part, parts);
  } catch (e) {
    Atomics.store(a.sync, 1, 1); // the other half stops waiting at its next meeting
    Atomics.notify(a.sync, 0);
    throw e;
  }
});

function halvesPart(a: StepArgs, part: number, parts: number): void {
  if (part === 0) {
    const local = locals.get(a.id)!;
    if (parts === 1) { // no worker ready: both halves here (the same bits)
      local.result = onOneThread(() => wholeStep(local.model, local.x, local.labels));
      return;
    }
    const h = Math.ceil(a.images / 2);
    const [, C, H, W] = local.x.shape;
    const x0 = new Tensor(local.x.data.subarray(0, h * C * H * W), [h, C, H, W]);
    local.result = halfStep(local.model, local.params, x0, Array.prototype.slice.call(local.labels, 0, h) as number[], a, 0);
    return;
  }
  const r = replicaOf(a);
  const { logits } = halfStep(r.model, r.params, new Tensor(a.x, a.xShape), a.labels, a, 1);
  a.logits.set(logits.data);
}

// The worker's replica of the caller's model, built once per id: its parameters are views of the
// caller's (weights) and its gradients of grads1. (Each message brings new views of the same
// shared memory: the id says which.) A version bump a step tells any cache the weights changed.
function replicaOf(a: StepArgs): { model: RepVGG; params: Parameter[] } {
  let r = replicas.get(a.id);
  if (r === undefined) {
    const model = onOneThread(() => new RepVGG(a.plan, { init: false }));
    model.setAlgorithmPlan(a.algorithms).train();
    r = { model, params: model.namedParameters().map(([, p]) => p) };
    viewsOf(r.params, a.weights, a.grads1, false);
    if (replicas.size === REPLICAS_KEPT) replicas.delete(replicas.keys().next().value!);
    replicas.set(a.id, r);
  }
  for (const p of r.params) p.version++;
  return r;
}

// Each parameter's values (copied there first when `copy`) and gradient made views of one array each.
function viewsOf(params: Parameter[], weights: Float32Array, grads: Float32Array, copy: boolean): void {
  let at = 0;
  for (const p of params) {
    const n = p.data.size, w = weights.subarray(at, at + n);
    if (copy) w.set(p.data.data);
    p.data = new Tensor(w, p.data.shape);
    p.version++;
    p.keepGradIn(grads.subarray(at, at + n));
    at += n;
  }
}

/** zeroGrad, forward, cross-entropy, backward (every parameter's gradient; the input's not
 * computed): the whole batch's, or (inside onBatchShard) a half's. fit's steps are this and the
 * optimizer's update. */
export function wholeStep(model: Module, x: Tensor, labels: ArrayLike<number>): HalvesStep {
  model.zeroGrad();
  const logits = model.forward(x);
  const { loss, probs } = softmaxCrossEntropy(logits, labels);
  model.backwardParameters(softmaxCrossEntropyBackward(probs, labels));
  return { logits, loss };
}

let nextId = 1;

/** Steps run by halves on two threads so far (tests and the bench). */
export const halvesStats = { steps: 0 };

/**
 * A model's training steps split by halves of the batch between this thread and a worker. The
 * model's parameters and gradients move into two shared arrays (each a view of its part), where
 * the worker's replica reads them and adds its half's gradients.
 */
export class HalvesTrainer {
  private readonly id = nextId++;
  private readonly algorithms: AlgorithmPlanEntry[];
  private readonly convs: Conv2d[];
  private readonly params: Parameter[];
  private readonly weights: Float32Array;
  private readonly grads: Float32Array;
  private readonly grads1: Float32Array;
  private readonly sync = new Int32Array(new SharedArrayBuffer(8));
  private readonly slot: number;
  private readonly slots: Float64Array;
  private batch: { x: Float32Array; labels: Int32Array; logits: Float32Array; images: number } | null = null;

  /** Whether a step of `model` on a batch of `images` can run this way (see the file's head). */
  static applies(model: unknown, images: number): model is RepVGG {
    if (!(model instanceof RepVGG) || images < 2 || getThreads() < 2) return false;
    return !model.deploy && model.training && model.dtype === 'float32';
  }

  // model: after a step on a whole batch ('auto' past its untimed calls): each conv's choice then is
  // what both halves run, pinned for the step (on a half's batch 'auto' would time anew)
  constructor(private readonly model: RepVGG) {
    this.algorithms = model.algorithmPlan();
    this.convs = model.namedConvs().map(([, c]) => c);
    const n = model.parameterCount();
    this.weights = new Float32Array(new SharedArrayBuffer(4 * n));
    this.grads = new Float32Array(new SharedArrayBuffer(4 * n));
    this.grads1 = new Float32Array(new SharedArrayBuffer(4 * n));
    this.params = model.namedParameters().map(([, p]) => p);
    viewsOf(this.params, this.weights, this.grads, true);
    // the largest meeting: a BatchNorm's backward, two sums per channel
    this.slot = 2 * Math.max(1, ...model.plan.stages.flat().map((b) => b.outChannels));
    this.slots = new Float64Array(new SharedArrayBuffer(8 * 4 * this.slot));
  }

  // x: (N, C, H, W) → logits: (N, classes); every parameter's gradient written (zeroed first), as
  // zeroGrad, forward, cross-entropy and backwardParameters on this thread alone would write them
  step(x: Tensor, labels: ArrayLike<number>): HalvesStep {
    const [N, C, H, W] = x.shape;
    const h = Math.ceil(N / 2), K = this.model.numClasses, size = C * H * W;
    if (this.batch === null || this.batch.images < N) {
      this.batch = { x: new Float32Array(new SharedArrayBuffer(4 * (N - h) * size)), labels: new Int32Array(new SharedArrayBuffer(4 * (N - h))), logits: new Float32Array(new SharedArrayBuffer(4 * (N - h) * K)), images: N };
    }
    const b = this.batch;
    b.x.set(x.data.subarray(h * size, N * size));
    for (let i = h; i < N; i++) b.labels[i - h] = labels[i];
    Atomics.store(this.sync, 0, 0);
    Atomics.store(this.sync, 1, 0);
    const local: Local = { model: this.model, params: this.params, x, labels, result: null };
    locals.set(this.id, local);
    const args: StepArgs = {
      id: this.id, plan: this.model.plan, algorithms: this.algorithms, weights: this.weights, grads: this.grads, grads1: this.grads1,
      x: b.x.subarray(0, (N - h) * size), xShape: [N - h, C, H, W], labels: b.labels.subarray(0, N - h), logits: b.logits.subarray(0, (N - h) * K),
      images: N, sync: this.sync, slots: this.slots, slot: this.slot,
    };
    const kept = this.convs.map((c) => [c.algorithm, c.winogradTile] as const);
    this.convs.forEach((c, i) => {
      const e = this.algorithms[i];
      c.algorithm = e.algorithm;
      if (e.winogradTile !== undefined) c.winogradTile = e.winogradTile;
    });
    try {
      parallel(stepKernel, args, 2);
    } finally {
      locals.delete(this.id);
      this.convs.forEach((c, i) => { [c.algorithm, c.winogradTile] = kept[i]; });
    }
    const r = local.result!;
    if (r.logits.shape[0] === N) return r; // both halves ran here
    halvesStats.steps++;
    const logits = new Float32Array(N * K);
    logits.set(r.logits.data);
    logits.set(args.logits, h * K);
    return { logits: new Tensor(logits, [N, K]), loss: r.loss };
  }
}
