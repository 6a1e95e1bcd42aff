// Where a training step's time goes: each module kind's own wall time (its children's taken out)
// over many steps of the demo model (28×28, batch 32, every conv on im2col, one thread), then each
// conv layer's forward, dW + db and dx alone with its multiply-adds. Run after `npm run bench`:
//   node build/bench/step_breakdown.js
import { BatchNorm2d, Conv2d, Linear, ReLU } from '../src/nn/layers.js';
import { BranchBlock } from '../src/nn/branch_block.js';
import { RepVGG } from '../src/nn/repvgg.js';
import type { Module } from '../src/nn/module.js';
import { DEMO_CONFIG } from '../src/cli/commands/demo.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { zeros } from '../src/tensor/tensor.js';
import { SGD } from '../src/train/sgd.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from '../src/ops/loss.js';
import { conv2d, conv2dBackward, convGeometry, convMacs } from '../src/ops/conv2d.js';
import { setThreads } from '../src/backend/threads.js';
import { medianMicros, table } from './harness.js';

setThreads(1);
const own = new Map<string, number>();
const open: number[] = []; // time spent in children of each open call
let timing = false;

// wraps a method of a class so that its calls add their own time (minus nested wrapped calls) to `label`
// (every argument passed on: a conv's backward takes the array its dx goes into)
function timed(proto: Module, method: 'forward' | 'backward' | 'backwardAdding' | 'backwardParameters', label: string): void {
  const f = (proto as unknown as Record<string, (this: Module, ...a: never[]) => unknown>)[method];
  (proto as unknown as Record<string, unknown>)[method] = function (this: Module, ...a: never[]): unknown {
    if (!timing) return f.apply(this, a);
    const t = performance.now();
    open.push(0);
    const r = f.apply(this, a);
    const dt = performance.now() - t, children = open.pop()!;
    if (open.length > 0) open[open.length - 1] += dt;
    own.set(label, (own.get(label) ?? 0) + dt - children);
    return r;
  };
}
const kinds: [Module, string][] = [[Conv2d.prototype, 'conv'], [BatchNorm2d.prototype, 'BN'], [ReLU.prototype, 'ReLU'], [Linear.prototype, 'linear'], [BranchBlock.prototype, 'branch sums']];
for (const [proto, name] of kinds) {
  timed(proto, 'forward', `${name} forward`);
  timed(proto, 'backward', `${name} backward`);
}
// a block's later branch (its dx added into the block's), and the stem, whose input needs no gradient
timed(Conv2d.prototype, 'backwardAdding', 'conv backward');
timed(Conv2d.prototype, 'backwardParameters', 'conv backward');
timed(BranchBlock.prototype, 'backwardParameters', 'branch sums backward');

const model = RepVGG.fromConfig(DEMO_CONFIG, { seed: 1 }).setAlgorithm('im2col').train();
const x = uniform([32, 1, 28, 28], new Rng(2), -1, 1);
const labels = Array.from({ length: 32 }, (_, i) => i % 10);
const opt = new SGD(model.namedParameters().map(([, p]) => p), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
let sgd = 0;
const step = () => {
  model.zeroGrad();
  const { probs } = softmaxCrossEntropy(model.forward(x), labels);
  model.backwardParameters(softmaxCrossEntropyBackward(probs, labels));
  const t = performance.now();
  opt.step();
  sgd += performance.now() - t;
};
for (let i = 0; i < 60; i++) step();
const STEPS = 300;
timing = true;
sgd = 0;
const t0 = performance.now();
for (let i = 0; i < STEPS; i++) step();
const stepMs = (performance.now() - t0) / STEPS;
timing = false;
own.set('SGD', sgd);
console.log(`demo training step: ${stepMs.toFixed(2)} ms (mean of ${STEPS}, one thread); each part's own time:`);
console.log(table([...own].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / STEPS, (100 * v) / STEPS / stepMs]), ['part', 'ms / step', '% of step']));

// each conv layer alone, as the step runs it (the stem's input gradient is never asked for)
const median = (f: () => void): number => medianMicros(f, 50, 200);
// each conv's input shape, and whether it reads the image itself (the step, on backwardParameters,
// does not compute the image's gradient: its dx shows as 0)
const inputs = new Map<Conv2d, { shape: number[]; image: boolean }>();
const forward = Conv2d.prototype.forward;
Conv2d.prototype.forward = function (this: Conv2d, input) {
  inputs.set(this, { shape: input.shape.slice(), image: input === x });
  return forward.call(this, input);
};
model.forward(x);
Conv2d.prototype.forward = forward;
// As the step calls them: the output into an array kept from call to call (a new one each call
// would time its page faults: 1.2 ms of the stem's forward on this VM), dW written into the cleared
// gradient, db only where the conv has a bias (the demo's have none), dx into a kept array.
const rows: (string | number)[][] = [];
for (const [name, c] of model.namedConvs()) {
  const { shape, image } = inputs.get(c)!;
  const w = c.weight.data;
  const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, algorithm: 'im2col' as const };
  const xin = uniform(shape, new Rng(3), -1, 1);
  const g = convGeometry(shape, w.shape, opts);
  const out = zeros([g.N, g.F, g.Ho, g.Wo]), dy = uniform(out.shape, new Rng(4), -1, 1);
  const dW = new Float32Array(w.size), dx = new Float32Array(xin.size), db = c.bias !== null;
  rows.push([name, convMacs(g) / 1e6, median(() => conv2d(xin, w, null, { ...opts, out })),
    median(() => conv2dBackward(dy, xin, w, opts, { dx: false, db, dwInto: dW })), image ? 0 : median(() => conv2dBackward(dy, xin, w, opts, { dw: false, db: false, dxInto: dx }))]);
}
console.log('\neach conv alone (medians, µs; dx 0 where the step does not compute it):');
console.log(table(rows, ['conv', 'M multiply-adds', 'forward', 'dW (+ db)', 'dx']));
