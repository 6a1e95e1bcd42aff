// A whole small RepVGG (groups 2 and 4, odd 19×17 input, stride-2 stages, a 1×1 final map)
// against PyTorch: eval forward, train forward (+ running statistics), and backward.
import { describe, expect, it } from 'vitest';
import { RepVGG } from '../../src/nn/repvgg.js';
import { planFromConfig, type RepVGGConfig } from '../../src/nn/config.js';
import { loadStateDict, modelFromStateDict, stateDict } from '../../src/io/state_dict.js';
import type { SafeEntry } from '../../src/io/safetensors.js';
import { loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';
import { type FloatArray, Tensor } from '../../src/tensor/tensor.js';
import { Conv2d } from '../../src/nn/layers.js';

const fx = loadTorchFixture('repvgg_small');
const cfg = fx.meta.config as RepVGGConfig;

function fixtureState(): Map<string, SafeEntry> {
  const m = new Map<string, SafeEntry>();
  for (const key of stateDict(RepVGG.fromConfig(cfg)).keys()) m.set(key, fx.raw('state.' + key));
  return m;
}

// The contract: ≤ 1e-4 relative to the largest magnitude in float32 (a 7-block network of
// float32 convs and BNs with different summation orders accumulates ~1e-6 relative; 1e-4 leaves room
// for BN's 1/σ amplification on small batches). float64: 1e-10 relative, the same chain at u = 2⁻⁵³.
const close = (got: Tensor, ref: Tensor, dtype: 'float32' | 'float64') =>
  expect(maxAbsDiff(got, ref)).toBeLessThanOrEqual((dtype === 'float32' ? 1e-4 : 1e-10) * maxAbs(ref));

describe.each(['float32', 'float64'] as const)('small RepVGG matches PyTorch (%s)', (dtype) => {
  const s = dtype === 'float64' ? '@f64' : '';
  const build = () => {
    const model = RepVGG.fromConfig(cfg, { dtype });
    loadStateDict(model, fixtureState());
    return model;
  };

  it('has the public state-dict keys', () => {
    const keys = [...stateDict(build()).keys()];
    expect(keys).toContain('stage0.rbr_dense.conv.weight');
    expect(keys).toContain('stage0.rbr_1x1.bn.num_batches_tracked');
    expect(keys).toContain('stage1.1.rbr_identity.running_var');
    expect(keys).toContain('linear.bias');
    expect(keys.filter((k) => k.includes('rbr_identity')).length).toBe(5 * 2); // stage1.1 and stage2.1
  });

  it('eval forward, every algorithm', () => {
    for (const algorithm of ['auto', 'direct', 'im2col', 'winograd'] as const) {
      const model = build().eval().setAlgorithm(algorithm);
      close(model.forward(fx.t('input').to(dtype)), fx.t('eval.output' + s), dtype);
    }
  });

  it('train forward, running statistics, and backward', () => {
    const model = build().train();
    const y = model.forward(fx.t('input').to(dtype));
    close(y, fx.t('train.output' + s), dtype);
    const dx = model.backward(fx.t('grad_output').to(dtype));
    close(dx, fx.t('grad.input' + s), dtype);
    for (const [key, p] of model.namedParameters()) close(p.grad, fx.t(`grad.${key}${s}`), dtype);
    for (const [key, b] of model.namedBuffers()) {
      if (b.kind === 'tensor') close(b.value, fx.t(`train.state.${key}${s}`), dtype);
      else expect(b.value).toBe(4); // 3 in the fixture + one training forward
    }
  });

  it("backwardParameters: every parameter's gradient as backward's (PyTorch's), the input's not computed", () => {
    const model = build().train();
    close(model.forward(fx.t('input').to(dtype)), fx.t('train.output' + s), dtype);
    const asked: number[] = []; // the stem's convs: their dx is never asked for
    const stem = new Set(model.stage0.branches.map((chain) => chain[0]));
    const original = Conv2d.prototype.backward;
    Conv2d.prototype.backward = function (this: Conv2d, dy: Tensor, into?: FloatArray) {
      if (stem.has(this)) asked.push(1);
      return original.call(this, dy, into);
    };
    try {
      expect(model.backwardParameters(fx.t('grad_output').to(dtype))).toBeUndefined();
    } finally {
      Conv2d.prototype.backward = original;
    }
    expect(asked).toEqual([]);
    for (const [key, p] of model.namedParameters()) close(p.grad, fx.t(`grad.${key}${s}`), dtype);
  });

  // The model writes its blocks' outputs and the gradients between blocks into arrays it keeps from
  // step to step (src/nn/kept_arrays.ts): the fixture's step after steps on other inputs (another
  // batch size, then the fixture's) gives PyTorch's values again, and what a step returned stays.
  it('the training step again, after steps on other inputs, matches PyTorch; earlier results stay as returned', () => {
    const model = build().train();
    const x = fx.t('input').to(dtype), dy = fx.t('grad_output').to(dtype);
    const other = (n: number, s0: number) => {
      const shape = [n, ...x.shape.slice(1)];
      const t = (f: (i: number) => number, sh: number[]) => new Tensor(dtype === 'float32' ? Float32Array.from({ length: sh.reduce((a, d) => a * d, 1) }, (_, i) => f(i)) : Float64Array.from({ length: sh.reduce((a, d) => a * d, 1) }, (_, i) => f(i)), sh);
      const y = model.forward(t((i) => Math.sin(s0 * i + 1), shape));
      return { y, dx: model.backward(t((i) => Math.cos(s0 * i), [...y.shape])) };
    };
    other(x.shape[0] + 1, 0.3);
    const first = other(x.shape[0], 0.7);
    const kept = { y: Array.from(first.y.data), dx: Array.from(first.dx.data) };
    other(x.shape[0], 0.9); // the same shapes: the model's kept arrays are written again
    loadStateDict(model, fixtureState()); // the fixture's parameters and running statistics back
    model.zeroGrad();
    close(model.forward(x), fx.t('train.output' + s), dtype);
    close(model.backward(dy), fx.t('grad.input' + s), dtype);
    for (const [key, p] of model.namedParameters()) close(p.grad, fx.t(`grad.${key}${s}`), dtype);
    expect(Array.from(first.y.data)).toEqual(kept.y);
    expect(Array.from(first.dx.data)).toEqual(kept.dx);
  });
});

describe('checkpoint inference', () => {
  it('infers groups, identity and 1×1 branches from keys and shapes', () => {
    const model = modelFromStateDict(fixtureState());
    expect(model.plan).toEqual(planFromConfig(cfg));
    expect(model.plan.stages[2][1].groups).toBe(4);
  });
  it('accepts a DataParallel module. prefix', () => {
    const prefixed = new Map([...fixtureState()].map(([k, v]) => [`module.${k}`, v]));
    expect(modelFromStateDict(prefixed).plan).toEqual(planFromConfig(cfg));
  });
  it('names the missing or mis-shaped key', () => {
    const st = fixtureState();
    st.delete('stage2.0.rbr_dense.bn.running_var');
    expect(() => modelFromStateDict(st)).toThrow("missing key 'stage2.0.rbr_dense.bn.running_var'");
    const st2 = fixtureState();
    st2.set('stage3.0.rbr_dense.conv.weight', { dtype: 'F32', shape: [32, 5, 3, 3], data: new Float32Array(32 * 45) });
    expect(() => modelFromStateDict(st2)).toThrow("'stage3.0.rbr_dense.conv.weight' has shape [32, 5, 3, 3], expected (out, 16/groups, 3, 3)");
    const st3 = fixtureState();
    st3.set('linear.weight', { dtype: 'F32', shape: [5, 7], data: new Float32Array(35) });
    expect(() => modelFromStateDict(st3)).toThrow("'linear.weight' has shape [5, 7]");
    const st4 = fixtureState();
    st4.set('extra.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    expect(() => modelFromStateDict(st4)).toThrow("unexpected key 'extra.weight'");
  });
  it('rejects an input with the wrong channel count', () => {
    const model = modelFromStateDict(fixtureState());
    expect(() => model.forward(fx.t('input').reshape([3, 1, 3 * 19, 17]))).toThrow('input shape [3, 1, 57, 17] does not match (N, 3, H, W)');
  });
});
