// quant-report (src/onnx/quant_report.ts): the weights' SQNR against closed forms, and a block with a
// planted BN of tiny σ² (its channel scaled by γ/√(σ²+ε) ≈ 301.5) named as the worst layer, for
// that reason, with that scale.
import { describe, expect, it } from 'vitest';
import { RepVGG } from '../../src/nn/repvgg.js';
import { quantReport, weightSqnr, zeroedTaps } from '../../src/onnx/quant_report.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { readFileSync } from 'node:fs';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { classifierFromStateDict } from '../../src/io/state_dict.js';
import type { MobileOne } from '../../src/nn/mobileone.js';
import { fixturePath, loadTorchFixture } from '../helpers.js';

describe('quant-report', () => {
  it('weight SQNR: infinite on the int8 grid; 10·log10(Σw²/Σe²) off it', () => {
    expect(weightSqnr(Float64Array.of(127, -64, 1, 0), 1)).toBe(Infinity); // scale 1: every value on the grid
    // one channel [1, 0.5/127·… ]: scale 1/127; 0.3/127 rounds to 0 (error 0.3/127), 1 stays
    const w = Float64Array.of(1, 0.3 / 127);
    const s = Math.fround(1 / 127), e = (0.3 / 127) ** 2 + (1 - 127 * s) ** 2;
    expect(weightSqnr(w, 1)).toBeCloseTo(10 * Math.log10((1 + (0.3 / 127) ** 2) / e), 9);
  });

  it('zeroed taps: the worst channel\'s share of nonzero weights rounding to 0', () => {
    // channel 0: scale 300/127 ≈ 2.36, so 0.5 and −1 round to 0 (2 of 3 nonzero); channel 1: none
    expect(zeroedTaps(Float64Array.of(300, 0.5, -1, 0, 1, 0.5, -1, 0.25), 2)).toBeCloseTo(2 / 3, 12);
  });

  it('a block whose identity BN has a tiny σ² is the most sensitive layer, and the report says why', () => {
    const cfg = { num_blocks: [1, 2, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], num_classes: 5, in_channels: 3 };
    const train = RepVGG.fromConfig(cfg, { seed: 9 }).eval();
    for (const b of train.blocks()) for (const bn of [b.rbrDense?.bn, b.rbr1x1?.bn, b.rbrIdentity]) if (bn) { bn.runningMean.data.fill(0); bn.runningVar.data.fill(0.1); } // BN scale 3.2: the signal survives the depth
    const planted = train.blocks()[3]; // stage2.1: in = out, stride 1, so it has the identity BN
    planted.rbrIdentity!.runningVar.data[0] = 1e-6;
    const { layers, worst } = quantReport(train, uniform([4, 3, 16, 16], new Rng(1), -1, 1));
    expect(layers.map((l) => l.layer)).toEqual(['stage0.rbr_reparam', 'stage1.0.rbr_reparam', 'stage2.0.rbr_reparam', 'stage2.1.rbr_reparam', 'stage3.0.rbr_reparam', 'stage4.0.rbr_reparam']);
    const bad = layers[3];
    expect(bad.bnScale).toBeCloseTo(1 / Math.sqrt(1e-6 + 1e-5), 3); // γ = 1, ε = 1e-5
    expect(bad.reason).toMatch(/tiny σ² scales a channel by 301\.5/);
    expect(bad.rangeRatio).toBeGreaterThan(10);
    expect(bad.zeroedTaps).toBeGreaterThan(0.5); // the channel's other taps are lost beside its 301× centre
    expect(bad.denseZeroedTaps).toBeLessThan(0.1);
    expect(worst[0]).toBe('stage2.1.rbr_reparam');
    for (const l of layers.filter((x) => x !== bad)) expect(l.bnScale).toBeLessThan(10);
  });

  it('a MobileOne (apple\'s S0 layout from PyTorch): each block against its k conv branches alone, the range ratio in closed form', () => {
    const sd = parseCheckpoint(new Uint8Array(readFileSync(fixturePath('networks/mobileone_s0.pth.tar')))).entries;
    const fx = loadTorchFixture('networks/mobileone_s0');
    const { layers } = quantReport((classifierFromStateDict(sd) as MobileOne).eval(), fx.t('x'));
    expect(layers.length).toBe(43); // one per block: the head is not a layer
    // stage1.2: depthwise 3×3 at stride 1, so rbr_conv.0–3, rbr_scale and rbr_skip. Closed form: the k×k
    // branches alone K3 = Σᵢ W_i·γ_i/√(σ_i²+ε); the fused kernel is PyTorch's (apple's _get_kernel_bias)
    const v = (k: string) => sd.get(`stage1.2.${k}`)!.data as Float32Array;
    const K = fx.t('deploy.stage1.2.reparam_conv.weight').data, C = fx.t('deploy.stage1.2.reparam_conv.weight').shape[0];
    let ratio = 0;
    for (let c = 0; c < C; c++) {
      let mk = 0, m3 = 0;
      for (let t = 0; t < 9; t++) {
        let k3 = 0;
        for (let i = 0; i < 4; i++) k3 += v(`rbr_conv.${i}.conv.weight`)[c * 9 + t] * v(`rbr_conv.${i}.bn.weight`)[c] / Math.sqrt(v(`rbr_conv.${i}.bn.running_var`)[c] + 1e-5);
        mk = Math.max(mk, Math.abs(K[c * 9 + t]));
        m3 = Math.max(m3, Math.abs(k3));
      }
      ratio = Math.max(ratio, mk / m3);
    }
    // ours fuses to within 1 ulp of PyTorch's float32 kernel (test/nn/mobileone.test.ts): the ratio to 2⁻²³
    const layer = layers.find((l) => l.layer === 'stage1.2.reparam_conv')!;
    expect(Math.abs(layer.rangeRatio! - ratio) / ratio).toBeLessThanOrEqual(2 ** -23);
  });

  it('a deploy checkpoint (apple\'s fusion, from PyTorch): no branch columns; the weights\' SQNR in closed form', () => {
    const fx = loadTorchFixture('networks/mobileone_s0');
    const sd = new Map(fx.keys.filter((k) => k.startsWith('deploy.')).map((k) => [k.slice(7), fx.raw(k)]));
    const { layers } = quantReport((classifierFromStateDict(sd) as MobileOne).eval(), fx.t('x'));
    expect(layers).toHaveLength(43);
    for (const l of layers) expect([l.rangeRatio, l.channel, l.bnScale, l.denseSqnr, l.denseZeroedTaps]).toEqual([null, null, null, null, null]);
    // SQNR = 10·log10(Σ K² / Σ (K − q·s)²), s_c = fl(max|K_c|/127), q = rte(fl(K/s_c)) (|q| ≤ 127 by construction)
    const K = fx.t('deploy.stage1.2.reparam_conv.weight'), F = K.shape[0], per = K.size / F;
    let sig = 0, err = 0;
    for (let c = 0; c < F; c++) {
      let m = 0;
      for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(K.data[i]));
      const s = Math.fround(m / 127);
      for (let i = c * per; i < (c + 1) * per; i++) {
        const t = Math.fround(K.data[i] / s), f = Math.floor(t), q = t - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(t);
        sig += K.data[i] ** 2;
        err += (K.data[i] - q * s) ** 2;
      }
    }
    expect(layers.find((l) => l.layer === 'stage1.2.reparam_conv')!.weightSqnr).toBeCloseTo(10 * Math.log10(sig / err), 9);
  });
});
