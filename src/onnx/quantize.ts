// Post-training quantization of a float ONNX graph into QDQ form (QuantizeLinear / DequantizeLinear
// around each Conv) or QOperator form (QLinearConv), calibrated on a batch of inputs. The quantized file runs here as exact integers
// and in onnxruntime bit for bit (src/onnx/qdq.ts: each DQ → Conv → Q is a QLinearConv).
//
//   weights   int8, symmetric: s_w = max|w|/127 per output channel (or per tensor), q = sat(rte(w/s_w))
//   bias      int32 at scale s_x·s_w[c]: q = rte(b / (s_x·s_w[c]))
//   tensors   uint8 (or int8), asymmetric over the calibrated range [lo, hi] ∋ 0:
//             s = (hi − lo)/255, zp = rte(qmin − lo/s)
//   bits b < 8 (2…8): the same containers, with b-bit grids: weights ±(2^(b−1) − 1), tensors 2^b codes
//             from qmin (uint8 0…2^b − 1, int8 −2^(b−1)…2^(b−1) − 1); a value past its calibrated range
//             saturates at the container's limit, as ONNX's QuantizeLinear defines it
//   range     min-max over the calibration batch, or the p-th percentile of each tail (e.g. 99.99)
// A Relu right after a Conv goes: its output's range starts at 0, so the zero point is qmin and
// quantizing saturates exactly where the Relu would clip (Q(relu(y)) = Q(y)). The classifier's Gemm
// (y = x·Wᵀ + b, constant W and b) becomes DQ → MatMul → Q with int8 weights per tensor (a QLinearMatMul,
// as onnxruntime runs it), then its bias added in float; every other op (pooling, SE) stays in float
// on the dequantized values.

import type { OnnxModel, OnnxNode, OnnxTensor } from '../io/onnx_read.js';
import { Tensor } from '../tensor/tensor.js';
import { runOnnx } from './run.js';
import { integerQdq } from './qdq.js';
import { attrFloat, attrInt, numel, readersOf, roundHalfEven } from './value.js';
import { showText } from '../tensor/untrusted.js';

export interface QuantizeOptions {
  /** weights per output channel (default) or one scale per tensor */
  perChannel?: boolean;
  /** activations' type (default uint8) */
  activations?: 'uint8' | 'int8';
  /** 'minmax' (default), 'percentile', or 'mse' (the clipped range with the least squared quantization error) */
  method?: 'minmax' | 'percentile' | 'mse';
  /** for 'percentile': the percentile of each tail kept (default 99.99) */
  percentile?: number;
  /** leave the first conv in float (its input and weights unquantized) */
  keepFirstFloat?: boolean;
  /** leave the classifier (a Gemm with constant weights) in float */
  keepLastFloat?: boolean;
  /** quantize only the Convs with these node names (default: all) */
  only?: readonly string[];
  /** tensor name → calibrated [lo, hi], when the caller has them (quant-report): no calibration run */
  ranges?: ReadonlyMap<string, [number, number]>;
  /** 'qdq' (default): Q/DQ around float Convs; 'qoperator': each as a QLinearConv on integer tensors (the same rewrite runOnnx makes, src/onnx/qdq.ts) */
  form?: 'qdq' | 'qoperator';
  /** the grids' width, 2 to 8 (default 8), in int8/uint8 containers */
  bits?: number;
}

export interface QuantizedLayer {
  conv: string;
  /** the input's scale and zero point */
  input: { scale: number; zeroPoint: number; range: [number, number] };
  output: { scale: number; zeroPoint: number; range: [number, number] };
  /** per output channel (one value when per tensor) */
  weightScales: number[];
  reluFolded: boolean;
}

const fl = Math.fround;

/** The b-bit grid of a container: uint8 [0, 2^b − 1], int8 [−2^(b−1), 2^(b−1) − 1]. */
function grid(type: 'uint8' | 'int8', bits: number): [number, number] {
  return type === 'uint8' ? [0, 2 ** bits - 1] : [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1];
}

/** bits for a grid: an integer from 2 to 8, or refused in one line. */
function checkBits(bits: number): number {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new Error(`bits must be an integer from 2 to 8 (int8/uint8 containers), got ${bits}`);
  return bits;
}

/** Scale and zero point for [lo, hi] (widened to hold 0) on the b-bit grid of uint8 or int8, as float32 values. */
export function affineParams(lo: number, hi: number, type: 'uint8' | 'int8', bits = 8): { scale: number; zeroPoint: number } {
  const [qmin, qmax] = grid(type, bits);
  const a = Math.min(lo, 0), b = Math.max(hi, 0);
  const scale = fl(b > a ? (b - a) / (qmax - qmin) : 1);
  const zeroPoint = Math.min(qmax, Math.max(qmin, roundHalfEven(qmin - a / scale)));
  return { scale, zeroPoint };
}

/** The smallest and largest of `values` (NaN is skipped). */
export function minMax(values: ArrayLike<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) { const v = values[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

/** max |v| over each of `channels` equal slices of `v` (a kernel's output channels; 1: the whole tensor). */
export function absMaxPerChannel(v: ArrayLike<number>, channels: number): Float64Array {
  const per = v.length / channels, out = new Float64Array(channels);
  for (let c = 0; c < channels; c++) for (let i = c * per; i < (c + 1) * per; i++) out[c] = Math.max(out[c], Math.abs(v[i]));
  return out;
}

/** int8 symmetric weights with one scale per each of `channels` slices (1: per tensor): s = fl(max|w|/Q) (1 for an all-zero slice), q = sat(rte(fl(w/s)), ±Q), Q = 2^(b−1) − 1 (127). */
export function quantizeWeights(w: ArrayLike<number>, channels: number, bits = 8): { q: Int8Array; scales: Float32Array } {
  const Q = 2 ** (bits - 1) - 1;
  const scales = Float32Array.from(absMaxPerChannel(w, channels), (m) => (m > 0 ? m / Q : 1));
  const per = w.length / channels, q = new Int8Array(w.length);
  for (let i = 0; i < q.length; i++) q[i] = Math.min(Q, Math.max(-Q, roundHalfEven(fl(w[i] / scales[Math.floor(i / per)]))));
  return { q, scales };
}

/** The mean squared error of quantizing then dequantizing each value over [lo, hi] in `type` (values weighted by `counts` if given). */
export function quantizationMse(values: ArrayLike<number>, lo: number, hi: number, type: 'uint8' | 'int8', counts?: ArrayLike<number>, bits = 8): number {
  const { scale, zeroPoint } = affineParams(lo, hi, type, bits);
  const [qmin, qmax] = grid(type, bits);
  let e = 0, n = 0;
  for (let i = 0; i < values.length; i++) {
    const w = counts === undefined ? 1 : counts[i];
    if (w === 0) continue;
    const q = Math.min(qmax, Math.max(qmin, roundHalfEven(fl(values[i] / scale)) + zeroPoint));
    e += w * (values[i] - (q - zeroPoint) * scale) ** 2;
    n += w;
  }
  return e / n;
}

/**
 * The range of `values` kept by the method: all of it; from the (100 − p)-th to the p-th percentile;
 * or ('mse') the clipping of [min, max] by a common factor t ∈ {1, 0.99, …, 0.2} with the least
 * quantization error over a 4096-bin histogram of the values (each bin at its centre: its width is
 * 1/16 of the finest quantization step tried, so the error is measured to well within a step).
 */
function rangeOf(values: Float32Array | Float64Array, method: 'minmax' | 'percentile' | 'mse', p: number, type: 'uint8' | 'int8', bits: number): [number, number] {
  const [lo, hi] = minMax(values);
  if (method === 'minmax' || !(hi > lo)) return [lo, hi];
  if (method === 'mse') {
    const B = 4096, width = (hi - lo) / B;
    const counts = new Float64Array(B), centres = new Float64Array(B);
    for (let i = 0; i < values.length; i++) counts[Math.min(B - 1, Math.floor((values[i] - lo) / width))]++;
    for (let b = 0; b < B; b++) centres[b] = lo + (b + 0.5) * width;
    let best: [number, number] = [lo, hi], bestErr = Infinity;
    for (let k = 100; k >= 20; k--) {
      const err = quantizationMse(centres, (lo * k) / 100, (hi * k) / 100, type, counts, bits);
      if (err < bestErr) { bestErr = err; best = [(lo * k) / 100, (hi * k) / 100]; }
    }
    return best;
  }
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((q / 100) * (sorted.length - 1))))];
  return [at(100 - p), at(p)];
}

/** What 'percentile' and 'mse' calibration may keep of a fixed-batch graph's tensors across its runs. */
const CALIBRATION_BYTES = 2 ** 30;

/**
 * `model` (float) in QDQ form: every Conv with constant weights gets int8 weights, an int32 bias and
 * quantized input and output tensors calibrated on `calib` (the graph's one input, a batch).
 */
export function quantizeOnnx(model: OnnxModel, calib: Tensor, opts: QuantizeOptions = {}): { model: OnnxModel; layers: QuantizedLayer[] } {
  const perChannel = opts.perChannel ?? true, type = opts.activations ?? 'uint8', method = opts.method ?? 'minmax', p = opts.percentile ?? 99.99;
  const bits = checkBits(opts.bits ?? 8);
  if (!(p > 50 && p <= 100)) throw new Error(`percentile must be in (50, 100], got ${p}`);
  const bad = calib.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`the calibration data holds ${calib.data[bad]} at index ${bad}; calibrate on finite images`);
  if (perChannel && model.opset < 13) throw new Error(`per-channel weights need opset 13 (DequantizeLinear's axis); the graph is opset ${model.opset}: re-export at 13 or more, or quantize per tensor`);
  const readers = readersOf(model.nodes);
  const graphOutputs = new Set(model.outputs.map((o) => o.name));
  const convs = model.nodes.filter((n) => n.opType === 'Conv' && model.initializers.has(n.inputs[1]) && (!n.inputs[2] || model.initializers.has(n.inputs[2])))
    .filter((_, i) => !(opts.keepFirstFloat === true && i === 0))
    .filter((n) => opts.only === undefined || opts.only.includes(n.name));
  if (convs.length === 0) throw new Error('the graph has no Conv with constant weights to quantize');
  // the classifier: a Gemm x·Wᵀ + b (or x·W + b) with constant W and b, plain alpha/beta and a 2-D input
  const gemms = opts.keepLastFloat === true ? [] : model.nodes.filter((n) => n.opType === 'Gemm' && model.initializers.has(n.inputs[1]) && model.initializers.get(n.inputs[1])!.dims.length === 2 &&
    (!n.inputs[2] || (model.initializers.has(n.inputs[2]) && model.initializers.get(n.inputs[2])!.dims.length === 1)) && attrInt(n, 'transA', 0) === 0 &&
    attrFloat(n, 'alpha', 1) === 1 && attrFloat(n, 'beta', 1) === 1 && !graphOutputs.has(n.inputs[0])).filter((n) => opts.only === undefined || opts.only.includes(n.name));
  // a Relu that alone reads a conv's output is folded into the quantization of its output
  const reluOf = new Map<OnnxNode, OnnxNode>();
  for (const c of convs) {
    const r = readers.get(c.outputs[0]);
    if (r?.length === 1 && r[0].opType === 'Relu' && !graphOutputs.has(c.outputs[0])) reluOf.set(c, r[0]);
  }
  // calibration: the float graph on the batch, keeping every tensor a quantized conv reads or writes
  const want = new Set([...convs.flatMap((c) => [c.inputs[0], (reluOf.get(c) ?? c).outputs[0]]), ...gemms.map((g) => g.inputs[0])]);
  const gemmOut = (g: OnnxNode) => `${g.outputs[0]}.matmul`; // x·W before the bias: what its Q sees
  const ranges = new Map<string, [number, number]>(opts.ranges ?? []);
  if (opts.ranges === undefined) {
    // A graph exported with a fixed batch B (torch.onnx.export's default) runs the images B at a time:
    // 'minmax' keeps each tensor's running min and max; 'percentile' and 'mse' need every value of a
    // tensor at once, so they are kept (estimated after the first run, refused past CALIBRATION_BYTES)
    const N = calib.shape[0], declared = model.inputs[0]?.dims?.[0];
    const B = typeof declared === 'number' && declared > 0 && declared < N ? declared : N;
    if (N % B !== 0) throw new Error(`the graph's input has a fixed batch of ${B}; calibrate on a multiple of ${B} images (got ${N}; e.g. --calib-count ${N - (N % B)})`);
    const kept = new Map<string, (Float32Array | Float64Array)[]>();
    const see = (t: string, v: Float32Array | Float64Array) => {
      if (B === N) ranges.set(t, rangeOf(v, method, p, type, bits));
      else if (method === 'minmax') { const [lo, hi] = minMax(v), r = ranges.get(t); ranges.set(t, r === undefined ? [lo, hi] : [Math.min(r[0], lo), Math.max(r[1], hi)]); }
      else kept.set(t, [...(kept.get(t) ?? []), v.slice()]);
    };
    const image = numel(calib.shape.slice(1));
    for (let n0 = 0; n0 < N; n0 += B) {
      const chunk = B === N ? calib : new Tensor(calib.data.slice(n0 * image, (n0 + B) * image), [B, ...calib.shape.slice(1)]);
      runOnnx(model, [chunk], { algorithm: 'im2col', cache: false, onNode: (_i, _n, node, _xs, ys) => {
        node.outputs.forEach((o, k) => { if (want.has(o)) see(o, ys[k].data); });
        if (gemms.includes(node)) { // the product alone: the output less the bias on each row
          const y = ys[0].data, b = node.inputs[2] ? model.initializers.get(node.inputs[2])!.data : null, F = ys[0].shape[1];
          see(gemmOut(node), b === null ? y : Float64Array.from(y, (v, i) => v - Number(b[i % F])));
        }
      } });
      if (n0 === 0 && kept.size > 0) {
        const bytes = [...kept.values()].reduce((t, [v]) => t + 8 * v.length, 0) * (N / B);
        if (bytes > CALIBRATION_BYTES) throw new Error(`'${method}' on ${N} images of a graph with a fixed batch of ${B} keeps every calibrated tensor's values: ~${(bytes / 2 ** 30).toFixed(2)} GiB, over ${CALIBRATION_BYTES / 2 ** 30} GiB; use --method minmax or fewer images (--calib-count)`);
      }
    }
    for (const [t, parts] of kept) {
      const all = new Float64Array(parts.reduce((a, v) => a + v.length, 0));
      parts.reduce((at, v) => { all.set(v, at); return at + v.length; }, 0);
      ranges.set(t, rangeOf(all, method, p, type, bits));
    }
    for (const v of model.inputs) if (want.has(v.name)) ranges.set(v.name, rangeOf(calib.data as Float32Array, method, p, type, bits));
  }
  for (const t of [...want, ...gemms.map(gemmOut)]) if (!ranges.has(t)) throw new Error(`no calibrated range for tensor '${showText(t)}'`);
  for (const [t, [lo, hi]] of ranges) if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new Error(`tensor '${showText(t)}' ranges over [${lo}, ${hi}] on the calibration data; its scale would not be finite`);

  const inits = new Map(model.initializers);
  const nodes: OnnxNode[] = [];
  const layers: QuantizedLayer[] = [];
  const scalar = (name: string, dtype: OnnxTensor['dtype'], v: number): string => {
    inits.set(name, { name, dtype, dims: [], data: dtype === 'float32' ? Float32Array.of(v) : dtype === 'uint8' ? Uint8Array.of(v) : Int8Array.of(v) });
    return name;
  };
  const node = (opType: string, name: string, inputs: string[], outputs: string[], axis?: number): OnnxNode =>
    ({ name, opType, domain: '', inputs, outputs, at: -1, attributes: new Map(axis === undefined ? [] : [['axis', { kind: 'int', value: axis }]]) });
  const quantized = new Map<string, { scale: string; zp: string; dq: string; params: { scale: number; zeroPoint: number }; range: [number, number] }>(); // float tensor → its Q/DQ
  /** Q → DQ of the float tensor `x` over `range`, its scale, zero point and nodes named from `base`, the DQ writing `dq`. */
  const addQdq = (x: string, base: string, dq: string, range: [number, number]) => {
    const params = affineParams(range[0], range[1], type, bits);
    const scale = scalar(`${base}.scale`, 'float32', params.scale), zp = scalar(`${base}.zero_point`, type, params.zeroPoint);
    nodes.push(node('QuantizeLinear', `${base}.quantize`, [x, scale, zp], [`${base}.q`]), node('DequantizeLinear', `${base}.dequantize`, [`${base}.q`, scale, zp], [dq]));
    return { scale, zp, dq, params, range };
  };
  /** Q → DQ of a float tensor, once: the DQ's output is what quantized convs read. */
  const qdqOf = (t: string, range: [number, number]): string => {
    const have = quantized.get(t);
    if (have !== undefined) return have.dq;
    const q = addQdq(t, t, `${t}.dq`, range);
    quantized.set(t, q);
    return q.dq;
  };
  /** int8 symmetric weights and their DQ (`${base}.weight_dq`): one scale per output channel along axis 0 when `perChannel`, else one. */
  const addWeights = (base: string, values: ArrayLike<number>, dims: number[], perChannel: boolean): Float32Array => {
    const F = dims[0];
    const { q, scales } = quantizeWeights(values, perChannel ? F : 1, bits);
    const wName = `${base}.weight_quantized`, wsName = `${base}.weight_scale`, wzName = `${base}.weight_zero_point`;
    inits.set(wName, { name: wName, dtype: 'int8', dims, data: q });
    inits.set(wsName, { name: wsName, dtype: 'float32', dims: perChannel ? [F] : [], data: scales });
    inits.set(wzName, { name: wzName, dtype: 'int8', dims: perChannel ? [F] : [], data: new Int8Array(perChannel ? F : 1) });
    nodes.push(node('DequantizeLinear', `${base}.weight_dequantize`, [wName, wsName, wzName], [`${base}.weight_dq`], perChannel ? 0 : undefined));
    return scales;
  };
  const dropped = new Set<OnnxNode>(reluOf.values());
  for (const n of model.nodes) {
    if (dropped.has(n)) continue;
    if (gemms.includes(n)) {
      quantizeGemm(n);
      continue;
    }
    if (!convs.includes(n)) {
      nodes.push(n);
      continue;
    }
    const relu = reluOf.get(n);
    const x = n.inputs[0], out = (relu ?? n).outputs[0];
    const xdq = qdqOf(x, ranges.get(x)!);
    const xq = quantized.get(x)!;
    const w = model.initializers.get(n.inputs[1])!;
    const F = w.dims[0];
    const base = n.name || n.outputs[0];
    const ws = addWeights(base, w.data, w.dims.slice(), perChannel);
    const convInputs = [xdq, `${base}.weight_dq`];
    if (n.inputs[2]) { // bias: int32 at s_x·s_w[c]
      const b = model.initializers.get(n.inputs[2])!;
      const bs = Float32Array.from({ length: ws.length }, (_, c) => fl(xq.params.scale * ws[c]));
      const bq = Int32Array.from(b.data, (v, f) => Math.min(2 ** 31 - 1, Math.max(-(2 ** 31), roundHalfEven(v / bs[perChannel ? f : 0]))));
      const bName = `${base}.bias_quantized`, bsName = `${base}.bias_scale`, bzName = `${base}.bias_zero_point`;
      inits.set(bName, { name: bName, dtype: 'int32', dims: b.dims.slice(), data: bq });
      inits.set(bsName, { name: bsName, dtype: 'float32', dims: perChannel ? [F] : [], data: bs });
      inits.set(bzName, { name: bzName, dtype: 'int32', dims: perChannel ? [F] : [], data: new Int32Array(perChannel ? F : 1) });
      nodes.push(node('DequantizeLinear', `${base}.bias_dequantize`, [bName, bsName, bzName], [`${base}.bias_dq`], perChannel ? 0 : undefined));
      convInputs.push(`${base}.bias_dq`);
    }
    const y = `${out}.float`; // the conv's float output, quantized at once; consumers read its DQ under the old name
    nodes.push({ ...n, inputs: convInputs, outputs: [y] });
    const yq = addQdq(y, out, out, ranges.get(out)!);
    quantized.set(out, yq);
    layers.push({
      conv: n.name, input: { ...xq.params, range: xq.range }, output: { ...yq.params, range: yq.range }, weightScales: Array.from(ws), reluFolded: relu !== undefined,
    });
  }
  // y = x·Wᵀ + b as DQ(x) → MatMul(DQ(W')) → Q → DQ → Add(b): W' = Wᵀ (K, N) int8 per tensor (QLinearMatMul
  // takes one weight scale here: onnxruntime's per-column form is not what its QDQ pass emits for MatMul)
  function quantizeGemm(n: OnnxNode): void {
    const x = n.inputs[0], out = n.outputs[0];
    const xdq = qdqOf(x, ranges.get(x)!);
    const xq = quantized.get(x)!;
    const w = model.initializers.get(n.inputs[1])!;
    const transB = attrInt(n, 'transB', 0) === 1;
    const [K, N] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
    const wt = transB ? Float64Array.from({ length: K * N }, (_, i) => Number(w.data[(i % N) * K + Math.floor(i / N)])) : w.data;
    const base = n.name || out;
    const ws = addWeights(base, wt, [K, N], false);
    const m = gemmOut(n);
    nodes.push({ name: `${base}.matmul`, opType: 'MatMul', domain: '', inputs: [xdq, `${base}.weight_dq`], outputs: [`${m}.float`], at: -1, attributes: new Map() });
    const yq = addQdq(`${m}.float`, m, n.inputs[2] ? m : out, ranges.get(m)!);
    if (n.inputs[2]) nodes.push({ name: `${base}.bias_add`, opType: 'Add', domain: '', inputs: [m, n.inputs[2]], outputs: [out], at: -1, attributes: new Map() });
    layers.push({ conv: n.name, input: { ...xq.params, range: xq.range }, output: { ...yq.params, range: yq.range }, weightScales: Array.from(ws), reluFolded: false });
  }

  // nodes stay in the graph's order: each Q/DQ is placed right before the conv that reads it or right
  // after the conv that writes it, so producers still precede readers
  const used = new Set(nodes.flatMap((x) => x.inputs));
  for (const k of [...inits.keys()]) if (!used.has(k) && !graphOutputs.has(k)) inits.delete(k);
  const qdq = { ...model, nodes, initializers: inits };
  return { model: opts.form === 'qoperator' ? integerQdq(qdq) : qdq, layers };
}
