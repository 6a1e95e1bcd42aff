// ONNX op semantics the PyTorch fixtures do not reach, against closed forms worked out by hand from
// onnx/docs/Operators.md (and PyTorch's pooling rule), and a graph fuse-onnx must not break.
import { describe, expect, it } from 'vitest';
import { readOnnx } from '../../src/io/onnx_read.js';
import { onnxProtoOf } from '../../src/io/onnx.js';
import { runOnnx } from '../../src/onnx/run.js';
import { fuseOnnx } from '../../src/onnx/fuse.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { FLOAT, INT64, type NodeSpec, P, f32, intAttr, intsAttr, model, tensor, valueInfo } from './build.js';

const run1 = (bytes: Uint8Array, x: Tensor, out: string) => runOnnx(readOnnx(bytes), { x }).get(out)!;

describe('ONNX op semantics (closed forms)', () => {
  it('MaxPool ceil_mode drops a last window that would start in the right padding (PyTorch\'s rule): 5 wide, k 2, s 2, pad 1 → 3, not 4', () => {
    const x = new Tensor(Float32Array.from({ length: 25 }, (_, i) => i), [1, 1, 5, 5]);
    const y = run1(model([{ op: 'MaxPool', inputs: ['x'], outputs: ['y'], attrs: [intsAttr('kernel_shape', [2, 2]), intsAttr('strides', [2, 2]), intsAttr('pads', [1, 1, 1, 1]), intAttr('ceil_mode', 1)] }],
      { inputs: [valueInfo('x', [1, 1, 5, 5])] }), x, 'y');
    expect(y.shape).toEqual([1, 1, 3, 3]);
    // windows start at −1, 1, 3 on each axis: rows {0}, {1,2}, {3,4}; the max is the bottom-right element
    expect(Array.from(y.data)).toEqual([0, 2, 4, 10, 12, 14, 20, 22, 24]);
  });

  it('Softmax before opset 13 normalises the tensor flattened from axis on; from 13 along axis only', () => {
    const x = new Tensor(Float32Array.from([0, 1, 2, 3, 4, 5]), [1, 2, 3]);
    const at = (opset: number) => run1(model([{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attrs: [intAttr('axis', 1)] }], { inputs: [valueInfo('x', [1, 2, 3])], opset }), x, 'y');
    const e = [0, 1, 2, 3, 4, 5].map(Math.exp), all = e.reduce((a, b) => a + b);
    at(11).data.forEach((v, i) => expect(v).toBeCloseTo(e[i] / all, 6)); // one row of 6
    at(13).data.forEach((v, i) => expect(v).toBeCloseTo(e[i] / (e[i % 3] + e[3 + (i % 3)]), 6)); // pairs along axis 1
  });

  it('fuse-onnx keeps a conv whose output another node also reads (the branch stops there)', () => {
    const w = (name: string, n: number) => tensor(name, [2, 2, 1, 1], FLOAT, f32(...Array.from({ length: 4 }, (_, i) => (i + n) / 4)));
    const bn = ['s', 'b', 'm', 'v'].map((k, i) => tensor(k, [2], FLOAT, f32(1 + i / 8, 0.5 - i / 8)));
    const bytes = model([
      { op: 'Conv', inputs: ['x', 'w1'], outputs: ['a'], name: 'conv_a' },
      { op: 'BatchNormalization', inputs: ['a', 's', 'b', 'm', 'v'], outputs: ['na'], name: 'bn_a' },
      { op: 'Conv', inputs: ['x', 'w2'], outputs: ['c'], name: 'conv_c' },
      { op: 'Add', inputs: ['na', 'c'], outputs: ['y'], name: 'sum' },
      { op: 'Relu', inputs: ['a'], outputs: ['r'], name: 'also_reads_a' },
    ], { inits: [w('w1', 1), w('w2', 2), ...bn], inputs: [valueInfo('x', [1, 2, 3, 3])], outputs: ['y', 'r'] });
    const m = readOnnx(bytes);
    const r = fuseOnnx(m);
    expect(readOnnx(onnxProtoOf(r.model).encode()).nodes.some((n) => n.name === 'conv_a')).toBe(true); // still produces 'a' for the Relu
    const x = new Tensor(Float64Array.from({ length: 18 }, (_, i) => Math.sin(i)), [1, 2, 3, 3]);
    const before = runOnnx(m, { x }, { dtype: 'float64' }), after = runOnnx(r.model, { x }, { dtype: 'float64' });
    for (const k of ['y', 'r']) before.get(k)!.data.forEach((v, i) => expect(Math.abs(v - after.get(k)!.data[i])).toBeLessThanOrEqual(1e-6));
  });
});

// What Operators.md allows an op's arguments to be, at the edge: axis in [−r, r), broadcastable
// shapes, 1-D integer lists, attributes of their declared type. Each edge case read, each one past it refused.
describe('op arguments at the edges of what the specification allows', () => {
  const x = new Tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const floatAttr = (name: string, v: number) => P().string(1, name).float(2, v).varint(20, 1);
  const i64 = (...v: number[]) => new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer);
  const runIt = (nodes: NodeSpec[], inits: ReturnType<typeof tensor>[] = []) => run1(model(nodes, { inputs: [valueInfo('x', [2, 3])], inits }), x, 'y');

  it('Concat axis −r is the first axis; −r − 1 and r are refused', () => {
    const concat = (axis: number) => runIt([{ op: 'Concat', inputs: ['x', 'x'], outputs: ['y'], name: 'cat', attrs: [intAttr('axis', axis)] }]);
    expect(concat(-2).shape).toEqual([4, 3]);
    expect(concat(-1).shape).toEqual([2, 6]);
    expect(() => concat(-3)).toThrow(/node 'cat' \(Concat\): axis -3 is out of range for rank 2/);
    expect(() => concat(2)).toThrow(/axis 2 is out of range for rank 2/);
  });

  it('an axis given as a float attribute is refused, not read as a number', () => {
    expect(() => runIt([{ op: 'Concat', inputs: ['x', 'x'], outputs: ['y'], name: 'cat', attrs: [floatAttr('axis', 1)] }])).toThrow(/attribute axis must be an int, got float/);
  });

  it('Add broadcasts [2, 3] with [3] and [1, 3]; [2, 3] with [2] or [3, 3] is refused', () => {
    const add = (dims: number[]) => runIt([{ op: 'Add', inputs: ['x', 'b'], outputs: ['y'], name: 'add' }], [tensor('b', dims, FLOAT, f32(...Array(dims.reduce((a, c) => a * c, 1)).fill(10)))]);
    expect(Array.from(add([3]).data)).toEqual([11, 12, 13, 14, 15, 16]);
    expect(add([1, 3]).shape).toEqual([2, 3]);
    expect(() => add([2])).toThrow(/node 'add' \(Add\): shapes \[2, 3\] and \[2\] do not broadcast/);
    expect(() => add([3, 3])).toThrow(/shapes \[2, 3\] and \[3, 3\] do not broadcast/);
  });

  it('Reshape takes its shape as a 1-D int64 tensor; a 2-D one is refused', () => {
    const reshape = (dims: number[]) => runIt([{ op: 'Reshape', inputs: ['x', 's'], outputs: ['y'], name: 'rs' }], [tensor('s', dims, INT64, i64(3, 2))]);
    expect(reshape([2]).shape).toEqual([3, 2]);
    expect(() => reshape([1, 2])).toThrow(/node 'rs' \(Reshape\): shape must be 1-D, got shape \[1, 2\]/);
  });
});
