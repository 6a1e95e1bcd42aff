// ONNX op semantics the PyTorch fixtures do not reach, against closed forms worked out by hand from
// onnx/docs/Operators.md (and PyTorch's pooling rule), and a graph fuse-onnx must not break.
import { describe, expect, it } from 'vitest';
import { readOnnx } from '../../src/io/onnx_read.js';
import { onnxProtoOf } from '../../src/io/onnx.js';
import { SUPPORTED_OPS, runOnnx } from '../../src/onnx/run.js';
import { maxInputs } from '../../src/onnx/attributes.js';
import { fuseOnnx } from '../../src/onnx/fuse.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { FLOAT, INT64, type NodeSpec, f32, floatAttr, i64, intAttr, intsAttr, model, strAttr, tensor, valueInfo } from './build.js';

const run1 = (bytes: Uint8Array, x: Tensor, out: string) => runOnnx(readOnnx(bytes), { x }).get(out)!;
// one graph on input x (its shape declared), output y
const one = (nodes: NodeSpec[], x: Tensor, inits: ReturnType<typeof tensor>[] = []) => run1(model(nodes, { inputs: [valueInfo('x', [...x.shape])], inits }), x, 'y');

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
  const runIt = (nodes: NodeSpec[], inits: ReturnType<typeof tensor>[] = []) => one(nodes, x, inits);

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

// Found by running random small graphs of each op through both this evaluator and onnxruntime-web
// (attributes drawn across their allowed ranges); each case below is worked out by hand from
// Operators.md, not taken from either engine.
describe('op semantics at the corners a differential run against onnxruntime-web found', () => {
  const x24 = new Tensor(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);

  it('Flatten: a negative axis counts back from the input\'s rank r (−1 of (2, 3, 4) → (6, 4)); axis lies in [−r, r]', () => {
    const flatten = (axis: number) => one([{ op: 'Flatten', inputs: ['x'], outputs: ['y'], name: 'fl', attrs: [intAttr('axis', axis)] }], x24);
    expect(flatten(-1).shape).toEqual([6, 4]);
    expect(flatten(-3).shape).toEqual([1, 24]);
    expect(flatten(0).shape).toEqual([1, 24]);
    expect(flatten(3).shape).toEqual([24, 1]);
    expect(Array.from(flatten(-2).data)).toEqual(Array.from(x24.data)); // (2, 12): the data as it was
    expect(() => flatten(-4)).toThrow(/node 'fl' \(Flatten\): axis -4 is out of range \[-3, 3\] for rank 3/);
    expect(() => flatten(4)).toThrow(/axis 4 is out of range \[-3, 3\]/);
  });

  it('Slice stepping back clamps a start to [0, n − 1] and an end to [−1, n − 1]: start −100 of 5 is element 0', () => {
    const x5 = new Tensor(Float32Array.from([10, 11, 12, 13, 14]), [5]);
    const slice = (start: number, end: number, step: number) => one([{ op: 'Slice', inputs: ['x', 's', 'e', 'a', 't'], outputs: ['y'] }], x5,
      [tensor('s', [1], INT64, i64(start)), tensor('e', [1], INT64, i64(end)), tensor('a', [1], INT64, i64(0)), tensor('t', [1], INT64, i64(step))]);
    // start −100 + 5 = −95 → 0; end −2⁴⁰ + 5 → −1 (before the first element): one element, x[0]
    expect(Array.from(slice(-100, -(2 ** 40), -1).data)).toEqual([10]);
    // start 100 → 4; end −100 → −1: 4, 2, 0
    expect(Array.from(slice(100, -100, -2).data)).toEqual([14, 12, 10]);
    // stepping forward: start −100 → 0, end 2⁴⁰ → 5
    expect(Array.from(slice(-100, 2 ** 40, 2).data)).toEqual([10, 12, 14]);
  });

  it('pooling: a pad as wide as the (dilated) window is refused, and a too-small input names the dilated window', () => {
    const x = new Tensor(Float32Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4]);
    const pool = (op: string, attrs: ReturnType<typeof intAttr>[]) => one([{ op, inputs: ['x'], outputs: ['y'], name: 'p', attrs }], x);
    expect(() => pool('MaxPool', [intsAttr('kernel_shape', [2, 2]), intsAttr('pads', [2, 0, 0, 0])])).toThrow(/node 'p' \(MaxPool\): pads \[2, 0, 0, 0\] must be smaller than the 2×2 window/);
    // dilation 2 makes a 2-tap window 3 wide: a pad of 2 still leaves its last tap on the input
    // (out = 4 + 2 − 3 + 1 = 4; the first window's taps are rows −2 and 0: its max is x[0][0] = 0)
    const y = pool('MaxPool', [intsAttr('kernel_shape', [2, 2]), intsAttr('dilations', [2, 2]), intsAttr('pads', [2, 2, 0, 0])]);
    expect(y.shape).toEqual([1, 1, 4, 4]);
    expect(y.data[0]).toBe(0);
    expect(() => pool('AveragePool', [intsAttr('kernel_shape', [2, 2]), intsAttr('dilations', [4, 1])])).toThrow(/input 4×4 \(padded 4×4\) is smaller than the 5×2 \(2×2 dilated\) window/);
    expect(() => pool('MaxPool', [intsAttr('kernel_shape', [2, 2]), intsAttr('strides', [2])])).toThrow(/strides must have 2 values for 2-D input, got \[2\]/);
  });

  it('MaxPool SAME_UPPER with a dilation pads for the dilated window: out = ⌈in / stride⌉ (onnxruntime-web 1.30 leaves the dilation out here)', () => {
    // 5 wide, k 2, d 2, s 2: out ⌈5/2⌉ = 3, total pad (3 − 1)·2 + 3 − 5 = 2 → 1 before, 1 after;
    // windows take columns {−1, 1}, {1, 3}, {3, 5}: the max of the columns inside
    const x = new Tensor(Float32Array.from([3, 1, 4, 1, 5]), [1, 1, 1, 5]);
    const y = one([{ op: 'MaxPool', inputs: ['x'], outputs: ['y'], attrs: [intsAttr('kernel_shape', [1, 2]), intsAttr('dilations', [1, 2]), intsAttr('strides', [1, 2]), strAttr('auto_pad', 'SAME_UPPER')] }], x);
    expect(y.shape).toEqual([1, 1, 1, 3]);
    expect(Array.from(y.data)).toEqual([1, 1, 1]); // x[1], max(x[1], x[3]), x[3]
  });

  it('ConvTranspose checks its attributes as Conv does; output_padding must stay below the stride or the dilation (PyTorch\'s rule)', () => {
    const x = new Tensor(Float32Array.from({ length: 4 }, (_, i) => i + 1), [1, 1, 2, 2]);
    const w = tensor('w', [1, 1, 2, 2], FLOAT, f32(1, 1, 1, 1));
    const ct = (attrs: ReturnType<typeof intAttr>[]) => one([{ op: 'ConvTranspose', inputs: ['x', 'w'], outputs: ['y'], name: 'ct', attrs }], x, [w]);
    // stride 1, dilation 2, output padding 1 (< the dilation): Ho = 1·(2 − 1) + 1 + (2 − 1)·2 + 1 = 5
    const y = ct([intsAttr('dilations', [2, 2]), intsAttr('output_padding', [1, 1])]);
    expect(y.shape).toEqual([1, 1, 5, 5]);
    // each input element lands at (i + 2a, j + 2b) for a, b ∈ {0, 1}; row 0: x00, x01, x00, x01, 0
    expect(Array.from(y.data.slice(0, 5))).toEqual([1, 2, 1, 2, 0]);
    expect(() => ct([intsAttr('output_padding', [1, 0])])).toThrow(/node 'ct' \(ConvTranspose\): output_padding \[1, 0\] must be non-negative and smaller than the stride or the dilation/);
    expect(() => ct([intsAttr('strides', [2, 2]), intsAttr('output_padding', [-1, 0])])).toThrow(/output_padding \[-1, 0\]/);
    expect(() => ct([intsAttr('pads', [-1, 0, 0, 0])])).toThrow(/pads must be non-negative integers/);
    expect(() => ct([intsAttr('strides', [0, 1])])).toThrow(/kernel, strides and dilations must be positive integers/);
    expect(() => ct([intsAttr('kernel_shape', [2, 3])])).toThrow(/kernel_shape \[2, 3\] does not match W \[1, 1, 2, 2\]/);
    expect(() => ct([intAttr('group', -2)])).toThrow(/group must be a positive integer, got -2/);
  });

  it('Pad in reflect or edge mode refuses an empty axis it would have to extend; constant fills it', () => {
    const x = new Tensor(new Float32Array(0), [2, 0]);
    const pad = (mode: string) => one([{ op: 'Pad', inputs: ['x', 'p'], outputs: ['y'], name: 'pad', attrs: [strAttr('mode', mode)] }], x, [tensor('p', [4], INT64, i64(0, 1, 0, 1))]);
    expect(Array.from(pad('constant').data)).toEqual([0, 0, 0, 0]);
    expect(() => pad('edge')).toThrow(/node 'pad' \(Pad\): mode 'edge' cannot pad axis 1, which has no elements/);
    expect(() => pad('reflect')).toThrow(/mode 'reflect' cannot pad axis 1/);
  });

  it('Pad crops by its negative pads first and extends what is left (np.pad of the slice, as onnxruntime)', () => {
    const pad = (mode: string, n: number, b: number, e: number) => one([{ op: 'Pad', inputs: ['x', 'p'], outputs: ['y'], name: 'pad', attrs: [strAttr('mode', mode)] }],
      new Tensor(Float32Array.from({ length: n }, (_, i) => i), [1, n]), [tensor('p', [4], INT64, i64(0, b, 0, e))]);
    // [0 1 2 3] cropped to [1 2 3], reflected 3 on the right: np.pad([1, 2, 3], (0, 3), 'reflect') = [1 2 3 2 1 2]
    expect(Array.from(pad('reflect', 4, -1, 3).data)).toEqual([1, 2, 3, 2, 1, 2]);
    expect(Array.from(pad('reflect', 4, -2, 2).data)).toEqual([2, 3, 2, 3]);
    // [0 1 2] cropped to [0]: reflect of one element repeats it (NumPy), never the cropped 1 and 2
    expect(Array.from(pad('reflect', 3, 2, -2).data)).toEqual([0, 0, 0]);
    expect(Array.from(pad('edge', 4, 2, -3).data)).toEqual([0, 0, 0]);
    expect(Array.from(pad('edge', 4, -1, 2).data)).toEqual([1, 2, 3, 3, 3]);
    expect(Array.from(pad('constant', 2, -3, 4).data)).toEqual([0, 0, 0]);
    expect(() => pad('edge', 1, -1, 2)).toThrow(/mode 'edge' cannot pad axis 1, which has no elements left after the negative pads/);
  });
});

describe('Clip with min above max', () => {
  it('gives max everywhere (PyTorch\'s clamp, NumPy\'s clip); NaN passes through', () => {
    const x = new Tensor(Float32Array.from([-1, 0.3, 2, NaN]), [4]);
    const y = one([{ op: 'Clip', inputs: ['x', 'lo', 'hi'], outputs: ['y'] }], x, [tensor('lo', [], FLOAT, f32(0.5)), tensor('hi', [], FLOAT, f32(0.25))]);
    expect(Array.from(y.data)).toEqual([0.25, 0.25, 0.25, NaN]);
  });
});

describe('Where and Gemm broadcast only as the specification allows', () => {
  const x = new Tensor(Float32Array.from([1, 2, 3]), [3]);
  const bool = (name: string, dims: number[], v: number[]) => tensor(name, dims, 9, Uint8Array.from(v));
  const where = (cond: ReturnType<typeof tensor>, y: ReturnType<typeof tensor>) => one([{ op: 'Where', inputs: ['c', 'x', 'b'], outputs: ['y'], name: 'w' }], x, [cond, y]);

  it('Where: condition (2, 1) with X (3) and a scalar Y broadcast to (2, 3); shapes that do not broadcast, a float condition or mixed types are refused', () => {
    // row 0 takes X, row 1 takes Y
    expect(Array.from(where(bool('c', [2, 1], [1, 0]), tensor('b', [], FLOAT, f32(-1))).data)).toEqual([1, 2, 3, -1, -1, -1]);
    expect(() => where(bool('c', [2, 4], [1, 0, 1, 0, 1, 0, 1, 0]), tensor('b', [], FLOAT, f32(-1)))).toThrow(/node 'w' \(Where\): shapes \[2, 4\] and \[3\] do not broadcast/);
    expect(() => where(tensor('c', [3], FLOAT, f32(1, 0, 1)), tensor('b', [], FLOAT, f32(-1)))).toThrow(/condition is float32; it must be bool/);
    expect(() => where(bool('c', [3], [1, 0, 1]), tensor('b', [], INT64, new Uint8Array(8)))).toThrow(/X is float32 and Y is int64; they must be one type/);
  });

  it('Gemm: C of rank 3 is refused even where its dimensions would broadcast', () => {
    const a = new Tensor(Float32Array.from([1, 2, 3, 4]), [2, 2]);
    const gemm = (c: number[]) => run1(model([{ op: 'Gemm', inputs: ['x', 'b', 'c'], outputs: ['y'], name: 'g' }], { inputs: [valueInfo('x', [2, 2])], inits: [tensor('b', [2, 2], FLOAT, f32(1, 0, 0, 1)), tensor('c', c, FLOAT, f32(...Array(c.reduce((p, q) => p * q, 1)).fill(10)))] }), a, 'y');
    expect(Array.from(gemm([1, 2]).data)).toEqual([11, 12, 13, 14]);
    expect(() => gemm([1, 2, 2])).toThrow(/node 'g' \(Gemm\): C \[1, 2, 2\] does not broadcast to the product's 2×2/);
  });
});

describe('Split and (Un)squeeze at the edges of their specification', () => {
  const x = new Tensor(Float32Array.from([0, 1, 2, 3, 4]), [1, 5]);
  const outs = (bytes: Uint8Array, names: string[]) => { const r = runOnnx(readOnnx(bytes), { x }); return names.map((n) => Array.from(r.get(n)!.data)); };
  const split = (k: number, outputs: number, opset: number) => model([{ op: 'Split', inputs: ['x'], outputs: Array.from({ length: outputs }, (_, i) => `y${i}`), name: 'sp', attrs: [intAttr('axis', 1), ...(opset >= 18 ? [intAttr('num_outputs', k)] : [])] }],
    { inputs: [valueInfo('x', [1, 5])], outputs: Array.from({ length: outputs }, (_, i) => `y${i}`), opset });

  it('Split without sizes: equal parts before opset 18; from 18, ⌈n/k⌉ each and a smaller last one, never an empty one', () => {
    expect(() => outs(split(2, 2, 17), ['y0'])).toThrow(/node 'sp' \(Split\): an axis of 5 does not split into 2 parts of equal size \(before opset 18\)/);
    expect(outs(split(2, 2, 18), ['y0', 'y1'])).toEqual([[0, 1, 2], [3, 4]]);
    expect(outs(split(3, 3, 18), ['y0', 'y1', 'y2'])).toEqual([[0, 1], [2, 3], [4]]);
    expect(() => outs(split(4, 4, 18), ['y0'])).toThrow(/an axis of 5 does not split into 4 parts of 2 with a smaller last one/); // 2, 2, 1, 0
    expect(() => outs(split(2, 3, 18), ['y0'])).toThrow(/num_outputs 2 but 3 outputs/);
    // 6 into 4: ⌈6/4⌉ = 2 leaves the fourth part empty (2, 2, 2, 0)
    const x6 = new Tensor(Float32Array.from([0, 1, 2, 3, 4, 5]), [1, 6]);
    const four = model([{ op: 'Split', inputs: ['x'], outputs: ['y0', 'y1', 'y2', 'y3'], name: 'sp', attrs: [intAttr('axis', 1), intAttr('num_outputs', 4)] }], { inputs: [valueInfo('x', [1, 6])], outputs: ['y0', 'y1', 'y2', 'y3'], opset: 18 });
    expect(() => runOnnx(readOnnx(four), { x: x6 })).toThrow(/an axis of 6 does not split into 4 parts of 2 with a smaller last one/);
  });

  it('Unsqueeze and Squeeze refuse an axis named twice (0 and −5 of a rank-5 output are one axis)', () => {
    const x3 = new Tensor(Float32Array.from([1, 2]), [1, 2, 1]);
    const op = (name: string, axes: number[]) => one([{ op: name, inputs: ['x', 'a'], outputs: ['y'], name: 'q' }], x3, [tensor('a', [axes.length], INT64, i64(...axes))]);
    expect(op('Unsqueeze', [0, 4]).shape).toEqual([1, 1, 2, 1, 1]);
    expect(() => op('Unsqueeze', [0, -5])).toThrow(/node 'q' \(Unsqueeze\): axes \[0, -5\] name axis 0 more than once/);
    expect(op('Squeeze', [0, -1]).shape).toEqual([2]);
    expect(() => op('Squeeze', [2, -1])).toThrow(/node 'q' \(Squeeze\): axes \[2, -1\] name axis 2 more than once/);
  });
});

// An attribute the evaluator would skip changes the graph it answers for: refused before anything
// runs, each naming its node, as an unsupported op is (src/onnx/attributes.ts).
describe('attributes the evaluator does not honour are refused up front', () => {
  const x = new Tensor(Float32Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4]);
  const resize = (extra: ReturnType<typeof intAttr>[]) => run1(model([{ op: 'Resize', inputs: ['x', '', 'sc'], outputs: ['y'], name: 'rs', attrs: [strAttr('mode', 'linear'), ...extra] }],
    { inputs: [valueInfo('x', [1, 1, 4, 4])], inits: [tensor('sc', [4], FLOAT, f32(1, 1, 0.5, 0.5))], opset: 18 }), x, 'y');

  it('Resize: antialias, keep_aspect_ratio_policy and axes are refused; cubic\'s own attributes under linear change nothing', () => {
    expect(() => resize([intAttr('antialias', 1)])).toThrow(/node 'rs' \(Resize\): attribute antialias = 1 is not supported \(only 0\); nothing was run/);
    expect(() => resize([strAttr('keep_aspect_ratio_policy', 'not_larger')])).toThrow(/keep_aspect_ratio_policy = not_larger is not supported \(only stretch\)/);
    expect(() => resize([intsAttr('axes', [2, 3])])).toThrow(/attribute axes = \[2, 3\] is not supported \(only without it\)/);
    // half_pixel, scale ½: output (o + ½)·2 − ½ = 0.5, 2.5 → rows and columns between 0–1 and 2–3
    const plain = resize([]), cubic = resize([floatAttr('cubic_coeff_a', -0.5), intAttr('antialias', 0)]);
    expect(Array.from(plain.data)).toEqual([2.5, 4.5, 10.5, 12.5]);
    expect(Array.from(cubic.data)).toEqual([2.5, 4.5, 10.5, 12.5]);
  });

  it('an attribute no version of the op has is refused, naming the ones it has', () => {
    const relu = () => run1(model([{ op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'r', attrs: [floatAttr('alpha', 0.1)] }], { inputs: [valueInfo('x', [1, 1, 4, 4])] }), x, 'y');
    expect(relu).toThrow(/node 'r' \(Relu\): attribute alpha is not one of Relu's in opsets 11–26 \(it has none\)/);
    const flatten = () => run1(model([{ op: 'Flatten', inputs: ['x'], outputs: ['y'], name: 'f', attrs: [intAttr('axes', 1)] }], { inputs: [valueInfo('x', [1, 1, 4, 4])] }), x, 'y');
    expect(flatten).toThrow(/attribute axes is not one of Flatten's in opsets 11–26 \(axis\)/);
  });

  it('QuantizeLinear\'s output_dtype (opset 21) is refused rather than read from a zero point that is not there', () => {
    const q = () => run1(model([{ op: 'QuantizeLinear', inputs: ['x', 's'], outputs: ['y'], name: 'q', attrs: [intAttr('output_dtype', 3)] }],
      { inputs: [valueInfo('x', [1, 1, 4, 4])], inits: [tensor('s', [], FLOAT, f32(1))], opset: 21 }), x, 'y');
    expect(q).toThrow(/node 'q' \(QuantizeLinear\): attribute output_dtype = 3 is not supported \(only 0\)/);
  });

  it('opsets 23–26: QuantizeLinear\'s precision and DequantizeLinear\'s output_dtype only at their defaults; Cast\'s round_mode (float8e8m0 only) changes nothing', () => {
    const q = (attrs: ReturnType<typeof intAttr>[]) => run1(model([{ op: 'QuantizeLinear', inputs: ['x', 's'], outputs: ['y'], name: 'q', attrs }],
      { inputs: [valueInfo('x', [1, 1, 4, 4])], inits: [tensor('s', [], FLOAT, f32(2))], opset: 23 }), x, 'y');
    // y = sat(rte(x / 2)) for x = 0 … 15 (uint8, no zero point): halves round to even
    expect(Array.from(q([]).data)).toEqual([0, 0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6, 6, 6, 7, 8]);
    expect(() => q([intAttr('precision', 1)])).toThrow(/node 'q' \(QuantizeLinear\): attribute precision = 1 is not supported \(only 0\)/);
    const dq = (attrs: ReturnType<typeof intAttr>[]) => run1(model([{ op: 'QuantizeLinear', inputs: ['x', 's'], outputs: ['q'], name: 'q' }, { op: 'DequantizeLinear', inputs: ['q', 's'], outputs: ['y'], name: 'dq', attrs }],
      { inputs: [valueInfo('x', [1, 1, 4, 4])], inits: [tensor('s', [], FLOAT, f32(2))], opset: 25 }), x, 'y');
    expect(Array.from(dq([]).data)).toEqual([0, 0, 2, 4, 4, 4, 6, 8, 8, 8, 10, 12, 12, 12, 14, 16]); // 2·rte(x / 2)
    expect(() => dq([intAttr('output_dtype', 10)])).toThrow(/node 'dq' \(DequantizeLinear\): attribute output_dtype = 10 is not supported \(only 0\)/);
    const cast = (attrs: ReturnType<typeof intAttr>[]) => run1(model([{ op: 'Cast', inputs: ['x'], outputs: ['y'], name: 'c', attrs: [intAttr('to', 6), ...attrs] }],
      { inputs: [valueInfo('x', [1, 1, 4, 4])], opset: 25 }), new Tensor(Float32Array.from({ length: 16 }, (_, i) => i / 4 - 2), [1, 1, 4, 4]), 'y');
    // int32 casts truncate toward zero (−0.75 → 0, not −0: an integer has no sign of zero)
    expect(Array.from(cast([strAttr('round_mode', 'down')]).data)).toEqual(Array.from(cast([]).data));
    expect(Array.from(cast([]).data)).toEqual([-2, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('Swish (opset 24) is x·σ(αx): α from its attribute, 1 (SiLU) without it; float64 against x/(1 + e^(−αx)) summed here', () => {
    const xs = [0, 1, -2, 3, -0.5, 8, -30, 0.25];
    const swish = (attrs: ReturnType<typeof floatAttr>[]) => runOnnx(readOnnx(model([{ op: 'Swish', inputs: ['x'], outputs: ['y'], attrs }], { inputs: [valueInfo('x', [8])], opset: 24, ir: 12 })),
      { x: new Tensor(Float64Array.from(xs), [8]) }, { dtype: 'float64' }).get('y')!;
    for (const [attrs, a] of [[[], 1], [[floatAttr('alpha', 0.5)], 0.5]] as const) {
      const y = swish([...attrs]);
      // one rounding of a float64 result against the same formula: within a few ulp of float64
      xs.forEach((v, i) => expect(Math.abs(y.data[i] - v / (1 + Math.exp(-a * v)))).toBeLessThanOrEqual(4 * 2 ** -52 * Math.max(1, Math.abs(v))));
    }
  });

  it('a node with more inputs than its op takes at the graph\'s opset is refused (a later version\'s input would be skipped)', () => {
    const relu = () => run1(model([{ op: 'Relu', inputs: ['x', 'x'], outputs: ['y'], name: 'r' }], { inputs: [valueInfo('x', [1, 1, 4, 4])] }), x, 'y');
    expect(relu).toThrow(/node 'r' \(Relu\) has 2 inputs; Relu takes at most 1 at opset 17/);
    // ReduceMean's axes became an input at opset 18: at 13 it is refused, at 18 it is read
    const mean = (opset: number) => run1(model([{ op: 'ReduceMean', inputs: ['x', 'a'], outputs: ['y'], name: 'm', attrs: [intAttr('keepdims', 0)] }],
      { inputs: [valueInfo('x', [1, 1, 4, 4])], inits: [tensor('a', [2], INT64, i64(0, 1))], opset }), x, 'y');
    expect(() => mean(13)).toThrow(/node 'm' \(ReduceMean\) has 2 inputs; ReduceMean takes at most 1 at opset 13/);
    // mean over axes 0 and 1 of a (1, 1, 4, 4) tensor: x itself, as (4, 4)
    expect(Array.from(mean(18).data)).toEqual(Array.from(x.data));
    // every op the evaluator runs has its count: a new op cannot arrive without one
    for (const op of SUPPORTED_OPS) expect(maxInputs(op, 26), op).toBeGreaterThanOrEqual(op === 'Constant' ? 0 : 1);
  });

  it('ReduceMean (opset 18) with noop_with_empty_axes and no axes is the identity; without it, the mean of everything', () => {
    const mean = (noop: number) => run1(model([{ op: 'ReduceMean', inputs: ['x'], outputs: ['y'], attrs: [intAttr('noop_with_empty_axes', noop)] }], { inputs: [valueInfo('x', [1, 1, 4, 4])], opset: 18 }), x, 'y');
    expect(Array.from(mean(1).data)).toEqual(Array.from(x.data));
    expect(Array.from(mean(0).data)).toEqual([7.5]); // (0 + … + 15) / 16
  });

  it('Dropout with training_mode true is refused (a random mask); false is the identity', () => {
    const drop = (train: number) => run1(model([{ op: 'Dropout', inputs: ['x', '', 't'], outputs: ['y'], name: 'd' }],
      { inputs: [valueInfo('x', [1, 1, 4, 4])], inits: [tensor('t', [], 9, new Uint8Array([train]))] }), x, 'y');
    expect(Array.from(drop(0).data)).toEqual(Array.from(x.data));
    expect(() => drop(1)).toThrow(/node 'd' \(Dropout\): training_mode is true/);
  });
});

describe('the activations, normalisations and block moves of the CNNs people ship beyond the first op set', () => {
  // erf against glibc's (Python's math.erf, printed with repr): its two ranges, the seam at 1.5, the
  // tails, long mantissas and the edges. Bound: 8 ulp of float64 — the series side's error is its
  // cancellation (the largest term under 2× the sum) times ~30 roundings, measured at most 6 ulp over
  // 22,000 points in [−7, 7]; the continued fraction's side measured 0.
  const GLIBC_ERF = [[1e-300, 1.1283791670955126e-300], [-3e-9, -3.3851375012865378e-9], [0.001, 0.0011283787909692365], [0.1, 0.1124629160182849],
    [-0.25, -0.2763263901682369], [0.5, 0.5204998778130465], [0.75, 0.7111556336535151], [1, 0.8427007929497149], [-1.25, -0.9229001282564582],
    [1.4724543590249493, 0.9626908502594179], [1.4999999999999998, 0.9661051464753106], [1.5, 0.9661051464753108], [-1.75, -0.9866716712191824],
    [2, 0.9953222650189527], [2.5, 0.999593047982555], [3, 0.9999779095030014], [-3.5, -0.9999992569016276], [4, 0.9999999845827421],
    [5, 0.9999999999984626], [5.9, 0.9999999999999999], [5.999999999999999, 1],
    // long mantissas past 1.5, where e^(−x²) needs x²'s low part (x = hi + lo with lo ≠ 0)
    [1.7, 0.9837904585907745], [-2.3, -0.9988568234026434], [2.9, 0.9999589021219005], [3.3, 0.9999969422902035]];

  it('Erf (float64) is within 8 ulp of glibc\'s erf; ±0 keep their sign, ±∞ give ±1, NaN stays NaN', () => {
    const y = runOnnx(readOnnx(model([{ op: 'Erf', inputs: ['x'], outputs: ['y'] }], { inputs: [valueInfo('x', [GLIBC_ERF.length])] })),
      { x: new Tensor(Float64Array.from(GLIBC_ERF, (p) => p[0]), [GLIBC_ERF.length]) }, { dtype: 'float64' }).get('y')!;
    GLIBC_ERF.forEach(([x, ref], i) => {
      const ulp = Math.max(2 ** (Math.floor(Math.log2(Math.abs(ref))) - 52), 2 ** -1074);
      expect(Math.abs(y.data[i] - ref) / ulp, `erf(${x})`).toBeLessThanOrEqual(8);
    });
    const edges = runOnnx(readOnnx(model([{ op: 'Erf', inputs: ['x'], outputs: ['y'] }], { inputs: [valueInfo('x', [5])] })),
      { x: new Tensor(Float64Array.of(0, -0, Infinity, -Infinity, NaN), [5]) }, { dtype: 'float64' }).get('y')!;
    expect(Object.is(edges.data[0], 0) && Object.is(edges.data[1], -0)).toBe(true);
    expect(Array.from(edges.data.subarray(2))).toEqual([1, -1, NaN]);
  });

  it('Gelu (opset 20): x·Φ(x) exactly, or its tanh approximation; another approximate is refused', () => {
    const gelu = (how: string) => runOnnx(readOnnx(model([{ op: 'Gelu', inputs: ['x'], outputs: ['y'], name: 'g', attrs: [strAttr('approximate', how)] }], { inputs: [valueInfo('x', [3])], opset: 20 })),
      { x: new Tensor(Float64Array.of(1, -1, 2), [3]) }, { dtype: 'float64' }).get('y')!;
    // Φ(1) = 0.8413447460685429, 1 − Φ(1), 2·Φ(2): the normal distribution's table values
    Array.from(gelu('none').data).forEach((v, i) => expect(v).toBeCloseTo([0.8413447460685429, -0.15865525393145707, 1.9544997361036416][i], 14));
    Array.from(gelu('tanh').data).slice(0, 2).forEach((v, i) => expect(v).toBeCloseTo([0.8411919906082768, -0.15880800939172324][i], 14));
    expect(() => gelu('erf')).toThrow(/node 'g' \(Gelu\): approximate 'erf' is not one of 'none', 'tanh'/);
  });

  it('LayerNormalization normalises the axes from axis on, and gives Mean and InvStdDev with those axes kept as 1', () => {
    // rows [1, 2, 3, 4] and [2, 2, 2, 6]: means 2.5 and 3, biased variances 1.25 and 3
    const x = new Tensor(Float32Array.of(1, 2, 3, 4, 2, 2, 2, 6), [2, 1, 4]);
    const outs = runOnnx(readOnnx(model([{ op: 'LayerNormalization', inputs: ['x', 's', 'b'], outputs: ['y', 'm', 'inv'], attrs: [intAttr('axis', -1), floatAttr('epsilon', 0.25)] }],
      { inputs: [valueInfo('x', [2, 1, 4])], inits: [tensor('s', [4], FLOAT, f32(1, 2, 1, 2)), tensor('b', [1], FLOAT, f32(10))], outputs: ['y', 'm', 'inv'], outputInfos: ['y', 'm', 'inv'].map((o) => valueInfo(o, null)) })),
    { x }, { dtype: 'float64' });
    const inv = [1 / Math.sqrt(1.25 + 0.25), 1 / Math.sqrt(3 + 0.25)];
    expect(outs.get('m')!.shape).toEqual([2, 1, 1]);
    expect(Array.from(outs.get('m')!.data)).toEqual([2.5, 3]);
    Array.from(outs.get('inv')!.data).forEach((v, i) => expect(v).toBeCloseTo(inv[i], 14));
    const want = [1, 2, 3, 4, 2, 2, 2, 6].map((v, i) => (v - [2.5, 3][i >> 2]) * inv[i >> 2] * [1, 2, 1, 2][i % 4] + 10);
    Array.from(outs.get('y')!.data).forEach((v, i) => expect(v).toBeCloseTo(want[i], 13));
  });

  it('DepthToSpace takes the block offset from the outer channel index (DCR) or the inner one (CRD); SpaceToDepth undoes DCR', () => {
    const x = new Tensor(Float32Array.from({ length: 8 }, (_, i) => i), [1, 8, 1, 1]); // 2 channels of 2×2 blocks
    const d2s = (mode: string) => Array.from(one([{ op: 'DepthToSpace', inputs: ['x'], outputs: ['y'], attrs: [intAttr('blocksize', 2), strAttr('mode', mode)] }], x).data);
    expect(d2s('DCR')).toEqual([0, 2, 4, 6, 1, 3, 5, 7]); // y[c, i, j] = x[(2i + j)·2 + c]
    expect(d2s('CRD')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // y[c, i, j] = x[4c + 2i + j]
    const img = new Tensor(Float32Array.from({ length: 8 }, (_, i) => i), [1, 2, 2, 2]);
    const s2d = one([{ op: 'SpaceToDepth', inputs: ['x'], outputs: ['y'], attrs: [intAttr('blocksize', 2)] }], img);
    expect(s2d.shape).toEqual([1, 8, 1, 1]);
    expect(Array.from(s2d.data)).toEqual([0, 4, 1, 5, 2, 6, 3, 7]); // channel (2i + j)·2 + c holds x[c, i, j]
    expect(() => one([{ op: 'DepthToSpace', inputs: ['x'], outputs: ['y'], name: 'd', attrs: [intAttr('blocksize', 3)] }], x)).toThrow(/node 'd' \(DepthToSpace\): 8 channels do not divide into blocks of 3×3/);
    expect(() => one([{ op: 'SpaceToDepth', inputs: ['x'], outputs: ['y'], name: 's' }], img)).toThrow(/node 's' \(SpaceToDepth\): attribute blocksize is required/);
  });

  it('Reduce ops: an empty set reduces to the identity of each (0, −∞, +∞), and axes given as an attribute where the opset takes an input is refused', () => {
    const empty = new Tensor(new Float32Array(0), [2, 0]);
    const red = (op: string, opset = 13) => Array.from(run1(model([{ op, inputs: ['x'], outputs: ['y'], name: 'r', attrs: [intsAttr('axes', [1])] }], { inputs: [valueInfo('x', [2, 0])], opset }), empty, 'y').data);
    expect(red('ReduceMax')).toEqual([-Infinity, -Infinity]);
    expect(red('ReduceMin')).toEqual([Infinity, Infinity]);
    expect(red('ReduceL2')).toEqual([0, 0]);
    expect(() => red('ReduceSum')).toThrow(/node 'r' \(ReduceSum\): axes is an input from opset 13, not an attribute/);
    expect(() => red('ReduceMax', 18)).toThrow(/axes is an input from opset 18/);
  });

  it('LRN with an even size sums channels c … c + 1 (the specification\'s ⌊(size−1)/2⌋ below, ⌈(size−1)/2⌉ above); ArgMax picks a NaN first, as NumPy', () => {
    const x = new Tensor(Float32Array.of(1, 2, 3), [1, 3, 1, 1]);
    const lrn = one([{ op: 'LRN', inputs: ['x'], outputs: ['y'], attrs: [intAttr('size', 2), floatAttr('alpha', 2), floatAttr('beta', 1), floatAttr('bias', 1)] }], x);
    // α/size = 1: 1/(1 + 1 + 4), 2/(1 + 4 + 9), 3/(1 + 9)
    Array.from(lrn.data).forEach((v, i) => expect(v).toBeCloseTo([1 / 6, 2 / 14, 3 / 10][i], 7));
    const arg = (op: string, last: number, ...v: number[]) => Array.from(run1(model([{ op, inputs: ['x'], outputs: ['y'], attrs: [intAttr('select_last_index', last)] }],
      { inputs: [valueInfo('x', [4])], outputInfos: [valueInfo('y', null, INT64)] }), new Tensor(Float32Array.from(v), [4]), 'y').data);
    expect(arg('ArgMax', 0, 3, 1, NaN, 3)).toEqual([2]);
    expect(arg('ArgMin', 1, 3, 1, NaN, 3)).toEqual([2]);
    // ties: the first index, or the last with select_last_index
    expect([arg('ArgMax', 0, 3, 1, 3, 1), arg('ArgMax', 1, 3, 1, 3, 1), arg('ArgMin', 0, 3, 1, 3, 1), arg('ArgMin', 1, 3, 1, 3, 1)]).toEqual([[0], [2], [1], [3]]);
    const ls = one([{ op: 'LogSoftmax', inputs: ['x'], outputs: ['y'] }], new Tensor(Float32Array.of(0, Math.log(3)), [2]));
    Array.from(ls.data).forEach((u, i) => expect(u).toBeCloseTo(Math.log([0.25, 0.75][i]), 6));
  });

  it('LessOrEqual and GreaterOrEqual hold on ties; And, Or, Xor and Not of their masks', () => {
    const x = new Tensor(Float32Array.of(0, 1, 2), [3]);
    const mask = (op: string) => Array.from(one([{ op: 'LessOrEqual', inputs: ['x', 'b'], outputs: ['p'] }, { op: 'GreaterOrEqual', inputs: ['x', 'b'], outputs: ['q'] },
      { op, inputs: op === 'Not' ? ['p'] : ['p', 'q'], outputs: ['m'] }, { op: 'Cast', inputs: ['m'], outputs: ['y'], attrs: [intAttr('to', FLOAT)] }], x, [tensor('b', [], FLOAT, f32(1))]).data);
    // x ≤ 1: [1, 1, 0]; x ≥ 1: [0, 1, 1]
    expect(['And', 'Or', 'Xor', 'Not'].map(mask)).toEqual([[0, 1, 0], [1, 1, 1], [1, 0, 1], [0, 0, 1]]);
  });

  it('Round halves to even; Mod takes the divisor\'s sign (fmod 0, integers) or the dividend\'s (fmod 1); IsInf detects the signs asked for; Neg and Abs keep int64', () => {
    const round = one([{ op: 'Round', inputs: ['x'], outputs: ['y'] }], new Tensor(Float32Array.of(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.6), [7]));
    expect(Array.from(round.data)).toEqual([-2, -2, -0, 0, 2, 2, 3]);
    const ints = (name: string, ...v: number[]) => tensor(name, [v.length], INT64, i64(...v));
    const modOf = (fmod: number) => Array.from(runOnnx(readOnnx(model([{ op: 'Mod', inputs: ['a', 'b'], outputs: ['y'], attrs: [intAttr('fmod', fmod)] }],
      { inputs: [], inits: [ints('a', -7, 7, -7, 7), ints('b', 3, -3, -3, 3)] })), {}).get('y')!.data);
    expect(modOf(0)).toEqual([2, -2, -1, 1]); // Python's %: −7 % 3 = 2, 7 % −3 = −2
    expect(modOf(1)).toEqual([-1, 1, -1, 1]); // C's fmod: the dividend's sign
    const x = new Tensor(Float32Array.of(-Infinity, Infinity, NaN, 1), [4]);
    const isInf = (neg: number, pos: number) => Array.from(run1(model([{ op: 'IsInf', inputs: ['x'], outputs: ['y'], attrs: [intAttr('detect_negative', neg), intAttr('detect_positive', pos)] }],
      { inputs: [valueInfo('x', [4])], outputInfos: [valueInfo('y', null, 9)] }), x, 'y').data);
    expect([isInf(1, 1), isInf(0, 1), isInf(1, 0)]).toEqual([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]]);
    for (const op of ['Neg', 'Abs']) {
      const y = runOnnx(readOnnx(model([{ op, inputs: ['a'], outputs: ['y'] }], { inputs: [], inits: [ints('a', -3, 4)] })), {}).get('y')!;
      expect([y.dtype, ...y.data]).toEqual(['int64', ...(op === 'Neg' ? [3, -4] : [3, 4])]);
    }
  });

  it('a 1-D Conv (N, C, L) pads, strides and dilates along L as a 2-D one of height 1 would; a 4-D weight on a 1-D input is refused', () => {
    // x = 0 … 6 on one channel, kernel (1, 2) dilated 2 (extent 3), stride 3, pads [1, 0]: ⌊(7 + 1 − 3)/3⌋ + 1 = 2
    // windows, starting at −1 and 2: y = x[s] + 2·x[s + 2] = 0 + 2·1 and 2 + 2·4 (x[−1] is padding)
    const x = new Tensor(Float32Array.from({ length: 7 }, (_, i) => i), [1, 1, 7]);
    const conv = (wDims: number[]) => one([{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'c', attrs: [intsAttr('strides', [3]), intsAttr('dilations', [2]), intsAttr('pads', [1, 0])] }],
      x, [tensor('w', wDims, FLOAT, f32(1, 2))]);
    const y = conv([1, 1, 2]);
    expect(y.shape).toEqual([1, 1, 2]);
    expect(Array.from(y.data)).toEqual([2, 10]);
    expect(() => conv([1, 1, 1, 2])).toThrow(/node 'c' \(Conv\): a 1-D input \(N, C, L\) needs a 3-D weight, got \[1, 1, 1, 2\]/);
  });

  it('ConvTranspose: output_shape and SAME crop the full output, the odd pad at the end for SAME_UPPER and at the start otherwise', () => {
    // x = [1, 2] scattering [1, 10, 100] with stride 2: the full output [1, 10, 102, 20, 200], one element too many for 4
    const x = new Tensor(Float32Array.of(1, 2), [1, 1, 1, 2]);
    const ct = (attr: ReturnType<typeof intAttr>) => Array.from(one([{ op: 'ConvTranspose', inputs: ['x', 'w'], outputs: ['y'], name: 't', attrs: [intsAttr('strides', [1, 2]), attr] }],
      x, [tensor('w', [1, 1, 1, 3], FLOAT, f32(1, 10, 100))]).data);
    expect(ct(intsAttr('output_shape', [1, 4]))).toEqual([10, 102, 20, 200]);
    expect(ct(strAttr('auto_pad', 'SAME_LOWER'))).toEqual([10, 102, 20, 200]);
    expect(ct(strAttr('auto_pad', 'SAME_UPPER'))).toEqual([1, 10, 102, 20]);
    expect(ct(strAttr('auto_pad', 'VALID'))).toEqual([1, 10, 102, 20, 200]);
    expect(() => ct(intsAttr('output_shape', [1, 6]))).toThrow(/node 't' \(ConvTranspose\): output_shape \[1, 6\] must be 2 spatial sizes from 1 to what the transposed conv reaches, \[1, 5\]/);
  });

  it('Max and Min propagate NaN and broadcast any number of inputs; PRelu\'s slope must broadcast to X\'s own shape', () => {
    const x = new Tensor(Float32Array.of(1, NaN, -3), [3]);
    const inits = [tensor('a', [1], FLOAT, f32(0)), tensor('b', [2, 1], FLOAT, f32(-1, 5))];
    const max = one([{ op: 'Max', inputs: ['x', 'a', 'b'], outputs: ['y'] }], x, inits);
    expect(max.shape).toEqual([2, 3]);
    expect(Array.from(max.data)).toEqual([1, NaN, 0, 5, NaN, 5]);
    expect(Array.from(one([{ op: 'Min', inputs: ['x', 'a'], outputs: ['y'] }], x, inits).data)).toEqual([0, NaN, -3]);
    expect(Array.from(one([{ op: 'PRelu', inputs: ['x', 'a'], outputs: ['y'] }], x, [tensor('a', [1], FLOAT, f32(0.5))]).data)).toEqual([1, NaN, -1.5]);
    expect(() => one([{ op: 'PRelu', inputs: ['x', 'b'], outputs: ['y'], name: 'p' }], x, inits)).toThrow(/node 'p' \(PRelu\): slope \[2, 1\] does not broadcast to X \[3\]/);
  });
});
