// `repvgg fixtures --out DIR`: golden cases computed by this engine in float64, with a manifest that
// tells another backend what each file holds and how closely to match it.
import { join } from 'node:path';
import { type ParsedArgs, required } from '../args.js';
import type { Command, Io } from '../command.js';
import { writeFileAtomic, writeSafetensorsFile } from '../files.js';
import { type SafeEntry, entryOf, int64Scalar } from '../../io/safetensors.js';
import { Rng, uniform } from '../../tensor/rng.js';
import { type Conv2dOptions, conv2d, conv2dBackward } from '../../ops/conv2d.js';
import { batchNorm2d, batchNorm2dBackward } from '../../ops/batchnorm.js';
import { globalAvgPool, globalAvgPoolBackward } from '../../ops/pool.js';
import { linear, linearBackward } from '../../ops/linear.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from '../../ops/loss.js';
import { RepVGG } from '../../nn/repvgg.js';
import { BatchNorm2d } from '../../nn/layers.js';
import type { Module } from '../../nn/module.js';
import { stateDict } from '../../io/state_dict.js';
import { convert } from '../../reparam/repvgg.js';
import { Tensor } from '../../tensor/tensor.js';

export interface ConvCase { name: string; x: number[]; w: number[]; options: Conv2dOptions }

/** The conv geometries of the PyTorch fixtures (fixtures/make_torch_fixtures.py). */
const CONV_CASES: ConvCase[] = [
  { name: 'groups', x: [2, 4, 7, 9], w: [6, 2, 3, 3], options: { stride: 1, padding: 1, dilation: 1, groups: 2 } },
  { name: 'stride2', x: [2, 3, 11, 10], w: [4, 3, 3, 3], options: { stride: 2, padding: [1, 2], dilation: 1, groups: 1 } },
  { name: 'dilation', x: [1, 4, 9, 8], w: [3, 4, 3, 2], options: { stride: 1, padding: [2, 1], dilation: 2, groups: 1 } },
  { name: 'asym_padding', x: [2, 2, 6, 5], w: [3, 2, 3, 3], options: { stride: [2, 1], padding: [[0, 2], [1, 0]], dilation: 1, groups: 1 } },
  { name: 'same_even', x: [1, 2, 5, 6], w: [2, 2, 4, 2], options: { stride: 1, padding: 'same', dilation: [1, 2], groups: 1 } },
  { name: 'depthwise_1x1_s2', x: [2, 6, 7, 7], w: [6, 1, 1, 1], options: { stride: 2, padding: 0, dilation: 1, groups: 6 } },
  { name: 'tiny_1x1_input', x: [1, 4, 1, 1], w: [4, 2, 3, 3], options: { stride: 1, padding: 1, dilation: 1, groups: 2 } },
];

const SMALL_REPVGG = { num_blocks: [2, 2, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], override_groups_map: { 2: 2, 4: 4 }, num_classes: 5, in_channels: 3 };

const TOL = '|out − expected| ≤ 1e-12·max|expected| in float64; float32 backends: see fixtures/README.md (k·u·Σ|x·w| per output)';

function randomizeBN(m: Module, rng: Rng): void {
  if (m instanceof BatchNorm2d) {
    for (let c = 0; c < m.weight.data.size; c++) {
      m.weight.data.data[c] = 0.5 + rng.next();
      m.bias.data.data[c] = rng.next() - 0.5;
      m.runningMean.data[c] = 0.6 * rng.next() - 0.3;
      m.runningVar.data[c] = 0.5 + 1.5 * rng.next();
    }
    m.numBatchesTracked = 3;
  }
  for (const [, c] of m.children()) randomizeBN(c, rng);
}

export const fixtures: Command = {
  spec: {
    name: 'fixtures',
    summary: 'regenerate the golden cases from this engine in float64, with a manifest',
    usage: 'repvgg fixtures --out DIR',
    flags: { threads: 'count', backend: 'string', out: 'string' },
    positionals: 0,
    files: [{ arg: 'out', role: 'out-dir' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const dir = required(a, 'out', 'fixtures');
    const manifest: Record<string, unknown>[] = [];
    const write = (name: string, tensors: Record<string, Tensor | SafeEntry>, meta: Record<string, unknown>, describe: Record<string, unknown>) => {
      const entries = new Map<string, SafeEntry>();
      for (const [k, v] of Object.entries(tensors)) entries.set(k, v instanceof Tensor ? entryOf(v) : v);
      writeSafetensorsFile(join(dir, `${name}.safetensors`), entries, Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, JSON.stringify(v)])));
      manifest.push({ name, file: `${name}.safetensors`, ...meta, ...describe, tolerance: TOL });
    };
    for (const [i, c] of CONV_CASES.entries()) {
      const rng = new Rng(100 + i);
      const x = uniform(c.x, rng, -1, 1, 'float64'), w = uniform(c.w, rng, -1, 1, 'float64'), b = uniform([c.w[0]], rng, -1, 1, 'float64');
      const y = conv2d(x, w, b, { ...c.options, algorithm: 'direct' });
      const dy = uniform(y.shape, rng, -1, 1, 'float64');
      const g = conv2dBackward(dy, x, w, { ...c.options, algorithm: 'direct' });
      write(`conv2d_${c.name}`, { x, w, b, dy, y, dx: g.dx!, dw: g.dw!, db: g.db! }, { op: 'conv2d', options: c.options },
        { inputs: ['x', 'w', 'b', 'dy'], outputs: { y: 'conv2d(x, w, b, options)', dx: 'dL/dx for L = Σ y·dy', dw: 'dL/dw', db: 'dL/db' } });
    }
    for (const training of [true, false]) {
      const rng = new Rng(training ? 200 : 201);
      const x = uniform([3, 5, 4, 6], rng, -1, 3, 'float64');
      const p = { weight: uniform([5], rng, 0.5, 1.5, 'float64'), bias: uniform([5], rng, -0.5, 0.5, 'float64'), runningMean: uniform([5], rng, -0.5, 0.5, 'float64'), runningVar: uniform([5], rng, 0.5, 1.5, 'float64') };
      const before = { running_mean: p.runningMean.clone(), running_var: p.runningVar.clone() };
      const dy = uniform(x.shape, rng, -1, 1, 'float64');
      const r = batchNorm2d(x, p, { training });
      const g = batchNorm2dBackward(dy, x, p.weight, r, training);
      write(`batchnorm_${training ? 'train' : 'eval'}`, { x, weight: p.weight, bias: p.bias, ...before, dy, y: r.y, running_mean_after: p.runningMean, running_var_after: p.runningVar, dx: g.dx, dweight: g.dweight!, dbias: g.dbias! },
        { op: 'batch_norm', options: { training, momentum: 0.1, eps: 1e-5 } },
        { inputs: ['x', 'weight', 'bias', 'running_mean', 'running_var', 'dy'], outputs: { y: 'F.batch_norm(...)', running_mean_after: 'running mean after the call', running_var_after: 'running var (unbiased) after the call', dx: 'dL/dx', dweight: 'dL/dγ', dbias: 'dL/dβ' } });
    }
    {
      const rng = new Rng(300);
      const x = uniform([2, 3, 5, 7], rng, -1, 1, 'float64'), dy = uniform([2, 3], rng, -1, 1, 'float64');
      write('global_avg_pool', { x, dy, y: globalAvgPool(x), dx: globalAvgPoolBackward(dy, x.shape) }, { op: 'global_avg_pool' }, { inputs: ['x', 'dy'], outputs: { y: 'mean over H, W', dx: 'dL/dx' } });
      // x·wᵀ + b of a batch of N with I in_features and O out_features, the inputs drawn from r
      const linearCase = (name: string, r: Rng, N: number, I: number, O: number, yWhat: string) => {
        const x = uniform([N, I], r, -1, 1, 'float64'), w = uniform([O, I], r, -1, 1, 'float64'), b = uniform([O], r, -1, 1, 'float64'), dy = uniform([N, O], r, -1, 1, 'float64');
        const gl = linearBackward(dy, x, w);
        write(name, { x, w, b, dy, y: linear(x, w, b), dx: gl.dx, dw: gl.dw, db: gl.db }, { op: 'linear' }, { inputs: ['x', 'w', 'b', 'dy'], outputs: { y: yWhat, dx: 'dL/dx', dw: 'dL/dw', db: 'dL/db' } });
      };
      linearCase('linear', rng, 4, 6, 3, 'x·wᵀ + b');
      // a batch smaller than out_features (linear() takes the other side transposed); its own stream
      linearCase('linear_wide', new Rng(350), 2, 9, 11, 'x·wᵀ + b, batch 2 < 11 out_features');
      const z = uniform([5, 4], rng, -3, 3, 'float64');
      const labels = [0, 3, 1, 1, 2];
      const ce = softmaxCrossEntropy(z, labels);
      write('cross_entropy', { logits: z, labels: { dtype: 'I64', shape: [5], data: BigInt64Array.from(labels.map(BigInt)) }, y: { dtype: 'F64', shape: [1], data: new Float64Array([ce.loss]) }, dlogits: softmaxCrossEntropyBackward(ce.probs, labels) },
        { op: 'cross_entropy' }, { inputs: ['logits', 'labels'], outputs: { y: 'mean cross-entropy', dlogits: 'dL/dlogits' } });
    }
    {
      const rng = new Rng(400);
      const model = RepVGG.fromConfig(SMALL_REPVGG, { dtype: 'float64', seed: 400 });
      randomizeBN(model, rng);
      const x = uniform([3, 3, 19, 17], rng, -1, 1, 'float64');
      const t: Record<string, Tensor | SafeEntry> = { input: x };
      for (const [k, e] of stateDict(model)) t[`state.${k}`] = e;
      model.eval();
      t['eval.output'] = model.forward(x);
      for (const [k, e] of stateDict(convert(model))) if (k.includes('rbr_reparam')) t[`deploy.${k}`] = e;
      model.train();
      const y = model.forward(x);
      t['train.output'] = y;
      const dy = uniform(y.shape, rng, -1, 1, 'float64');
      t.grad_output = dy;
      t['grad.input'] = model.backward(dy);
      for (const [k, p] of model.namedParameters()) t[`grad.${k}`] = p.grad;
      for (const [k, b] of model.namedBuffers()) t[`train.state.${k}`] = b.kind === 'tensor' ? b.value : int64Scalar(b.value);
      write('repvgg_small', t, { config: SMALL_REPVGG }, {
        inputs: ['input', 'state.<key> (training-time state dict, public RepVGG names)', 'grad_output'],
        outputs: { 'eval.output': 'logits, model.eval()', 'train.output': 'logits, model.train() (batch statistics)', 'train.state.<key>': 'state after the training forward', 'grad.input': 'dL/dinput for L = Σ logits·grad_output', 'grad.<key>': 'dL/dparameter', 'deploy.<block>.rbr_reparam.{weight,bias}': 'fused deploy weights' },
      });
    }
    writeFileAtomic(join(dir, 'manifest.json'), new TextEncoder().encode(JSON.stringify({ generator: 'repvgg fixtures (float64)', cases: manifest }, null, 2) + '\n'));
    io.out(`wrote ${manifest.length} cases and manifest.json to ${dir}`);
    return 0;
  },
};
