// MobileOne networks against PyTorch (fixtures/make_network_fixtures.py: apple's layout written with
// the upstream-faithful block class, S0 and S4 at 1/8 width with the real depths 2, 8, 10, 1; S0 in
// timm's byobnet names), and the parameter/MAC counts against the MobileOne paper's Table 8.
//
// Tolerances. float64: docs/oracle.md's whole-model bound 1e-10·max|ref| (u = 1.1e-16; every output is a
// sum of at most 4·9 + 256 products per layer over 43 layers, far inside it). float32: docs/oracle.md's
// 16 × PyTorch's own float32 error (its float32 run against its float64 one, 3e-6 to 3e-4·max|ref| here:
// these eval networks with random BN statistics are ill-conditioned): two float32 implementations that
// sum in different orders err by the same order, and a wrong term (a branch, a statistic) is O(1).
// Gradients (float64, training mode): 1e-8 of each key's largest |gradient| (training-mode BN backward
// subtracts batch means over 43 layers; measured worst 1.7e-10, and a wrong term is O(1)).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { classifierFromStateDict, mobileOnePlanFromStateDict, stateDict } from '../../src/io/state_dict.js';
import { MOBILEONE_ZOO, MobileOne, countMobileOne, mobileOnePlan, mobileOneZooNameOf } from '../../src/nn/mobileone.js';
import { convertMobileOne } from '../../src/reparam/branches.js';
import { readOnnx } from '../../src/io/onnx_read.js';
import { toOnnx } from '../../src/io/onnx.js';
import { runOnnx } from '../../src/onnx/run.js';
import { ulpDistance } from '../../src/io/compare.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { fixturePath, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';

const CASES = ['mobileone_s0', 'mobileone_s4', 'mobileone_s0_timm'] as const;
const checkpoint = (name: string) => parseCheckpoint(new Uint8Array(readFileSync(fixturePath(`networks/${name}.pth.tar`))));
const load = (name: string, dtype: 'float32' | 'float64') => classifierFromStateDict(checkpoint(name).entries, { dtype }) as MobileOne;
const rel = (got: Tensor | ArrayLike<number>, want: Tensor) => maxAbsDiff(got, want) / maxAbs(want);

describe('MobileOne counts: the paper\'s Table 8 (params in M, FLOPs in M)', () => {
  // the paper rounds params to 0.1 M and MACs to 1 M; S4's 2979.3 M vs 2978 M: its two SE 1×1 convs per
  // block (2.0 M MACs in all) are counted here and conventions differ on them, so MACs are held to ±0.1 %
  const PAPER: Record<string, [number, number]> = { 'MobileOne-S0': [2.1, 275], 'MobileOne-S1': [4.8, 825], 'MobileOne-S2': [7.8, 1299], 'MobileOne-S3': [10.1, 1896], 'MobileOne-S4': [14.8, 2978] };
  for (const [name, [params, macs]] of Object.entries(PAPER)) {
    it(`${name}: ${params} M parameters deployed, ${macs} M MACs at 224×224`, () => {
      const c = countMobileOne(mobileOnePlan(MOBILEONE_ZOO[name]));
      expect(Math.abs(c.params.deploy / 1e6 - params)).toBeLessThanOrEqual(0.05);
      expect(Math.abs(c.macs / 1e6 - macs) / macs).toBeLessThanOrEqual(1e-3);
    });
  }

  it('the plan is apple\'s: 43 blocks, depthwise then pointwise, stride 2 first in each stage, S4\'s SE in the last 5 units of stage 3 and in stage 4', () => {
    const p = mobileOnePlan(MOBILEONE_ZOO['MobileOne-S4']);
    expect(p.blocks.length).toBe(1 + 2 * (2 + 8 + 10 + 1));
    expect(p.blocks.filter((b) => b.stride === 2).map((b) => b.name)).toEqual(['stage0', 'stage1.0', 'stage2.0', 'stage3.0', 'stage4.0']);
    expect(p.blocks.filter((b) => b.se).map((b) => b.name)).toEqual([...Array.from({ length: 10 }, (_, i) => `stage3.${10 + i}`), 'stage4.0', 'stage4.1']);
    expect(p.blocks.slice(1, 5).map((b) => `${b.inChannels}→${b.outChannels} k${b.kernelSize} g${b.groups}`)).toEqual(['64→64 k3 g64', '64→192 k1 g1', '192→192 k3 g192', '192→192 k1 g1']);
  });
});

describe('MobileOne networks against PyTorch', () => {
  for (const name of CASES) {
    const fx = loadTorchFixture(`networks/${name}`);

    it(`${name}: recognised from its keys; eval forward (float64 and float32) is PyTorch's`, () => {
      const { plan, deploy } = mobileOnePlanFromStateDict(checkpoint(name).entries);
      expect(deploy).toBe(false);
      expect(plan.names).toBe(name.endsWith('timm') ? 'timm' : 'official');
      expect(plan.blocks.length).toBe(43);
      expect(mobileOneZooNameOf(plan)).toBeNull(); // 1/8 width
      const m64 = load(name, 'float64').eval();
      expect(rel(m64.forward(fx.t('x').to('float64')), fx.t('y_eval@f64'))).toBeLessThanOrEqual(1e-10);
      const m32 = load(name, 'float32').eval().setAlgorithm('im2col');
      expect(rel(m32.forward(fx.t('x')), fx.t('y_eval@f64'))).toBeLessThanOrEqual(16 * rel(fx.t('y_eval'), fx.t('y_eval@f64')));
    });

    it(`${name}: mobileOnePlan of the fixture's constructor arguments is the layout PyTorch built (keys, parameter count)`, () => {
      const cfg = fx.meta.config as { width_multipliers: number[]; k?: number; use_se?: boolean; timm_names?: boolean };
      const plan = mobileOnePlan({ width_multipliers: cfg.width_multipliers, num_conv_branches: cfg.k, use_se: cfg.use_se, num_classes: 10, names: cfg.timm_names === true ? 'timm' : 'official' });
      expect(plan).toEqual(mobileOnePlanFromStateDict(checkpoint(name).entries).plan);
      // every parameter of PyTorch's module has a gradient key; the closed-form count must add up to them
      const torchParams = fx.keys.filter((k) => k.startsWith('grad.') && !k.endsWith('@f64')).reduce((n, k) => n + fx.raw(k).data.length, 0);
      expect(countMobileOne(plan, 64).params.train).toBe(torchParams);
      expect(countMobileOne(plan, 64).params.deploy).toBe(fx.keys.filter((k) => k.startsWith('deploy.')).reduce((n, k) => n + fx.raw(k).data.length, 0));
    });

    it(`${name}: training-mode forward and backward (float64) are autograd's`, () => {
      const m = load(name, 'float64').train();
      const y = m.forward(fx.t('x').to('float64'));
      expect(rel(y, fx.t('y_train@f64'))).toBeLessThanOrEqual(1e-10);
      const dx = m.backward(fx.t('dy').to('float64'));
      expect(rel(dx, fx.t('dx@f64'))).toBeLessThanOrEqual(1e-10);
      const params = m.namedParameters();
      expect(params.length).toBe(fx.keys.filter((k) => k.startsWith('grad.') && k.endsWith('@f64')).length);
      for (const [key, p] of params) expect(rel(p.grad, fx.t(`grad.${key}@f64`)), key).toBeLessThanOrEqual(1e-8);
    });

    it(`${name}: convert gives apple's reparameterize_model state dict (fused terms ≤ 1 ulp, the rest bit for bit) and its output`, () => {
      // both sides fuse in float64 from the same float32 parameters and round once to float32
      const deploy = convertMobileOne(load(name, 'float32').eval()).setAlgorithm('im2col');
      const sd = stateDict(deploy);
      const want = fx.keys.filter((k) => k.startsWith('deploy.'));
      expect([...sd.keys()]).toEqual(want.map((k) => k.slice(7)));
      let worst = 0;
      for (const k of want) {
        const got = sd.get(k.slice(7))!.data, w = fx.raw(k).data;
        for (let i = 0; i < w.length; i++) worst = Math.max(worst, ulpDistance(Number(got[i]), Number(w[i]), 'float32'));
      }
      expect(worst).toBeLessThanOrEqual(1);
      expect(rel(deploy.forward(fx.t('x')), fx.t('y_deploy@f64'))).toBeLessThanOrEqual(16 * rel(fx.t('y_deploy'), fx.t('y_deploy@f64')));
      // the deploy state dict is recognised back as a deploy MobileOne
      const back = classifierFromStateDict(sd, { dtype: 'float64' }) as MobileOne;
      expect(back.deploy).toBe(true);
      expect(rel(back.eval().forward(fx.t('x').to('float64')), fx.t('y_deploy@f64'))).toBeLessThanOrEqual(1e-10);
    });
  }

  it('ONNX export (float64, training-time and deploy graphs) runs in the evaluator to PyTorch\'s outputs', () => {
    const fx = loadTorchFixture('networks/mobileone_s4');
    const net = load('mobileone_s4', 'float64').eval();
    const x = fx.t('x').to('float64');
    // deploy: float64 throughout, 1e-10. Training-time: ONNX holds BatchNormalization's epsilon as a float32
    // attribute, 1e-5·(1 − 2.5e-8); where σ² ≈ 0 (channels dead after a ReLU) a BN's scale moves by 1.3e-8,
    // and this ill-conditioned eval network amplifies a perturbation as it does float32's u = 6e-8 into
    // PyTorch's 3.7e-5 (×600): 1.3e-8 × 600 ≈ 8e-6, so 1e-5
    // (the deploy model: our float32 fusion, as upstream's deploy weights are float32, run in float64)
    const deploy = classifierFromStateDict(stateDict(convertMobileOne(load('mobileone_s4', 'float32').eval())), { dtype: 'float64' }).eval();
    for (const [m, ref, tol] of [[net, 'y_eval@f64', 1e-5], [deploy, 'y_deploy@f64', 1e-10]] as const) {
      const y = runOnnx(readOnnx(toOnnx(m)), { input: x }, { dtype: 'float64' }).get('logits')!.data;
      expect(rel(y, fx.t(ref)), ref).toBeLessThanOrEqual(tol);
    }
  });

  it('a fresh MobileOne round-trips through its own state dict in either naming', () => {
    for (const names of ['official', 'timm'] as const) {
      const m = MobileOne.fromConfig({ width_multipliers: [0.125, 0.125, 0.125, 0.25], num_conv_branches: 2, use_se: true, num_classes: 5, names }, { seed: 3 });
      const sd = stateDict(m);
      expect(sd.has(names === 'timm' ? 'stages.2.19.attn.fc1.weight' : 'stage3.19.se.reduce.weight')).toBe(true);
      const { plan } = mobileOnePlanFromStateDict(sd);
      expect(plan).toEqual(m.plan);
    }
  });
});
