// The attributes each op this evaluator runs has in opsets 11–21 (onnx/docs/Operators.md), and
// which of them it runs only at their default. An attribute it would otherwise skip changes what a
// graph computes (Resize's antialias, QuantizeLinear's output_dtype), so the run is refused up front,
// as for an unsupported op, rather than answered for a different graph; an attribute no version of the
// op has is refused too (the graph is not what its opset says).

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
  Cast: { to: 'read', saturate: 'inert' },
  Concat: { axis: 'read' },
  Constant: { value: 'read', value_float: 'read', value_floats: 'read', value_int: 'read', value_ints: 'read', value_string: 'read', value_strings: 'read', sparse_value: 'read' },
  ConstantOfShape: { value: 'read' },
  Conv: CONV,
  ConvInteger: CONV,
  ConvTranspose: { ...CONV, output_padding: 'read', output_shape: 'read' },
  DepthToSpace: { blocksize: 'read', mode: 'read' },
  DequantizeLinear: { axis: 'read', block_size: 'read' },
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
  QuantizeLinear: { axis: 'read', block_size: 'read', saturate: 'inert', output_dtype: { only: 0 } },
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
  Transpose: { perm: 'read' },
  Unsqueeze: { axes: 'read' },
};

const valueOf = (a: OnnxAttribute): string => (a.kind === 'int' || a.kind === 'float' || a.kind === 'string' ? String(a.value) : a.kind === 'ints' || a.kind === 'floats' ? `[${a.value.join(', ')}]` : a.kind);

/** One line per attribute the evaluator would not honour (node, attribute, value, why): empty when every node's attributes are run as given. */
export function attributeProblems(model: OnnxModel): string[] {
  const out: string[] = [];
  for (const n of model.nodes) {
    const spec = SPEC[n.opType] ?? {};
    for (const [name, a] of n.attributes) {
      const rule = spec[name];
      const at = `node '${showText(n.name, 60)}' (${showText(n.opType, 40)}): attribute ${showText(name, 40)}`;
      if (rule === undefined) out.push(`${at} is not one of ${n.opType}'s in opsets 11–21${Object.keys(spec).length > 0 ? ` (${Object.keys(spec).join(', ')})` : ' (it has none)'}`);
      else if (typeof rule === 'object' && a.value !== rule.only) { // 'absent': any value is one too many
        out.push(`${at} = ${showText(valueOf(a), 40)} is not supported (only ${rule.only === 'absent' ? 'without it' : rule.only})`);
      }
    }
  }
  return out;
}
