// The attributes each op this evaluator runs has in opsets 11–26 (onnx/docs/Operators.md), and
// which of them it runs only at their default. An attribute it would otherwise skip changes what a
// graph computes (Resize's antialias, QuantizeLinear's output_dtype), so the run is refused up front,
// as for an unsupported op, rather than answered for a different graph; an attribute no version of the
// op has is refused too (the graph is not what its opset says), and so is a node with more inputs
// than its op takes at the graph's opset (an input a later version adds would be skipped).
//
// Opsets 22–26 change these ops only by the element types they allow (22: bfloat16 for the pools,
// Conv, ConvTranspose, the activations and InstanceNormalization; 23–25: float4e2m1, float8e8m0 and
// int2/uint2 for Cast, the shape ops, Pad and Q/DQ), which the reader refuses or widens as before,
// and by three attributes: QuantizeLinear's `precision` and DequantizeLinear's `output_dtype` (23),
// run here at their defaults only, and Cast's `round_mode` (25), which applies to float8e8m0 alone.

import type { OnnxAttribute, OnnxModel } from '../io/onnx_read.js';
import { showText } from '../tensor/untrusted.js';

// 'read': every value the specification allows is honoured (or refused with a reason by the op);
// 'inert': no effect on what an inference run computes here (a training ratio, a seed, float8
// saturation, the Indices output's layout, the extrapolation value of tf_crop_and_resize, which is
// refused);
// { only }: supported at that value (the default) alone
type Rule = 'read' | 'inert' | { only: number | string };

const WINDOW = { auto_pad: 'read', dilations: 'read', kernel_shape: 'read', pads: 'read', strides: 'read' } as const;
const CONV = { ...WINDOW, group: 'read' } as const;

const REDUCE = { axes: 'read', keepdims: 'read', noop_with_empty_axes: 'read' } as const;

const SPEC: Readonly<Record<string, Readonly<Record<string, Rule>>>> = {
  ArgMax: { axis: 'read', keepdims: 'read', select_last_index: 'read' },
  ArgMin: { axis: 'read', keepdims: 'read', select_last_index: 'read' },
  AveragePool: { ...WINDOW, ceil_mode: 'read', count_include_pad: 'read' },
  BatchNormalization: { epsilon: 'read', momentum: 'inert', training_mode: 'read' },
  Cast: { to: 'read', saturate: 'inert', round_mode: 'inert' },
  Concat: { axis: 'read' },
  Constant: { value: 'read', value_float: 'read', value_floats: 'read', value_int: 'read', value_ints: 'read', value_string: 'read', value_strings: 'read', sparse_value: 'read' },
  ConstantOfShape: { value: 'read' },
  Conv: CONV,
  ConvInteger: CONV,
  ConvTranspose: { ...CONV, output_padding: 'read', output_shape: 'read' },
  DepthToSpace: { blocksize: 'read', mode: 'read' },
  DequantizeLinear: { axis: 'read', block_size: 'read', output_dtype: { only: 0 } },
  Dropout: { ratio: 'inert', seed: 'inert' },
  Elu: { alpha: 'read' },
  Flatten: { axis: 'read' },
  Gather: { axis: 'read' },
  Gelu: { approximate: 'read' },
  Gemm: { alpha: 'read', beta: 'read', transA: 'read', transB: 'read' },
  HardSigmoid: { alpha: 'read', beta: 'read' },
  InstanceNormalization: { epsilon: 'read' },
  IsInf: { detect_negative: 'read', detect_positive: 'read' },
  LayerNormalization: { axis: 'read', epsilon: 'read', stash_type: 'inert' },
  LeakyRelu: { alpha: 'read' },
  LogSoftmax: { axis: 'read' },
  LRN: { alpha: 'read', beta: 'read', bias: 'read', size: 'read' },
  MaxPool: { ...WINDOW, ceil_mode: 'read', storage_order: 'inert' },
  Mod: { fmod: 'read' },
  Pad: { mode: 'read' },
  QLinearConv: CONV,
  QuantizeLinear: { axis: 'read', block_size: 'read', saturate: 'inert', output_dtype: { only: 0 }, precision: { only: 0 } },
  ReduceL2: REDUCE,
  ReduceMax: REDUCE,
  ReduceMean: REDUCE,
  ReduceMin: REDUCE,
  ReduceSum: REDUCE,
  ReduceSumSquare: REDUCE,
  Reshape: { allowzero: 'read' },
  Resize: {
    mode: 'read', coordinate_transformation_mode: 'read', nearest_mode: 'read',
    cubic_coeff_a: 'read', exclude_outside: 'read', extrapolation_value: 'inert',
    antialias: { only: 0 }, keep_aspect_ratio_policy: { only: 'stretch' }, axes: { only: 'absent' },
  },
  ScatterND: { reduction: 'read' },
  Selu: { alpha: 'read', gamma: 'read' },
  Shape: { start: 'read', end: 'read' },
  Softmax: { axis: 'read' },
  SpaceToDepth: { blocksize: 'read' },
  Split: { axis: 'read', split: 'read', num_outputs: 'read' },
  Squeeze: { axes: 'read' },
  Swish: { alpha: 'read' },
  Transpose: { perm: 'read' },
  Unsqueeze: { axes: 'read' },
};

// The most inputs each op takes (Infinity: variadic), where it depends on the opset from the version
// that added the last one (Pad's axes at 18, the reductions' axes at 13 or 18, Dropout's ratio and
// training_mode at 12).
const from = (opset: number, before: number, after: number) => (v: number) => (v >= opset ? after : before);
const INPUTS: Readonly<Record<string, number | ((opset: number) => number)>> = {
  Abs: 1, Add: 2, And: 2, ArgMax: 1, ArgMin: 1, AveragePool: 1, BatchNormalization: 5, Cast: 1, Ceil: 1,
  Clip: 3, Concat: Infinity, Constant: 0, ConstantOfShape: 1, Conv: 3, ConvInteger: 4, ConvTranspose: 3,
  Cos: 1, DepthToSpace: 1, DequantizeLinear: 3, Div: 2, Dropout: from(12, 1, 3), Elu: 1, Equal: 2, Erf: 1,
  Exp: 1, Expand: 2, Flatten: 1, Floor: 1, Gather: 2, Gelu: 1, Gemm: 3, GlobalAveragePool: 1,
  GlobalMaxPool: 1, Greater: 2, GreaterOrEqual: 2, HardSigmoid: 1, HardSwish: 1, Identity: 1,
  InstanceNormalization: 3, IsInf: 1, IsNaN: 1, LRN: 1, LayerNormalization: 3, LeakyRelu: 1, Less: 2,
  LessOrEqual: 2, Log: 1, LogSoftmax: 1, MatMul: 2, MatMulInteger: 4, Max: Infinity, MaxPool: 1,
  Mean: Infinity, Min: Infinity, Mish: 1, Mod: 2, Mul: 2, Neg: 1, Not: 1, Or: 2, PRelu: 2,
  Pad: from(18, 3, 4), Pow: 2, QLinearConv: 9, QLinearMatMul: 8, QuantizeLinear: 3, Range: 3, Reciprocal: 1,
  ReduceL2: from(18, 1, 2), ReduceMax: from(18, 1, 2), ReduceMean: from(18, 1, 2), ReduceMin: from(18, 1, 2),
  ReduceSum: from(13, 1, 2), ReduceSumSquare: from(18, 1, 2), Relu: 1, Reshape: 2, Resize: 4, Round: 1,
  ScatterND: 3, Selu: 1, Shape: 1, Sigmoid: 1, Sign: 1, Sin: 1, Slice: 5, Softmax: 1, Softplus: 1,
  Softsign: 1, SpaceToDepth: 1, Split: from(13, 1, 2), Sqrt: 1, Squeeze: from(13, 1, 2), Sub: 2,
  Sum: Infinity, Swish: 1, Tanh: 1, Tile: 2, Transpose: 1, Unsqueeze: from(13, 1, 2), Where: 3, Xor: 2,
};

/** The most inputs `op` takes at `opset` (undefined: an op the evaluator does not run). */
export function maxInputs(op: string, opset: number): number | undefined {
  const n = INPUTS[op];
  return typeof n === 'function' ? n(opset) : n;
}

const valueOf = (a: OnnxAttribute): string => (a.kind === 'int' || a.kind === 'float' || a.kind === 'string' ? String(a.value) : a.kind === 'ints' || a.kind === 'floats' ? `[${a.value.join(', ')}]` : a.kind);

/** One line per attribute the evaluator would not honour (node, attribute, value, why), and per node
 * with more inputs than its op takes: empty when every node is run as given. */
export function attributeProblems(model: OnnxModel): string[] {
  const out: string[] = [];
  for (const n of model.nodes) {
    const most = maxInputs(n.opType, model.opset);
    if (most !== undefined && n.inputs.length > most) {
      out.push(`node '${showText(n.name, 60)}' (${showText(n.opType, 40)}) has ${n.inputs.length} inputs; ${n.opType} takes at most ${most} at opset ${model.opset}`);
    }
    const spec = SPEC[n.opType] ?? {};
    for (const [name, a] of n.attributes) {
      const rule = spec[name];
      const at = `node '${showText(n.name, 60)}' (${showText(n.opType, 40)}): attribute ${showText(name, 40)}`;
      if (rule === undefined) out.push(`${at} is not one of ${n.opType}'s in opsets 11–26${Object.keys(spec).length > 0 ? ` (${Object.keys(spec).join(', ')})` : ' (it has none)'}`);
      else if (typeof rule === 'object' && a.value !== rule.only) { // 'absent': any value is one too many
        out.push(`${at} = ${showText(valueOf(a), 40)} is not supported (only ${rule.only === 'absent' ? 'without it' : rule.only})`);
      }
    }
  }
  return out;
}
