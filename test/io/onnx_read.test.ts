// Hostile and malformed ONNX files: one clear line naming the node, tensor or byte offset; nothing
// allocated beyond what the file holds; no recursion on a file's nesting; unsupported ops refused up
// front with their node names. (PyTorch's exports are read and run in test/onnx/run.test.ts.)
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FLOAT, INT64, P, f32, model, tensor, valueInfo } from '../onnx/build.js';
import { readOnnx } from '../../src/io/onnx_read.js';
import { runOnnx } from '../../src/onnx/run.js';
import { readOnnxFile } from '../../src/cli/files.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { parseNpy, serializeNpy } from '../../src/io/npy.js';
import { cli } from '../cli/run.js';
import { fixturePath } from '../helpers.js';

/** Refused by our own error, in one short line without raw control characters. */
function refused(f: () => unknown, msg: RegExp): void {
  let err: Error | undefined;
  try { f(); } catch (e) { err = e as Error; }
  expect(err, 'it must throw').toBeInstanceOf(Error);
  expect(err!.name).toMatch(/^(OnnxError|OnnxRunError|ProtoError|Error)$/);
  expect(err!.message).not.toMatch(/\n|Cannot read|undefined|\[object|[\u0000-\u001f]/);
  expect(err!.message.length).toBeLessThan(600);
  expect(err!.message).toMatch(msg);
}

describe('malformed ONNX is refused in one line naming the node, tensor or byte offset', () => {
  const good = new Uint8Array(readFileSync(fixturePath('onnx/resnet_basic_opset17.onnx')));

  it('truncated, not protobuf, no graph, an old or future opset', () => {
    refused(() => readOnnx(good.subarray(0, good.length >> 1)), /byte offset \d+.*truncated/);
    refused(() => readOnnx(new TextEncoder().encode('hello, this is not a model')), /byte offset \d+|no graph/);
    refused(() => readOnnx(P().varint(1, 8).encode()), /has no graph/);
    refused(() => readOnnx(model([{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], { opset: 9 })), /opset 9 is outside the supported 11 to 26/);
    // ONNX 1.22's opset 27 is not read until its changes are checked (src/onnx/attributes.ts)
    refused(() => readOnnx(model([{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], { opset: 27, ir: 13 })), /opset 27 is outside the supported 11 to 26/);
    refused(() => readOnnx(model([{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], { opset: 26, ir: 14 })), /IR version 14 is not one this reader knows \(3 to 13\)/);
    expect(readOnnx(model([{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], { opset: 26, ir: 13 })).opset).toBe(26);
  });

  it('element types of IR 11–13 (float4e2m1, float8e8m0, uint2, int2) are refused naming the tensor and its byte offset', () => {
    for (const type of [23, 24, 25, 26]) {
      refused(() => readOnnx(model([{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }], { inits: [tensor('w', [1], type, new Uint8Array([0]))], opset: 26, ir: 13 })), new RegExp(`tensor 'w' \\(byte offset \\d+\\) has data type ${type}, which is not supported`));
    }
  });

  it('dims that disagree with the data are refused before anything is allocated (a 10¹⁸-element initializer in a 100-byte file)', () => {
    const t = performance.now();
    refused(() => readOnnx(model([{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }], { inits: [tensor('w', [1e9, 1e9], FLOAT, f32(1))] })), /tensor 'w' \(byte offset \d+\) has shape \[1000000000, 1000000000\] of float32: 4000000000000000000 bytes, but its data holds 4/);
    refused(() => readOnnx(model([{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }], { inits: [tensor('w', [1e9], FLOAT, null)] })), /tensor 'w' .* has 1000000000 elements by its dims but stores 0/);
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it('a dangling input, a value produced twice, a cycle and an output nothing produces name the node', () => {
    refused(() => readOnnx(model([{ op: 'Add', inputs: ['x', 'nowhere'], outputs: ['y'], name: 'add1' }])), /node 'add1' \(Add\) reads 'nowhere', which no node, input or initializer produces/);
    refused(() => readOnnx(model([{ op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'a' }, { op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'b' }])), /tensor 'y' is produced twice \(node 'b' and node 'a'\)/);
    refused(() => readOnnx(model([{ op: 'Add', inputs: ['x', 'q'], outputs: ['p'], name: 'n1' }, { op: 'Relu', inputs: ['p'], outputs: ['q'], name: 'n2' }], { outputs: ['q'] })), /the graph has a cycle through node 'n1'/);
    refused(() => readOnnx(model([{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], { outputs: ['z'] })), /graph output 'z' is produced by no node/);
  });

  it('nodes out of order are sorted (the format asks for topological order; some tools do not keep it)', () => {
    const m = readOnnx(model([{ op: 'Relu', inputs: ['a'], outputs: ['b'], name: 'second' }, { op: 'Neg', inputs: ['x'], outputs: ['a'], name: 'first' }], { outputs: ['b'] }));
    expect(m.nodes.map((n) => n.name)).toEqual(['first', 'second']);
    const y = runOnnx(m, { x: new Tensor(new Float32Array([1, -2]), [1, 2]) }).get('b')!;
    expect(Array.from(y.data)).toEqual([0, 2]);
  });

  it('a subgraph nested 10⁵ deep costs nothing to read (never decoded), and its op is refused up front with every unsupported node named', () => {
    // 10⁵ GraphProto/NodeProto levels as raw bytes (field 1 inside field 1 …), written in one pass from
    // the lengths (our own writer recurses, so it cannot build this); the attribute's 'g' is field 6
    const depth = 100_000, leaf = new TextEncoder().encode('leaf');
    const varintLen = (n: number) => { let k = 1; while (n >= 128) { n = Math.floor(n / 128); k++; } return k; };
    const lens = [leaf.length];
    for (let k = 1; k <= depth; k++) lens.push(lens[k - 1] + 1 + varintLen(lens[k - 1]));
    const deep = new Uint8Array(lens[depth]);
    let at = 0;
    for (let k = depth; k >= 1; k--) {
      deep[at++] = 0x0a; // field 1, LEN
      for (let n = lens[k - 1]; ; n = Math.floor(n / 128)) { if (n < 128) { deep[at++] = n; break; } deep[at++] = (n & 0x7f) | 0x80; }
    }
    deep.set(leaf, at);
    const attr = P().string(1, 'then_branch').varint(20, 5).bytes(6, deep);
    const bytes = model([{ op: 'If', inputs: ['x'], outputs: ['y'], name: 'cond', attrs: [attr] }, { op: 'NonMaxSuppression', inputs: ['y'], outputs: ['z'], name: 'nms' }]);
    const t = performance.now(); // building the nested bytes above is the slow part; reading skips them
    const m = readOnnx(bytes);
    refused(() => runOnnx(m, { x: new Tensor(new Float32Array(2), [1, 2]) }), /2 node\(s\) use ops this evaluator does not run: If \('cond'\), NonMaxSuppression \('nms'\); nothing was run/);
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it('a run whose values would not fit is refused before allocating, with the estimate', () => {
    const shape = tensor('s', [2], INT64, new Uint8Array(new BigInt64Array([100000n, 100000n]).buffer));
    const m = readOnnx(model([{ op: 'ConstantOfShape', inputs: ['s'], outputs: ['big'] }, { op: 'Add', inputs: ['x', 'big'], outputs: ['y'] }], { inits: [shape] }));
    refused(() => runOnnx(m, { x: new Tensor(new Float32Array(2), [1, 2]) }, { memoryLimit: 2 ** 30 }), /a value of shape \[100000, 100000\] would bring the memory held to 37\.25 GiB, over the 1\.0 GiB limit; refused before allocating/);
  });

  it('an input of the wrong shape, a missing input and a stray one are named', () => {
    const m = readOnnx(model([{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], { inputs: [valueInfo('x', ['N', 2])] }));
    refused(() => runOnnx(m, { x: new Tensor(new Float32Array(3), [1, 3]) }), /input 'x' has shape \[1, 3\], but the graph declares \[N, 2\]/);
    refused(() => runOnnx(m, {}), /no value given for graph input 'x'/);
    refused(() => runOnnx(m, { x: new Tensor(new Float32Array(2), [1, 2]), z: new Tensor(new Float32Array(1), [1]) }), /'z' is not an input of this graph/);
    expect(Array.from(runOnnx(m, { x: new Tensor(new Float32Array([-1, 3]), [1, 2]) }).get('y')!.data)).toEqual([0, 3]);
  });

  it('1000 single-byte corruptions of a PyTorch export: each is read or refused cleanly', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, v) => {
      const b = good.slice();
      b[at] = v;
      try { readOnnx(b); } catch { refused(() => readOnnx(b), /./); }
    }), { numRuns: 1000, seed: 21 });
  });
});

describe('external data stays inside the model\'s folder', () => {
  const ext = (location: string, length = 8) => model([{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }], {
    inits: [tensor('w', [1, 2], FLOAT, null, (m) => m.message(13, P().string(1, 'location').string(2, location)).message(13, P().string(1, 'length').string(2, String(length))).varint(14, 1))],
  });

  it('a tensor in a file beside the model is read (only its bytes); .., absolute paths and links out are refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-onnx-')), outside = mkdtempSync(join(tmpdir(), 'repvgg-outside-'));
    writeFileSync(join(dir, 'weights.bin'), f32(0.5, -2));
    writeFileSync(join(dir, 'ok.onnx'), ext('weights.bin'));
    const m = readOnnxFile(join(dir, 'ok.onnx'));
    expect(Array.from(runOnnx(m, { x: new Tensor(new Float32Array([1, 1]), [1, 2]) }).get('y')!.data)).toEqual([1.5, -1]);
    writeFileSync(join(outside, 'secret.bin'), f32(1, 2));
    symlinkSync(join(outside, 'secret.bin'), join(dir, 'link.bin'));
    for (const [loc, msg] of [['../secret.bin', /not a path inside the model's folder/], [join(outside, 'secret.bin'), /not a path inside the model's folder/],
      ['link.bin', /leads outside the model's folder \(through a link\)/], ['missing.bin', /does not exist next to the model/]] as const) {
      writeFileSync(join(dir, 'm.onnx'), ext(loc));
      refused(() => readOnnxFile(join(dir, 'm.onnx')), msg);
    }
    writeFileSync(join(dir, 'long.onnx'), ext('weights.bin', 8e9));
    refused(() => readOnnxFile(join(dir, 'long.onnx')), /\(8 bytes\) but its external length is 8000000000/);
  });
});

describe('repvgg run', () => {
  it("--algorithm winograd runs Winograd where it applies and im2col elsewhere (a ResNet with a stride-2 stem and 1×1 shortcuts), as forward does", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-run-wino-'));
    const x = new Tensor(Float32Array.from({ length: 2 * 3 * 32 * 30 }, (_, i) => Math.sin(i)), [2, 3, 32, 30]);
    writeFileSync(join(dir, 'x.npy'), serializeNpy(x));
    const model = fixturePath('onnx/resnet_basic_opset17.onnx');
    for (const algorithm of ['winograd', 'im2col']) {
      const r = await cli('run', model, '--input', join(dir, 'x.npy'), '--out', join(dir, `${algorithm}.npy`), '--algorithm', algorithm);
      expect(r.code, r.err).toBe(0);
    }
    const [w, i] = ['winograd', 'im2col'].map((a) => parseNpy(readFileSync(join(dir, `${a}.npy`))));
    let m = 0, d = 0;
    for (let k = 0; k < i.size; k++) { m = Math.max(m, Math.abs(i.data[k])); d = Math.max(d, Math.abs(w.data[k] - i.data[k])); }
    expect(d).toBeLessThanOrEqual(1e-4 * m); // float32 through the net's few layers: two summation orders (test/ops bounds each conv)
  });

  it('runs a PyTorch export on an .npy and writes the output; refuses a model with unsupported ops, naming them, before reading the input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-run-'));
    const { serializeNpy, parseNpy } = await import('../../src/io/npy.js');
    const { loadTorchFixture } = await import('../helpers.js');
    const ref = loadTorchFixture('onnx/resnet_basic');
    writeFileSync(join(dir, 'x.npy'), serializeNpy(ref.t('x')));
    const r = await cli('run', fixturePath('onnx/resnet_basic_opset17.onnx'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--algorithm', 'im2col');
    expect(r.err).toBe('');
    expect(r.out).toMatch(/wrote .*y\.npy: 'output' shape \[2, 5\] float32 \(17 nodes, opset 17\)/);
    const y = parseNpy(new Uint8Array(readFileSync(join(dir, 'y.npy'))));
    const want = ref.t('y');
    let big = 0;
    for (let i = 0; i < want.size; i++) big = Math.max(big, Math.abs(want.data[i]));
    for (let i = 0; i < want.size; i++) expect(Math.abs(y.data[i] - want.data[i])).toBeLessThanOrEqual(1e-4 * big); // the model contract (test/onnx)
    writeFileSync(join(dir, 'nms.onnx'), model([{ op: 'NonMaxSuppression', inputs: ['x'], outputs: ['y'], name: 'nms/1' }]));
    const bad = await cli('run', join(dir, 'nms.onnx'), '--input', join(dir, 'nope.npy'), '--out', join(dir, 'z.npy'));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/uses 1 op type\(s\) this evaluator does not run: NonMaxSuppression \(1 node\(s\), first 'nms\/1'\); nothing was run/);
  });
});

describe('int64 values as a TensorProto stores them', () => {
  it('int64_data (not raw), packed or not, with Slice\'s INT64_MAX sentinel saturating exactly like raw_data', () => {
    const starts = tensor('starts', [1], INT64, null, (m) => m.varint(7, 1)); // one varint
    // packed: INT64_MAX as a 9-byte varint inside one LEN field
    const ends = tensor('ends', [1], INT64, null, (m) => m.bytes(7, Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])));
    const m = readOnnx(model([{ op: 'Slice', inputs: ['x', 'starts', 'ends'], outputs: ['y'] }], { inits: [starts, ends], inputs: [valueInfo('x', [4])] }));
    expect(Array.from(m.initializers.get('ends')!.data)).toEqual([Number.MAX_SAFE_INTEGER]);
    const y = runOnnx(m, { x: new Tensor(new Float32Array([5, 6, 7, 8]), [4]) }).get('y')!;
    expect(Array.from(y.data)).toEqual([6, 7, 8]);
  });
});

describe('no recursion or argument spread on a file\'s sizes', () => {
  it('a tensor with 10⁶ packed dims is read; a chain of 2·10⁴ Adds (deeper than a recursive walk survives) is read, run and walked by fuse-onnx', async () => {
    const { fuseOnnx } = await import('../../src/onnx/fuse.js');
    const packed = new Uint8Array(1_000_000).fill(1); // one-byte varints: a million dims of 1
    const t = tensor('w', [], FLOAT, f32(2), (m) => m.bytes(1, packed));
    const m1 = readOnnx(model([{ op: 'Identity', inputs: ['w'], outputs: ['y'] }], { inits: [t] }));
    expect(m1.initializers.get('w')!.dims.length).toBe(1_000_000);
    const n = 20_000;
    const nodes = Array.from({ length: n }, (_, i) => ({ op: 'Add', inputs: [i === 0 ? 'x' : `s${i - 1}`, 'x'], outputs: [`s${i}`] }));
    const m2 = readOnnx(model(nodes));
    expect(Array.from(runOnnx(m2, { x: new Tensor(new Float32Array([1, 2]), [1, 2]) }).get(`s${n - 1}`)!.data)).toEqual([n + 1, 2 * (n + 1)]);
    expect(fuseOnnx(m2).fused).toEqual([]); // no Conv among the branches: nothing to fuse, and no stack overflow
  });
});

describe('adoptBytes: tensors view the file\'s buffer, moved to alignment, or are copied when moving would overlap', () => {
  it('every fixture reads to the same tensors as the copying read', () => {
    for (const name of ['dbb_block_opset17.onnx', 'neck_opset11.onnx', 'repvgg_train_opset17_f64.onnx']) {
      const bytes = new Uint8Array(readFileSync(fixturePath(`onnx/${name}`)));
      const copied = readOnnx(bytes);
      const adopted = readOnnx(bytes.slice(), { adoptBytes: true });
      expect([...adopted.initializers.keys()]).toEqual([...copied.initializers.keys()]);
      for (const [k, t] of copied.initializers) expect(adopted.initializers.get(k)).toEqual(t);
      expect(adopted.nodes).toEqual(copied.nodes); // Constant nodes' tensors too
    }
  });
  it('raw data 4 bytes after the one before it (fields out of the usual order) is copied, not moved over it', () => {
    const DOUBLE = 11;
    const f64 = (...v: number[]) => new Uint8Array(new Float64Array(v).buffer);
    for (let k = 0; k < 8; k++) { // every placement of b's data modulo 8: moving it down by 5–7 would overwrite a's last bytes
      const pad = tensor('pad', [k], 2, new Uint8Array(k)); // uint8
      const a = tensor('a', [3], 3, new Uint8Array(Int8Array.of(-7, 100, 5).buffer)); // int8 (never moved), raw_data last
      const b = P().bytes(9, f64(3.125, 1e300)).varint(1, 2).varint(2, DOUBLE).string(8, 'b'); // raw_data first: 4 bytes after a's
      const bytes = model([{ op: 'Add', inputs: ['a', 'b'], outputs: ['y'] }], { inits: [pad, a, b], inputs: [] });
      const m = readOnnx(bytes, { adoptBytes: true });
      expect([...m.initializers.get('a')!.data]).toEqual([-7, 100, 5]);
      expect([...m.initializers.get('b')!.data]).toEqual([3.125, 1e300]);
    }
  });
});
