// Why a fused RepVGG (or MobileOne) quantizes badly, layer by layer (the complaint behind QARepVGG): the
// fused kernel K = fold(BN₃)(W₃) + pad(fold(BN₁)(W₁)) + fold(BN_id)(I) piles the 1×1 and identity
// branches onto the centre tap, and a BN with a tiny σ² scales its channel by γ/√(σ²+ε); either widens a
// channel's range, and per-channel int8 spends its 255 levels on it. For each block: that range against
// its k×k branches' alone (RepVGG's 3×3, MobileOne's k over-parameterized ones), the weights' SQNR
// (fused and k×k alone), the output activation's SQNR on the calibration batch, and the sensitivity:
// the logits' change when that layer alone is quantized.

import { readOnnx } from '../io/onnx_read.js';
import { toOnnx } from '../io/onnx.js';
import type { RepVGG } from '../nn/repvgg.js';
import { MobileOne } from '../nn/mobileone.js';
import { BatchNorm2d, Conv2d } from '../nn/layers.js';
import type { BranchBlock, LinearBranches } from '../nn/branch_block.js';
import { fuseLinearBranches } from '../reparam/fuse.js';
import { convert } from '../reparam/repvgg.js';
import { convertMobileOne } from '../reparam/branches.js';
import type { Tensor } from '../tensor/tensor.js';
import { absMaxPerChannel, minMax, quantizationMse, quantizeOnnx, quantizeWeights } from './quantize.js';
import { runOnnx } from './run.js';

export interface LayerQuantReport {
  /** the fused conv's node name ('stage1.0.rbr_reparam') */
  layer: string;
  /** max over channels of max|K_c| / max|K3_c|, and that channel (null for a deploy model: no branches to compare) */
  rangeRatio: number | null;
  channel: number | null;
  /** the largest BN scale γ/√(σ²+ε) in the block's branches (null for a deploy model) */
  bnScale: number | null;
  /** SQNR (dB) of per-channel int8 weights: the fused kernel, and the k×k branches alone (RepVGG's 3×3) */
  weightSqnr: number;
  denseSqnr: number | null;
  /**
   * The worst channel's share of nonzero weights that round to 0 in int8: the fused kernel, and the
   * 3×3 branch alone. SQNR can look fine when one tap dominates a channel (its energy is the signal)
   * while every other tap of the channel is lost; this shows it.
   */
  zeroedTaps: number;
  denseZeroedTaps: number | null;
  /** SQNR (dB) of the block's uint8 output on the calibration batch (min-max) */
  activationSqnr: number;
  /** max |Δ logit| / max |logit| with this layer alone quantized */
  sensitivity: number;
  reason: string;
}

const sqnr = (signal: number, noise: number) => (noise === 0 ? Infinity : 10 * Math.log10(signal / noise));

/**
 * Per-channel int8 symmetric weights (as quantizeOnnx makes them), from one quantization: their SQNR
 * in dB, and the largest share, over channels, of nonzero weights that round to 0.
 */
function int8Weights(k: Float64Array | Float32Array, channels: number): { sqnr: number; zeroed: number } {
  const { q, scales } = quantizeWeights(k, channels);
  const per = k.length / channels;
  let s = 0, e = 0, worst = 0;
  for (let c = 0; c < channels; c++) {
    let nonzero = 0, lost = 0;
    for (let i = c * per; i < (c + 1) * per; i++) {
      s += k[i] ** 2;
      e += (k[i] - q[i] * scales[c]) ** 2;
      if (k[i] === 0) continue;
      nonzero++;
      if (q[i] === 0) lost++;
    }
    if (nonzero > 0) worst = Math.max(worst, lost / nonzero);
  }
  return { sqnr: sqnr(s, e), zeroed: worst };
}

/** Per-channel int8 symmetric weights (as quantizeOnnx makes them): SQNR in dB. */
export function weightSqnr(k: Float64Array | Float32Array, channels: number): number {
  return int8Weights(k, channels).sqnr;
}

/** The largest share, over channels, of nonzero weights that per-channel int8 rounds to 0. */
export function zeroedTaps(k: Float64Array | Float32Array, channels: number): number {
  return int8Weights(k, channels).zeroed;
}


/** The k×k branches of a block alone: those whose conv has the fused kernel's size (RepVGG's 3×3, MobileOne's rbr_conv.i). */
function widestBranches(lb: LinearBranches): LinearBranches {
  const full = (chain: LinearBranches['branches'][number]) => chain.some(([, m]) => m instanceof Conv2d && m.weight.data.shape[2] === lb.kernelSize && m.weight.data.shape[3] === lb.kernelSize);
  return { ...lb, branches: lb.branches.filter(full), post: null };
}

/**
 * The report for a RepVGG or MobileOne in eval mode on a calibration batch; `worst`: the three most
 * sensitive layers. A training-time model is also compared with its k×k branches; a deploy one has
 * none, so those fields are null. A MobileOne's SE convs are not reported (each run quantizes one block's conv).
 */
export function quantReport(train: RepVGG | MobileOne, calib: Tensor): { layers: LayerQuantReport[]; worst: string[] } {
  const mobileOne = train instanceof MobileOne;
  const deploy = train.deploy ? train : mobileOne ? convertMobileOne(train) : convert(train);
  const model = readOnnx(toOnnx(deploy));
  // each block: its name, its branches, its fused conv's node (named after the deploy key) and kernel
  const names = train.children().slice(0, -1).map(([n]) => n); // the blocks in order, then the classifier
  const lbs = train.deploy ? null : train instanceof MobileOne ? train.blocks.map((b) => (b as BranchBlock).linearBranches()) : train.blocks().map((b) => b.linearBranches());
  const blocks = names.map((name, i) => {
    const convName = `${name}.${mobileOne ? 'reparam_conv' : 'rbr_reparam'}`;
    const conv = model.nodes.find((n) => n.opType === 'Conv' && n.name === convName)!;
    const K = model.initializers.get(conv.inputs[1])!; // the fused kernel, as exported (a view of the deploy model's)
    return { lb: lbs?.[i] ?? null, conv, K: K.data as Float32Array | Float64Array, F: K.dims[0], relu: model.nodes.find((n) => n.opType === 'Relu' && n.name === `${name}.relu`)! };
  });
  // float run: the logits and every block's output (its Relu)
  const outs = new Map<string, Float32Array | Float64Array>();
  const outputOf = blocks.map((b) => b.relu.outputs[0]);
  const blockOut = new Set(outputOf);
  const logitsName = model.outputs[0].name;
  // min-max ranges of every conv's input and block output, from this one run (quantizeOnnx then needs no calibration run of its own)
  const ranges = new Map<string, [number, number]>();
  const convInputs = new Set(model.nodes.filter((n) => n.opType === 'Conv').map((c) => c.inputs[0])); // the SE's convs too: quantizeOnnx reads every conv's range
  for (const v of model.inputs) if (convInputs.has(v.name)) ranges.set(v.name, minMax(calib.data));
  const y0 = runOnnx(model, [calib], { algorithm: 'im2col', onNode: (_i, _n, node, _xs, ys) => {
    const o = node.outputs[0];
    if (blockOut.has(o)) outs.set(o, ys[0].data);
    // a conv's own output matters where no Relu alone follows it (a MobileOne block's SE reads it)
    if (blockOut.has(o) || convInputs.has(o) || (node.opType === 'Conv' && !ranges.has(o))) ranges.set(o, minMax(ys[0].data));
  } }).get(logitsName)!.data;
  let big = 0;
  for (let i = 0; i < y0.length; i++) big = Math.max(big, Math.abs(y0[i]));
  const layers = blocks.map(({ lb, conv, K, F }, i): LayerQuantReport => {
    // against the k×k branches alone (a training-time model only)
    const K3 = lb === null ? null : fuseLinearBranches(widestBranches(lb), conv.name).kernel.data;
    let rangeRatio: number | null = null, channel: number | null = null, bnScale: number | null = null;
    if (lb !== null && K3 !== null) {
      const mk = absMaxPerChannel(K, F), m3 = absMaxPerChannel(K3, F);
      rangeRatio = 0;
      for (let c = 0; c < F; c++) { const r = m3[c] > 0 ? mk[c] / m3[c] : Infinity; if (r > rangeRatio) { rangeRatio = r; channel = c; } }
      bnScale = 0;
      for (const [, bn] of lb.branches.flat()) {
        if (!(bn instanceof BatchNorm2d)) continue;
        for (let c = 0; c < bn.weight.data.size; c++) bnScale = Math.max(bnScale, Math.abs(bn.weight.data.data[c]) / Math.sqrt(bn.runningVar.data[c] + bn.eps));
      }
    }
    // the block's output in uint8 over its min-max range
    const act = outs.get(outputOf[i])!;
    let signal = 0;
    for (let j = 0; j < act.length; j++) signal += act[j] ** 2;
    const activationSqnr = sqnr(signal / act.length, quantizationMse(act, ...ranges.get(outputOf[i])!, 'uint8'));
    // this layer alone quantized
    const yq = runOnnx(quantizeOnnx(model, calib, { only: [conv.name], ranges }).model, [calib], { algorithm: 'im2col' }).get(logitsName)!.data;
    let d = 0;
    for (let j = 0; j < yq.length; j++) d = Math.max(d, Math.abs(yq[j] - y0[j]));
    const fused = int8Weights(K, F), dense = K3 === null ? null : int8Weights(K3, F);
    const r: LayerQuantReport = {
      layer: conv.name, rangeRatio, channel, bnScale, weightSqnr: fused.sqnr, denseSqnr: dense?.sqnr ?? null, zeroedTaps: fused.zeroed, denseZeroedTaps: dense?.zeroed ?? null, activationSqnr, sensitivity: big > 0 ? d / big : d, reason: '',
    };
    const k = lb?.kernelSize ?? 3;
    r.reason = bnScale !== null && bnScale > 10 ? `a BatchNorm with a tiny σ² scales a channel by ${bnScale.toFixed(1)}`
      : rangeRatio !== null && rangeRatio > 1.5 && r.zeroedTaps > r.denseZeroedTaps! ? `the fused range of channel ${channel} is ${rangeRatio.toFixed(1)}× the ${k}×${k} branches': the branches outside them (1×1, identity) add onto the centre tap (${(100 * r.zeroedTaps).toFixed(0)}% of a channel's taps round to 0, ${(100 * r.denseZeroedTaps!).toFixed(0)}% for the ${k}×${k} alone)`
        : r.zeroedTaps > 0.25 ? `${(100 * r.zeroedTaps).toFixed(0)}% of a channel's taps round to 0 (a few large taps set its scale)`
        : r.activationSqnr < r.weightSqnr ? `its output's range is wide (activation SQNR ${r.activationSqnr.toFixed(1)} dB)`
          : `weight rounding (SQNR ${r.weightSqnr.toFixed(1)} dB)`;
    return r;
  });
  const worst = layers.slice().sort((a, b) => b.sensitivity - a.sensitivity).slice(0, 3).map((l) => l.layer);
  return { layers, worst };
}
