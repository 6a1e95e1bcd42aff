// The evaluator against onnxruntime-web on random single-op graphs: each op's attributes drawn across
// the ranges Operators.md allows (auto_pad, dilations, asymmetric pads, ceil_mode, negative axes and
// steps, broadcasting, every Resize mode, the integer ops), 40 graphs an op family from a fixed seed.
// The generators stay inside what both engines define, so every graph is compared: the corners where
// onnxruntime-web 1.30 departs from the specification (SAME padding with a dilation, a negative SAME
// padding) are pinned by hand in ops.test.ts instead, nearest Resize takes dyadic scales (see there),
// and QLinearConv/QLinearMatMul, whose type mixes onnxruntime-web partly lacks, are left to
// quantize.test.ts.
//
// Tolerances. Inputs and weights are multiples of 1/64 in [−2, 2] (quantized inputs: integers), so
// every product is exact in float32 and every sum of fewer than 2¹¹ of them is too (|Σ| ≤ 2¹⁰ at a
// resolution of 2⁻¹², 23 bits): Conv, ConvTranspose, Gemm, MatMul, the pools' sums and the shape ops
// must agree bit for bit, whatever order either engine adds in. What rounds: one division (the
// pools' means, Div), one float32 rounding of a float64 result here against onnxruntime's float32
// operations (Resize's interpolation weights and coordinates, HardSigmoid's slope, the normalisations'
// means, variances and square roots), and exp/tanh/sigmoid/erf/log and what is built of them (GELU,
// Mish, Softplus, ELU, Swish), whose float32 implementations in onnxruntime are within a few ulp. The bound
// is 2⁻¹⁸·max(1, |ref|) per element (32 ulp of the largest magnitude), far under what a wrong op
// moves (a window, an axis, a rounding mode: O(|ref|)). The integer ops (QuantizeLinear round-half-even and saturation,
// ConvInteger, MatMulInteger) must agree exactly.
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { readOnnx } from '../../src/io/onnx_read.js';
import { runOnnx } from '../../src/onnx/run.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/rng.js';
import { FLOAT, INT64, INT8, type NodeSpec, UINT8, f32, floatAttr, i64, intAttr, intsAttr, model, strAttr, tensor, valueInfo } from './build.js';

ort.env.wasm.numThreads = 1;

type Init = ReturnType<typeof tensor>;
interface Case { nodes: NodeSpec[]; inits: Init[]; x: number[]; opset?: number; exact?: boolean; scale?: number; outType?: number; looser?: number }

function generators(r: () => number): Record<string, () => Case> {
  const ri = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const vals = (n: number) => Array.from({ length: n }, () => Math.round((r() * 4 - 2) * 64) / 64);
  const size = (d: number[]) => d.reduce((a, b) => a * b, 1);
  const w = (name: string, dims: number[]) => tensor(name, dims, FLOAT, f32(...vals(size(dims))));
  // a 2-D window op's attributes (SAME only undilated and with stride ≤ kernel: see the header) and
  // an input at least as large as the dilated window
  const window = (k: number[], pool: boolean): { attrs: ReturnType<typeof intAttr>[]; hw: () => number[] } => {
    const a = [intsAttr('kernel_shape', k)];
    const s = [ri(1, 3), ri(1, 3)], d = r() < 0.3 ? [ri(1, 2), ri(1, 2)] : [1, 1];
    const hw = () => [0, 1].map((i) => (k[i] - 1) * d[i] + 1 + ri(0, 5));
    const same = d[0] === 1 && d[1] === 1 && s[0] <= k[0] && s[1] <= k[1] && r() < 0.3;
    a.push(intsAttr('strides', s));
    if (d[0] > 1 || d[1] > 1) a.push(intsAttr('dilations', d));
    if (same) a.push(strAttr('auto_pad', pick(['SAME_UPPER', 'SAME_LOWER'])));
    else if (r() < 0.7) a.push(intsAttr('pads', [0, 1, 0, 1].map((_, i) => ri(0, pool ? k[i % 2] - 1 : 2))));
    return { attrs: a, hw };
  };
  return {
    Conv: () => {
      const g = ri(1, 3), C = g * ri(1, 2), F = g * ri(1, 2), k = [ri(1, 3), ri(1, 3)];
      const bias = r() < 0.5, win = window(k, false);
      return { nodes: [{ op: 'Conv', inputs: bias ? ['x', 'w', 'b'] : ['x', 'w'], outputs: ['y'], attrs: [...win.attrs, intAttr('group', g)] }],
        inits: [w('w', [F, C / g, ...k]), ...(bias ? [w('b', [F])] : [])], x: [ri(1, 2), C, ...win.hw()] };
    },
    ConvTranspose: () => {
      const g = ri(1, 2), C = g * ri(1, 2), F = g * ri(1, 2), k = [ri(1, 3), ri(1, 3)], s = [ri(1, 3), ri(1, 3)];
      const attrs = [intsAttr('kernel_shape', k), intsAttr('strides', s), intAttr('group', g)];
      // padding on one side of an axis at most k − 1 (the output keeps at least one row)
      if (r() < 0.5) attrs.push(intsAttr('pads', [0, 1, 0, 1].map((_, i) => (i < 2 ? ri(0, k[i % 2] - 1) : 0))));
      if (r() < 0.5) attrs.push(intsAttr('output_padding', s.map((v) => ri(0, v - 1))));
      return { nodes: [{ op: 'ConvTranspose', inputs: ['x', 'w'], outputs: ['y'], attrs }], inits: [w('w', [C, F / g, ...k])], x: [1, C, ri(1, 5), ri(1, 5)] };
    },
    Pool: () => {
      const op = pick(['MaxPool', 'AveragePool']), k = [ri(1, 3), ri(1, 3)];
      const win = window(k, true), attrs = win.attrs;
      if (r() < 0.4) attrs.push(intAttr('ceil_mode', 1));
      if (op === 'AveragePool' && r() < 0.5) attrs.push(intAttr('count_include_pad', 1));
      // AveragePool has dilations from opset 19
      return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs }], inits: [], x: [ri(1, 2), ri(1, 3), ...win.hw()], opset: op === 'AveragePool' ? 19 : 17 };
    },
    Resize: () => {
      const mode = pick(['nearest', 'linear']), attrs = [strAttr('mode', mode), strAttr('coordinate_transformation_mode', pick(['half_pixel', 'asymmetric', 'align_corners', 'pytorch_half_pixel']))];
      if (mode === 'nearest') attrs.push(strAttr('nearest_mode', pick(['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'])));
      // nearest: dyadic scales only. Its source index is ⌊(o + ½)/scale − ½⌋ (or a rounding of it),
      // which we compute in float64 from the float32 scale and onnxruntime in float32: for a scale of
      // 0.6 (0.60000002 as float32) and o = 1, 1.9999999 against 2.0, a different element. Linear
      // takes any scale (the two coordinates differ by an ulp, the weights by as little).
      const bySizes = mode === 'linear' && r() < 0.5, C = ri(1, 2);
      const inits = bySizes ? [tensor('sz', [4], INT64, i64(1, C, ri(1, 10), ri(1, 10)))] : [tensor('sc', [4], FLOAT, f32(1, 1, pick([0.5, 1.5, 2, 3, 0.75]), pick(mode === 'linear' ? [0.5, 1.5, 2, 0.6, 1.7] : [0.5, 1.5, 2, 0.25, 1.25])))];
      return { nodes: [{ op: 'Resize', inputs: bySizes ? ['x', '', '', 'sz'] : ['x', '', 'sc'], outputs: ['y'], attrs }], inits, x: [1, C, ri(1, 6), ri(1, 6)], opset: 13 };
    },
    Pad: () => {
      const mode = pick(['constant', 'reflect', 'edge']), x = [1, ri(1, 2), ri(2, 5), ri(2, 5)];
      // a negative pad crops first; reflect then takes at most kept − 1 on a side, of at least 2 kept
      // (onnxruntime's limits; NumPy reflects further), edge needs one kept element
      const axis = (n: number): [number, number] => {
        for (;;) {
          const b = ri(-1, 3), e = ri(-1, 3), kept = n - Math.max(0, -b) - Math.max(0, -e);
          if (mode === 'constant' || (mode === 'edge' && kept >= 1) || (kept >= 2 && b <= kept - 1 && e <= kept - 1)) return [b, e];
        }
      };
      const [h, w] = [axis(x[2]), axis(x[3])];
      const pads = [0, 0, h[0], w[0], 0, 0, h[1], w[1]];
      return { nodes: [{ op: 'Pad', inputs: ['x', 'p'], outputs: ['y'], attrs: [strAttr('mode', mode)] }], inits: [tensor('p', [8], INT64, i64(...pads))], x };
    },
    Slice: () => {
      const x = [ri(1, 3), ri(1, 4), ri(1, 6)], k = ri(1, 3), axes = [0, 1, 2].sort(() => r() - 0.5).slice(0, k);
      const ints = (v: number[]) => i64(...v);
      return { nodes: [{ op: 'Slice', inputs: ['x', 's', 'e', 'a', 't'], outputs: ['y'] }], x, inits: [
        tensor('s', [k], INT64, ints(axes.map(() => pick([0, 1, -1, -2, 3, 100, -100])))), tensor('e', [k], INT64, ints(axes.map(() => pick([0, 1, -1, 2, 5, 100, -100, 2 ** 40, -(2 ** 40)])))),
        tensor('a', [k], INT64, ints(axes.map((a) => (r() < 0.3 ? a - 3 : a)))), tensor('t', [k], INT64, ints(axes.map(() => pick([1, 2, -1, -2, 3]))))] };
    },
    Gemm: () => {
      const M = ri(1, 4), K = ri(1, 4), N = ri(1, 4), tA = ri(0, 1), tB = ri(0, 1), attrs = [intAttr('transA', tA), intAttr('transB', tB)];
      if (r() < 0.5) attrs.push(floatAttr('alpha', pick([0.5, 2, -1])));
      if (r() < 0.5) attrs.push(floatAttr('beta', pick([0.5, 2, 0])));
      const c = pick([[M, N], [N], [1, N], [M, 1], [1], []]);
      return { nodes: [{ op: 'Gemm', inputs: ['x', 'b', 'c'], outputs: ['y'], attrs }], inits: [w('b', tB ? [N, K] : [K, N]), w('c', c)], x: tA ? [K, M] : [M, K] };
    },
    Shapes: () => {
      const x = [ri(1, 3), ri(1, 3), ri(1, 4)];
      const op = pick(['Flatten', 'Transpose', 'Softmax', 'ReduceMean', 'Concat', 'Gather', 'Expand']);
      if (op === 'Flatten') return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs: [intAttr('axis', ri(-3, 3))] }], inits: [], x };
      if (op === 'Transpose') return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs: [intsAttr('perm', [0, 1, 2].sort(() => r() - 0.5))] }], inits: [], x };
      if (op === 'Softmax') return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs: [intAttr('axis', ri(-3, 2))] }], inits: [], x, opset: pick([11, 13]) };
      if (op === 'ReduceMean') return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs: [intsAttr('axes', [0, 1, 2].filter(() => r() < 0.5).map((a) => (r() < 0.3 ? a - 3 : a))), intAttr('keepdims', ri(0, 1))] }], inits: [], x, opset: 13 };
      if (op === 'Concat') { const axis = ri(-3, 2), o = x.slice(); o[(axis + 3) % 3] = ri(1, 3); return { nodes: [{ op, inputs: ['x', 'b', 'x'], outputs: ['y'], attrs: [intAttr('axis', axis)] }], inits: [w('b', o)], x }; }
      if (op === 'Gather') { const axis = ri(-3, 2), n = x[(axis + 3) % 3], idims = pick([[], [ri(1, 3)], [2, 2]]); return { nodes: [{ op, inputs: ['x', 'i'], outputs: ['y'], attrs: [intAttr('axis', axis)] }], inits: [tensor('i', idims, INT64, i64(...Array.from({ length: size(idims) }, () => ri(-n, n - 1))))], x }; }
      const to = [pick([1, 2]), ...x.map((d) => pick([1, d]))].slice(ri(0, 2));
      return { nodes: [{ op, inputs: ['x', 's'], outputs: ['y'] }], inits: [tensor('s', [to.length], INT64, i64(...to))], x: x.map((d) => (r() < 0.3 ? 1 : d)) };
    },
    Elementwise: () => {
      const x = [ri(1, 2), ri(1, 3), ri(1, 4)], b = x.map((d) => pick([d, 1])).slice(ri(0, 2));
      const op = pick(['Add', 'Sub', 'Mul', 'Div', 'MatMul', 'Clip', 'HardSigmoid', 'LeakyRelu', 'HardSwish', 'Sigmoid', 'Relu', 'Tanh', 'Exp', 'Neg', 'Floor', 'Ceil', 'Where']);
      if (op === 'MatMul') return { nodes: [{ op, inputs: ['x', 'b'], outputs: ['y'] }], inits: [w('b', [...(r() < 0.5 ? [] : [pick([1, x[0]])]), x[2], ri(1, 3)])], x }; // x: batch x[0] of x[1]×x[2]
      if (op === 'Clip') return { nodes: [{ op, inputs: ['x', 'lo', 'hi'], outputs: ['y'] }], inits: [w('lo', []), w('hi', [])], x };
      if (op === 'Where') return { nodes: [{ op: pick(['Less', 'Greater', 'Equal']), inputs: ['x', 'b'], outputs: ['c'] }, { op, inputs: ['c', 'x', 'b'], outputs: ['y'] }], inits: [tensor('b', b, FLOAT, f32(...vals(size(b)).map((v) => Math.round(v * 4) / 4)))], x };
      if (['Add', 'Sub', 'Mul', 'Div'].includes(op)) return { nodes: [{ op, inputs: r() < 0.5 ? ['x', 'b'] : ['b', 'x'], outputs: ['y'] }], inits: [tensor('b', b, FLOAT, f32(...vals(size(b)).map((v) => (op === 'Div' && v === 0 ? 0.5 : v))))], x };
      const attrs = op === 'HardSigmoid' ? [floatAttr('alpha', pick([0.2, 0.5])), floatAttr('beta', pick([0.5, 0.25]))] : op === 'LeakyRelu' ? [floatAttr('alpha', pick([0.125, 2]))] : [];
      return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs }], inits: [], x };
    },
    Split: () => {
      // k parts of ⌈n/k⌉ with a smaller, non-empty last one (k = 1 always is)
      const x = [ri(1, 2), ri(2, 7), ri(1, 3)];
      const k = pick([1, 2, 3].filter((v) => v === 1 || (v - 1) * Math.ceil(x[1] / v) < x[1]));
      return { nodes: [{ op: 'Split', inputs: ['x'], outputs: Array.from({ length: k }, (_, i) => `y${i}`), attrs: [intAttr('axis', -2), intAttr('num_outputs', k)] }], inits: [], x, opset: 18 };
    },
    Quantize: () => {
      const x = [1, ri(1, 3), ri(1, 3), ri(1, 3)], t = pick([UINT8, INT8]), perAxis = r() < 0.4, n = perAxis ? x[1] : 1, dims = perAxis ? [n] : [];
      const zp = Uint8Array.from(Array.from({ length: n }, () => (t === UINT8 ? ri(0, 255) : ri(-128, 127) & 255)));
      const s = tensor('s', dims, FLOAT, f32(...Array.from({ length: n }, () => pick([0.5, 0.25, 1 / 3, 0.1, 2]))));
      const attrs = perAxis ? [intAttr('axis', 1)] : [];
      return { nodes: [{ op: 'QuantizeLinear', inputs: ['x', 's', 'z'], outputs: ['q'], attrs }, { op: 'DequantizeLinear', inputs: ['q', 's', 'z'], outputs: ['y'], attrs }],
        inits: [s, tensor('z', dims, t, zp)], x, exact: true, scale: 40 };
    },
    Integer: () => {
      const tb = pick([UINT8, INT8]), q = (n: number) => Uint8Array.from(Array.from({ length: n }, () => (tb === UINT8 ? ri(0, 255) : ri(-128, 127) & 255)));
      const quant = { op: 'QuantizeLinear', inputs: ['x', 'as', 'za'], outputs: ['q'] };
      const front = [tensor('as', [], FLOAT, new Uint8Array(Float32Array.of(0.05).buffer)), tensor('za', [], UINT8, Uint8Array.of(ri(0, 255))), tensor('zb', [], tb, q(1))];
      const cast = { op: 'Cast', inputs: ['i'], outputs: ['y'], attrs: [intAttr('to', FLOAT)] };
      if (r() < 0.5) {
        const C = ri(1, 3), F = ri(1, 3), k = ri(1, 3);
        return { nodes: [quant, { op: 'ConvInteger', inputs: ['q', 'w', 'za', 'zb'], outputs: ['i'], attrs: [intsAttr('kernel_shape', [k, k])] }, cast], inits: [...front, tensor('w', [F, C, k, k], tb, q(F * C * k * k))], x: [1, C, ri(3, 5), ri(3, 5)], exact: true, scale: 8 };
      }
      const K = ri(1, 5), N = ri(1, 4);
      return { nodes: [quant, { op: 'MatMulInteger', inputs: ['q', 'b', 'za', 'zb'], outputs: ['i'] }, cast], inits: [...front, tensor('b', [K, N], tb, q(K * N))], x: [ri(1, 4), K], exact: true, scale: 8 };
    },
    // the families below came after the ones above (appended, so the earlier families draw the same graphs)
    Activations: () => {
      const x = [ri(1, 2), ri(1, 3), ri(1, 3), ri(1, 3)];
      const op = pick(['Erf', 'Gelu', 'Softplus', 'Softsign', 'Mish', 'Elu', 'Selu', 'Abs', 'Reciprocal', 'Log', 'PRelu']);
      if (op === 'PRelu') return { nodes: [{ op, inputs: ['x', 'a'], outputs: ['y'] }], inits: [w('a', pick([[x[1], 1, 1], [1], [x[3]], [x[2], x[3]]]))], x };
      const attrs = op === 'Gelu' ? [strAttr('approximate', pick(['none', 'tanh']))] : op === 'Elu' ? [floatAttr('alpha', pick([1, 0.5, 2]))]
        : op === 'Selu' && r() < 0.5 ? [floatAttr('alpha', 1.5), floatAttr('gamma', 0.75)] : [];
      // Gelu is an op from opset 20, Mish from 18
      return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs }], inits: [], x, opset: op === 'Gelu' ? 20 : op === 'Mish' ? 18 : 17, scale: op === 'Erf' || op === 'Gelu' ? 2 : 1 };
    },
    Variadic: () => {
      const x = [ri(1, 2), ri(1, 3), ri(1, 4)], k = ri(0, 2);
      const others = Array.from({ length: k }, () => x.map((d) => pick([d, 1])).slice(ri(0, 2)));
      const op = pick(['Max', 'Min', 'Sum', 'Mean']);
      return { nodes: [{ op, inputs: ['x', ...others.map((_, i) => `b${i}`)], outputs: ['y'] }], inits: others.map((d, i) => w(`b${i}`, d)), x };
    },
    Reductions: () => {
      const x = [ri(1, 3), ri(1, 3), ri(1, 4)], keep = ri(0, 1);
      const op = pick(['ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceL2', 'ReduceSumSquare', 'ReduceMean']);
      const axes = [0, 1, 2].filter(() => r() < 0.5).map((a) => (r() < 0.3 ? a - 3 : a));
      // axes: an attribute until opset 18 (ReduceSum: 13), an input from then on
      const opset = pick([13, 18]), asInput = opset >= (op === 'ReduceSum' ? 13 : 18);
      if (!asInput) return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs: [intsAttr('axes', axes), intAttr('keepdims', keep)] }], inits: [], x, opset };
      return { nodes: [{ op, inputs: ['x', 'axes'], outputs: ['y'], attrs: [intAttr('keepdims', keep)] }], inits: [tensor('axes', [axes.length], INT64, i64(...axes))], x, opset };
    },
    // ε of 0.1 or 0.5: onnxruntime's float32 variance is off by ~u·E[x²] ≤ 2.4e-7 (E[x²] − μ², which
    // cancels: 3e-6 relative on two values 1/64 apart at the default ε of 10⁻⁵, measured), and against
    // σ² + ε ≥ 0.1 that moves y by ≤ 1.2e-6·|y|, inside the bound. The default ε runs against PyTorch
    // in the fixtures (run.test.ts), whose values are not that close.
    Normalization: () => {
      if (r() < 0.4) {
        const C = ri(1, 3);
        return { nodes: [{ op: 'InstanceNormalization', inputs: ['x', 's', 'b'], outputs: ['y'], attrs: [floatAttr('epsilon', pick([0.1, 0.5]))] }], inits: [w('s', [C]), w('b', [C])], x: [ri(1, 2), C, ri(1, 4), ri(1, 4)] };
      }
      const x = [ri(1, 2), ri(1, 3), ri(1, 4)], axis = ri(-3, 2), inner = x.slice((axis + 3) % 3);
      const within = () => inner.map((d) => pick([d, 1])).slice(ri(0, inner.length - 1));
      const bias = r() < 0.7;
      return { nodes: [{ op: 'LayerNormalization', inputs: bias ? ['x', 's', 'b'] : ['x', 's'], outputs: ['y'], attrs: [intAttr('axis', axis), floatAttr('epsilon', pick([0.1, 0.5]))] }],
        inits: [w('s', within()), ...(bias ? [w('b', within())] : [])], x };
    },
    Classic: () => {
      const x = [ri(1, 2), ri(1, 5), ri(1, 3), ri(1, 3)], op = pick(['LogSoftmax', 'ArgMax', 'ArgMin', 'Tile', 'LRN']);
      if (op === 'LogSoftmax') return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs: [intAttr('axis', ri(-4, 3))] }], inits: [], x, opset: pick([11, 13]) };
      if (op === 'Tile') return { nodes: [{ op, inputs: ['x', 'r'], outputs: ['y'] }], inits: [tensor('r', [4], INT64, i64(...x.map(() => ri(0, 3))))], x, exact: true };
      if (op === 'LRN') { // odd sizes: onnxruntime refuses even ones (the specification's window for those is pinned in ops.test.ts)
        return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs: [intAttr('size', pick([1, 3, 5])), floatAttr('alpha', pick([1e-4, 0.5])), floatAttr('beta', pick([0.75, 0.5])), floatAttr('bias', pick([1, 2]))] }], inits: [], x };
      }
      // arg max/min of ⌊x⌋ (five values), so that ties are common: the first index, or the last
      return { nodes: [{ op: 'Floor', inputs: ['x'], outputs: ['f'] }, { op, inputs: ['f'], outputs: ['y'], attrs: [intAttr('axis', ri(-4, 3)), intAttr('keepdims', ri(0, 1)), intAttr('select_last_index', ri(0, 1))] }],
        inits: [], x, exact: true, outType: INT64 };
    },
    Window1d: () => { // (N, C, L): one-element kernel_shape, strides, dilations, two pads
      const op = pick(['Conv', 'MaxPool', 'AveragePool', 'ConvTranspose']), k = ri(1, 3), s1 = ri(1, 3), C = ri(1, 3);
      const attrs = [intsAttr('kernel_shape', [k]), intsAttr('strides', [s1])];
      if (op === 'ConvTranspose') return { nodes: [{ op, inputs: ['x', 'w'], outputs: ['y'], attrs: [...attrs, intsAttr('pads', [ri(0, k - 1), 0])] }], inits: [w('w', [C, ri(1, 2), k])], x: [1, C, ri(1, 6)] };
      const d = op === 'AveragePool' ? 1 : ri(1, 2);
      if (d > 1) attrs.push(intsAttr('dilations', [d]));
      attrs.push(intsAttr('pads', [ri(0, op === 'Conv' ? 2 : k - 1), ri(0, op === 'Conv' ? 2 : k - 1)]));
      if (op !== 'Conv' && r() < 0.4) attrs.push(intAttr('ceil_mode', 1));
      const x = [ri(1, 2), C, (k - 1) * d + 1 + ri(0, 5)];
      const F = ri(1, 3);
      if (op === 'Conv') return { nodes: [{ op, inputs: ['x', 'w', 'b'], outputs: ['y'], attrs }], inits: [w('w', [F, C, k]), w('b', [F])], x };
      return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs }], inits: [], x };
    },
    Logic: () => { // masks and integer arithmetic as exporters write them, each result cast to float
      const x = [ri(1, 2), ri(1, 3), ri(1, 4)], b = x.map((d) => pick([d, 1])).slice(ri(0, 2));
      const toFloat = (from: string) => ({ op: 'Cast', inputs: [from], outputs: ['y'], attrs: [intAttr('to', FLOAT)] });
      const kind = pick(['compare', 'round', 'unary', 'special', 'fmod', 'mod']);
      if (kind === 'compare') {
        const nodes: NodeSpec[] = [{ op: pick(['GreaterOrEqual', 'LessOrEqual']), inputs: ['x', 'b'], outputs: ['p'] }, { op: 'Less', inputs: ['x', 'c'], outputs: ['q'] },
          { op: pick(['And', 'Or', 'Xor']), inputs: ['p', 'q'], outputs: ['l'] }];
        const not = r() < 0.5;
        if (not) nodes.push({ op: 'Not', inputs: ['l'], outputs: ['n'] });
        return { nodes: [...nodes, toFloat(not ? 'n' : 'l')], inits: [w('b', b), w('c', [])], x };
      }
      // halves (x·32 on the 1/64 grid) meet round-half-to-even's ties
      if (kind === 'round') return { nodes: [{ op: 'Round', inputs: ['x'], outputs: ['y'] }], inits: [], x, scale: 32, exact: true };
      if (kind === 'unary') return { nodes: [{ op: pick(['Sign', 'Sin', 'Cos']), inputs: ['x'], outputs: ['y'] }], inits: [], x };
      if (kind === 'special') { // NaN and ±∞ made in the graph: log of a negative, 1/±0
        const test = pick(['IsNaN', 'IsInf']);
        const attrs = test === 'IsInf' ? [intAttr('detect_negative', ri(0, 1)), intAttr('detect_positive', ri(0, 1))] : [];
        return { nodes: [{ op: pick(['Log', 'Reciprocal']), inputs: ['x'], outputs: ['s'] }, { op: test, inputs: ['s'], outputs: ['t'], attrs }, toFloat('t')], inits: [], x, scale: 0.5 };
      }
      const divisor = vals(size(b)).map((v) => (v === 0 ? 0.75 : v));
      if (kind === 'fmod') return { nodes: [{ op: 'Mod', inputs: ['x', 'b'], outputs: ['y'], attrs: [intAttr('fmod', 1)] }], inits: [tensor('b', b, FLOAT, f32(...divisor))], x };
      return { nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['i'], attrs: [intAttr('to', INT64)] }, { op: 'Mod', inputs: ['i', 'b'], outputs: ['m'] }, toFloat('m')],
        inits: [tensor('b', b, INT64, i64(...divisor.map((v) => (Math.trunc(v * 4) || 3))))], x, scale: 8, exact: true };
    },
    // Keys' cubic with PyTorch's a = −0.75 or TensorFlow's −0.5, edge taps clamped or excluded. Bound 4×
    // the others': onnxruntime's float32 coordinate (≤ 16, ~1e-6 off) moves each weight by |k′|·δ ≤ 2e-6
    // (|k′| ≤ 2), over 4 taps an axis of |x| ≤ 2 and both axes: ≤ 2⁻¹⁶·max(1, |ref|)
    ResizeCubic: () => {
      const attrs = [strAttr('mode', 'cubic'), strAttr('coordinate_transformation_mode', pick(['half_pixel', 'asymmetric', 'align_corners', 'pytorch_half_pixel']))];
      if (r() < 0.5) attrs.push(floatAttr('cubic_coeff_a', pick([-0.75, -0.5])));
      if (r() < 0.4) attrs.push(intAttr('exclude_outside', 1));
      const C = ri(1, 2), bySizes = r() < 0.5;
      const inits = bySizes ? [tensor('sz', [4], INT64, i64(1, C, ri(1, 10), ri(1, 10)))] : [tensor('sc', [4], FLOAT, f32(1, 1, pick([0.5, 1.5, 2, 3]), pick([0.5, 1.5, 2, 0.6, 1.7])))];
      return { nodes: [{ op: 'Resize', inputs: bySizes ? ['x', '', '', 'sz'] : ['x', '', 'sc'], outputs: ['y'], attrs }], inits, x: [1, C, ri(1, 6), ri(1, 6)], opset: 13, looser: 4 };
    },
    ConvTransposeShape: () => { // the output's size asked for (output_shape) or SAME (n·s): the pads derived
      const k = [ri(1, 3), ri(1, 3)], s2 = [ri(1, 3), ri(1, 3)], C = ri(1, 2), F = ri(1, 2), hw = [ri(1, 4), ri(1, 4)];
      const full = hw.map((n, i) => s2[i] * (n - 1) + k[i]);
      const attrs = [intsAttr('kernel_shape', k), intsAttr('strides', s2)];
      const how = pick(['output_shape', 'SAME_UPPER', 'SAME_LOWER', 'VALID']);
      if (how === 'output_shape') attrs.push(intsAttr('output_shape', full.map((f) => ri(Math.max(1, f - 3), f))));
      else if (how === 'VALID' || hw.every((n, i) => n * s2[i] <= full[i])) attrs.push(strAttr('auto_pad', how));
      return { nodes: [{ op: 'ConvTranspose', inputs: ['x', 'w'], outputs: ['y'], attrs }], inits: [w('w', [C, F, ...k])], x: [1, C, ...hw] };
    },
    Window3d: () => { // (N, C, D, H, W): Conv, MaxPool, AveragePool with three-value attributes
      const op = pick(['Conv', 'MaxPool', 'AveragePool']), k = [ri(1, 3), ri(1, 3), ri(1, 3)], st = [ri(1, 2), ri(1, 2), ri(1, 2)];
      const d = op === 'AveragePool' ? [1, 1, 1] : [ri(1, 2), 1, ri(1, 2)];
      const attrs = [intsAttr('kernel_shape', k), intsAttr('strides', st)];
      if (d.some((v) => v > 1)) attrs.push(intsAttr('dilations', d));
      const pads = [0, 1, 2, 0, 1, 2].map((i) => ri(0, op === 'Conv' ? 1 : k[i] - 1));
      if (op === 'Conv' && d.every((v) => v === 1) && st.every((v, i) => v <= k[i]) && r() < 0.3) attrs.push(strAttr('auto_pad', pick(['SAME_UPPER', 'SAME_LOWER'])));
      else attrs.push(intsAttr('pads', pads));
      if (op !== 'Conv' && r() < 0.4) attrs.push(intAttr('ceil_mode', 1));
      if (op === 'AveragePool' && r() < 0.5) attrs.push(intAttr('count_include_pad', 1));
      const g = op === 'Conv' ? ri(1, 2) : 1, C = g * ri(1, 2), x = [ri(1, 2), C, ...k.map((kk, i) => (kk - 1) * d[i] + 1 + ri(0, 3))];
      if (op !== 'Conv') return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs }], inits: [], x };
      const F = g * ri(1, 2);
      return { nodes: [{ op, inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: [...attrs, intAttr('group', g)] }], inits: [w('w', [F, C / g, ...k]), w('b', [F])], x };
    },
    ConvTranspose3d: () => { // (N, C, D, H, W): pads, output_padding, output_shape or SAME on three axes
      const k = [ri(1, 3), ri(1, 2), ri(1, 3)], st = [ri(1, 3), ri(1, 2), ri(1, 2)], g = ri(1, 2), C = g * ri(1, 2), F = g * ri(1, 2), dhw = [ri(1, 3), ri(1, 3), ri(1, 3)];
      const attrs = [intsAttr('kernel_shape', k), intsAttr('strides', st), intAttr('group', g)];
      const full = dhw.map((n, i) => st[i] * (n - 1) + k[i]);
      const how = pick(['pads', 'output_shape', 'SAME']);
      if (how === 'pads') {
        attrs.push(intsAttr('pads', [0, 1, 2, 0, 1, 2].map((i, j) => (j < 3 ? ri(0, k[i] - 1) : 0))));
        if (r() < 0.5) attrs.push(intsAttr('output_padding', st.map((v) => ri(0, v - 1))));
      } else if (how === 'output_shape') attrs.push(intsAttr('output_shape', full.map((f) => ri(Math.max(1, f - 2), f))));
      else if (dhw.every((n, i) => n * st[i] <= full[i])) attrs.push(strAttr('auto_pad', pick(['SAME_UPPER', 'SAME_LOWER'])));
      return { nodes: [{ op: 'ConvTranspose', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs }], inits: [w('w', [C, F / g, ...k]), w('b', [F])], x: [1, C, ...dhw] };
    },
    DepthSpace: () => {
      const b = ri(1, 3), N = ri(1, 2);
      if (r() < 0.5) return { nodes: [{ op: 'DepthToSpace', inputs: ['x'], outputs: ['y'], attrs: [intAttr('blocksize', b), strAttr('mode', pick(['DCR', 'CRD']))] }], inits: [], x: [N, b * b * ri(1, 2), ri(1, 3), ri(1, 3)] };
      return { nodes: [{ op: 'SpaceToDepth', inputs: ['x'], outputs: ['y'], attrs: [intAttr('blocksize', b)] }], inits: [], x: [N, ri(1, 2), b * ri(1, 3), b * ri(1, 3)] };
    },
    // opset 26 (IR 13): activations whose version 22 changed only their types; Swish (x·σ(αx), new at
    // 24) at 24, the only opset where onnxruntime-web 1.30 runs it (it inlines the function body, which
    // is declared for 24, and has no kernel of its own)
    Opset26: () => {
      const x = [ri(1, 2), ri(1, 3), ri(1, 3), ri(1, 3)];
      const op = pick(['Swish', 'Swish', 'HardSwish', 'Softplus', 'Mish', 'Elu', 'HardSigmoid']);
      const attrs = op === 'Swish' ? (r() < 0.25 ? [] : [floatAttr('alpha', pick([1, 0.5, 1.702]))]) : [];
      return { nodes: [{ op, inputs: ['x'], outputs: ['y'], attrs }], inits: [], x, opset: op === 'Swish' ? 24 : 26 };
    },
  };
}

// 40 graphs a family from one seed in the suite; REPVGG_DIFF_CASES and REPVGG_DIFF_SEED run more, or
// others, by hand (the corners in ops.test.ts came from runs of thousands)
const CASES_PER_FAMILY = Number(process.env.REPVGG_DIFF_CASES ?? 40);
const SEED = Number(process.env.REPVGG_DIFF_SEED ?? 20261206);

describe('runOnnx against onnxruntime-web on random single-op graphs', () => {
  const g = new Rng(SEED), r = () => g.next(); // the engine's own generator: a fixed sequence from a fixed seed
  const gens = generators(r);
  for (const family of Object.keys(gens)) {
    it(`${family}: ${CASES_PER_FAMILY} graphs, the same shapes and values`, async () => {
      let compared = 0;
      for (let n = 0; n < CASES_PER_FAMILY; n++) {
        const c = gens[family]();
        c.nodes.forEach((nd, i) => { nd.name ??= `${nd.op}_${i}`; });
        const outputs = c.nodes.at(-1)!.outputs;
        const bytes = model(c.nodes, { inits: c.inits, inputs: [valueInfo('x', c.x)], outputInfos: outputs.map((o) => valueInfo(o, null, c.outType ?? FLOAT)), opset: c.opset ?? 17, ir: (c.opset ?? 17) >= 23 ? 13 : undefined });
        const xs = Float32Array.from({ length: c.x.reduce((a, b) => a * b, 1) }, () => Math.round((r() * 4 - 2) * 64) / 64 * (c.scale ?? 1));
        const what = `${family} #${n} (${c.nodes.map((nd) => nd.op).join('→')}, x [${c.x.join(', ')}]${c.inits.length > 0 ? `, ${readOnnx(bytes).initializers.size} initializers` : ''})`;
        const theirs = await (async () => {
          try {
            const session = await ort.InferenceSession.create(bytes);
            const t = await session.run({ x: new ort.Tensor('float32', xs, c.x) });
            await session.release();
            return t;
          } catch (e) {
            throw new Error(`${what}: onnxruntime-web refused a graph the generator should keep valid: ${(e as Error).message}`);
          }
        })();
        const ours = runOnnx(readOnnx(bytes), { x: new Tensor(xs.slice(), c.x) }, { algorithm: 'im2col' });
        for (const o of outputs) {
          const a = ours.get(o)!, b = theirs[o];
          const where = `${what}, output ${o}`;
          expect(a.shape, where).toEqual(Array.from(b.dims));
          const ref = Array.from(b.data as ArrayLike<number | bigint>, Number);
          let big = 1;
          for (const v of ref) if (Number.isFinite(v)) big = Math.max(big, Math.abs(v));
          const tol = c.exact ? 0 : 2 ** -18 * (c.looser ?? 1) * big;
          for (let i = 0; i < ref.length; i++) {
            const p = a.data[i], q = ref[i];
            if (!(p === q || (Number.isNaN(p) && Number.isNaN(q)) || Math.abs(p - q) <= tol)) throw new Error(`${where}: element ${i} is ${p}, onnxruntime-web gives ${q} (bound ${tol})`);
          }
        }
        compared++;
      }
      expect(compared).toBe(CASES_PER_FAMILY);
    });
  }
});
