// QDQ graphs the way onnxruntime runs them. A QDQ graph writes a quantized conv as float ops between
// DequantizeLinear and QuantizeLinear:
//
//   x_q ─ DQ ─┐                                 x_q ──────────┐
//   w_q ─ DQ ─┼─ Conv ─ Q ─ y_q        ⇒        w_q, B_q ─ QLinearConv ─ y_q
//   B_q ─ DQ ─┘                                 (scales and zero points from the DQs and the Q)
//
// Read literally that is a float conv of dequantized values, then a rounding; onnxruntime instead
// rewrites the pattern into its integer kernel (QDQ selector/action transformers), which rounds once
// from the int32 accumulator. The two differ where a value lands within a float rounding of a half
// (test/onnx/quant.test.ts pins one). runOnnx follows onnxruntime by default (qdq: 'integer'), so an
// INT8 kernel can be checked bit for bit; qdq: 'float' runs the graph as written.
//
// Taken: Conv and MatMul whose data inputs are DequantizeLinear of uint8/int8 (the weights' an
// initializer, the bias's an int32 initializer with zero point 0), whose output only a QuantizeLinear
// reads; its scales as ONNX allows per tensor (per output channel for the weights).

import type { OnnxModel, OnnxNode, OnnxTensor } from '../io/onnx_read.js';
import { readersOf } from './value.js';

const INT8ISH = new Set(['uint8', 'int8']);

/** The model with each DQ → Conv/MatMul → Q pattern as one QLinearConv / QLinearMatMul; `model` is not changed. */
export function integerQdq(model: OnnxModel): OnnxModel {
  const producer = new Map<string, OnnxNode>();
  for (const n of model.nodes) for (const o of n.outputs) producer.set(o, n);
  const readers = readersOf(model.nodes);
  const outputs = new Set(model.outputs.map((o) => o.name));
  const init = (name: string | undefined): OnnxTensor | undefined => (name === undefined || name === '' ? undefined : model.initializers.get(name));
  const newInits = new Map<string, OnnxTensor>();
  const zeroPoint = (type: string): string => {
    const name = `qdq.zero.${type}`;
    if (!newInits.has(name)) newInits.set(name, { name, dtype: type === 'int8' ? 'int8' : 'uint8', dims: [], data: type === 'int8' ? new Int8Array(1) : new Uint8Array(1) });
    return name;
  };
  /** A Q/DQ node's integer type as its zero point says (none: uint8), if uint8 or int8 and constant. */
  const int8Type = (n: OnnxNode): string | null => {
    const type = n.inputs[2] ? init(n.inputs[2])?.dtype : 'uint8';
    return type !== undefined && INT8ISH.has(type) ? type : null;
  };
  /** A DequantizeLinear of uint8/int8 with a constant scale, and its zero point's name. */
  const dq = (t: string, constant: boolean): { node: OnnxNode; zp: string } | null => {
    const n = producer.get(t);
    if (n?.opType !== 'DequantizeLinear' || n.attributes.has('block_size')) return null;
    const type = int8Type(n);
    if (type === null || init(n.inputs[1]) === undefined) return null;
    if (constant && init(n.inputs[0]) === undefined) return null;
    return { node: n, zp: n.inputs[2] || zeroPoint(type) };
  };
  const replace = new Map<OnnxNode, OnnxNode | null>();
  for (const n of model.nodes) {
    if (n.opType !== 'Conv' && n.opType !== 'MatMul') continue;
    const q = readers.get(n.outputs[0]);
    if (q?.length !== 1 || q[0].opType !== 'QuantizeLinear' || outputs.has(n.outputs[0]) || q[0].attributes.has('block_size')) continue;
    const qtype = int8Type(q[0]);
    if (qtype === null || numel(init(q[0].inputs[1])) !== 1) continue;
    const x = dq(n.inputs[0], false), w = dq(n.inputs[1], true);
    if (x === null || w === null || numel(init(x.node.inputs[1])) !== 1) continue;
    // weights: one scale, or one per output channel (a DQ along axis 0 for a conv); a matmul's per tensor only
    const perChannel = numel(init(w.node.inputs[1])) !== 1;
    const axis = w.node.attributes.get('axis');
    if (perChannel && (n.opType === 'MatMul' || (axis?.kind === 'int' ? axis.value : 1) !== 0)) continue;
    const yzp = q[0].inputs[2] || zeroPoint(qtype);
    let fused: OnnxNode;
    if (n.opType === 'Conv') {
      let bias: string[] = [];
      if (n.inputs[2]) {
        const b = producer.get(n.inputs[2]);
        const bq = init(b?.inputs[0]), bzp = init(b?.inputs[2]);
        if (b?.opType !== 'DequantizeLinear' || bq?.dtype !== 'int32' || (bzp !== undefined && bzp.data.some((v) => v !== 0))) continue;
        bias = [b.inputs[0]];
      }
      fused = { ...n, opType: 'QLinearConv', inputs: [x.node.inputs[0], x.node.inputs[1], x.zp, w.node.inputs[0], w.node.inputs[1], w.zp, q[0].inputs[1], yzp, ...bias], outputs: [q[0].outputs[0]] };
    } else {
      fused = { ...n, opType: 'QLinearMatMul', inputs: [x.node.inputs[0], x.node.inputs[1], x.zp, w.node.inputs[0], w.node.inputs[1], w.zp, q[0].inputs[1], yzp], outputs: [q[0].outputs[0]] };
    }
    replace.set(n, fused);
    replace.set(q[0], null);
  }
  if (replace.size === 0) return model;
  let nodes = model.nodes.flatMap((n) => { const r = replace.get(n); return r === undefined ? [n] : r === null ? [] : [r]; });
  // the DequantizeLinear nodes nobody reads any more (the weights' and biases')
  for (let changed = true; changed;) {
    const read = new Set(nodes.flatMap((n) => n.inputs));
    const kept = nodes.filter((n) => n.opType !== 'DequantizeLinear' || n.outputs.some((o) => read.has(o) || outputs.has(o)));
    changed = kept.length !== nodes.length;
    nodes = kept;
  }
  return { ...model, nodes, initializers: new Map([...model.initializers, ...newInits]) };
}

const numel = (t: OnnxTensor | undefined) => (t === undefined ? -1 : t.dims.reduce((a, b) => a * b, 1));
