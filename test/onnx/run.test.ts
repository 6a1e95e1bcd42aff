// The ONNX evaluator on graphs from PyTorch's own exporter (fixtures/make_onnx_fixtures.py): every
// fixture at opsets 11 and 17, in float64 against PyTorch's float64 output and in float32 against
// PyTorch's float32 output and onnxruntime-web's.
//
// Tolerances (the model-level contract of test/nn/repvgg.test.ts, which these small networks share:
// at most ~20 layers of float32 sums of ≤ 200 products of O(1) values): float64 within
// 1e-10·max|ref| (u = 2⁻⁵³ ≈ 1.1e-16, times a summation depth of ≤ 200 per layer, ≤ 20 layers and a
// growth of ≤ 10⁴ through the unnormalised BNs, leaves 10⁻¹⁰ with margin); float32 within
// 1e-4·max|ref| (the same with u = 2⁻²⁴ ≈ 6e-8). A wrong op (a missing branch, a swapped axis, an
// off-by-one window) moves the outputs by O(max|ref|), four orders above.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { readOnnx } from '../../src/io/onnx_read.js';
import { ProtoMessage, int64sOf, protoFields } from '../../src/io/protobuf.js';
import { INT64, i64, tensor } from './build.js';
import { runOnnx } from '../../src/onnx/run.js';
import { readOnnxFile } from '../../src/cli/files.js';
import { poolStats, setMinMacsPerPart, setThreads, workersReady } from '../../src/backend/threads.js';
import { fixturePath, loadTorchFixture } from '../helpers.js';

ort.env.wasm.numThreads = 1;
const manifest = JSON.parse(readFileSync(fixturePath('onnx/manifest.json'), 'utf8')).files as Record<string, { reference: string; opset: number; ops: Record<string, number>; float64?: boolean }>;

const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

function load(file: string, info: { reference: string; opset: number; ops: Record<string, number> }) {
  const bytes = new Uint8Array(readFileSync(fixturePath(`onnx/${file}`)));
  const model = readOnnx(bytes);
  expect(model.opset).toBe(info.opset);
  const counts: Record<string, number> = {};
  for (const n of model.nodes) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  expect(counts).toEqual(info.ops); // the reader saw every node the exporter wrote
  return { bytes, model, ref: loadTorchFixture(`onnx/${info.reference.replace('.safetensors', '')}`) };
}

describe('runOnnx on PyTorch exports', () => {
  for (const [file, info] of Object.entries(manifest)) {
    if (info.float64 === true) {
      // the exporter folded BN into the convs in double: y@f64 is this graph's exact output
      it(`${file}: float64 matches PyTorch's float64 output`, () => {
        const { model, ref } = load(file, info);
        const y = runOnnx(model, { input: ref.t('x').to('float64') }, { dtype: 'float64' }).get('output')!;
        const r = ref.t('y@f64');
        expect(y.shape).toEqual(r.shape);
        expect(y.data).toBeInstanceOf(Float64Array);
        // The neck's LeakyRelu alpha (0.1) and HardSigmoid alpha (1/6) are float attributes, which ONNX
        // stores as float32: that graph's slopes differ from the double model's by up to u32 ≈ 6e-8
        // relative, so its bound is 1e-7·max|ref| (the others have no float attribute in the path).
        const tol = file.startsWith('neck') ? 1e-7 : 1e-10;
        expect(maxDiff(y.data, r.data)).toBeLessThanOrEqual(tol * maxAbs(r.data));
        expect(maxAbs(r.data)).toBeGreaterThan(0.1); // not vacuous
      });
      continue;
    }
    it(`${file}: float32 matches PyTorch and onnxruntime-web`, async () => {
      const { bytes, model, ref } = load(file, info);
      const x = ref.t('x');
      const y = runOnnx(model, { input: x }, { algorithm: 'im2col' }).get('output')!;
      const r = ref.t('y');
      expect(y.shape).toEqual(r.shape);
      expect(y.data).toBeInstanceOf(Float32Array);
      expect(maxDiff(y.data, r.data)).toBeLessThanOrEqual(1e-4 * maxAbs(r.data));
      const session = await ort.InferenceSession.create(bytes);
      const theirs = (await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape as number[]) })).output.data as Float32Array;
      await session.release();
      expect(maxDiff(y.data, theirs)).toBeLessThanOrEqual(1e-4 * maxAbs(r.data));
      expect(maxAbs(r.data)).toBeGreaterThan(0.1); // not vacuous
    });
  }
});

// The same exports relabeled as opsets 22 and 26 (IR 13), with the one change of encoding these graphs
// meet on the way, as onnx's version converter makes it: a reduction's axes become an input at opset
// 18. Opsets 22–26 change the ops they use only by the element types they allow
// (src/onnx/attributes.ts), so each graph computes what it did: PyTorch's float64 output within the
// bound above, and onnxruntime-web's (which reads opset 26 and refuses 27, as we do) in float32.
function relabeled(bytes: Uint8Array, opset: number): Uint8Array {
  const m = new ProtoMessage();
  for (const f of protoFields(bytes)) {
    if (f.field === 1) m.varint(1, 13); // IR 13: opset 26's
    else if (f.field === 7) m.bytes(7, reductionAxesAsInputs(f.bytes));
    else if (f.field === 8) m.message(8, new ProtoMessage().string(1, '').varint(2, opset));
    else if (f.wire === 2) m.bytes(f.field, f.bytes);
    else if (f.wire === 0) m.varint(f.field, f.varint);
    else throw new Error(`ModelProto field ${f.field} of wire type ${f.wire}: not expected in a PyTorch export`);
  }
  return m.encode();
}

// GraphProto: each Reduce* node's axes attribute → an int64 initializer named after the node, read as its second input
function reductionAxesAsInputs(graph: Uint8Array): Uint8Array {
  const g = new ProtoMessage();
  for (const f of protoFields(graph)) {
    if (f.field !== 1) {
      if (f.wire === 2) g.bytes(f.field, f.bytes);
      else throw new Error(`GraphProto field ${f.field} of wire type ${f.wire}: not expected in a PyTorch export`);
      continue;
    }
    const fields = [...protoFields(f.bytes)];
    const op = fields.find((x) => x.field === 4), name = fields.find((x) => x.field === 3);
    const axes = fields.find((x) => x.field === 5 && [...protoFields(x.bytes)].some((y) => y.field === 1 && new TextDecoder().decode(y.bytes) === 'axes'));
    if (op === undefined || !new TextDecoder().decode(op.bytes).startsWith('Reduce') || axes === undefined) {
      g.bytes(1, f.bytes);
      continue;
    }
    const values = [...protoFields(axes.bytes)].filter((y) => y.field === 8).flatMap((y) => (y.wire === 2 ? int64sOf(y, 'axes') : [Number(y.varint)]));
    const input = `${name === undefined ? 'reduce' : new TextDecoder().decode(name.bytes)}/axes`;
    const n = new ProtoMessage();
    const firstOutput = fields.findIndex((x) => x.field === 2);
    fields.forEach((x, k) => {
      if (k === firstOutput) n.string(1, input); // after the data input, before the outputs
      if (x !== axes) n.bytes(x.field, x.bytes);
    });
    g.bytes(1, n.encode()).message(5, tensor(input, [values.length], INT64, i64(...values)));
  }
  return g.encode();
}

describe('opsets 22 and 26 run as the graph\'s ops say', () => {
  for (const [file, info] of Object.entries(manifest)) {
    if (info.float64 === true) {
      it(`${file} relabeled as opsets 22 and 26: PyTorch's float64 output`, () => {
        const { bytes, ref } = load(file, info);
        const r = ref.t('y@f64'), tol = file.startsWith('neck') ? 1e-7 : 1e-10; // as above
        for (const opset of [22, 26]) {
          const model = readOnnx(relabeled(bytes, opset));
          expect(model.opset).toBe(opset);
          const y = runOnnx(model, { input: ref.t('x').to('float64') }, { dtype: 'float64' }).get('output')!;
          expect(maxDiff(y.data, r.data), `opset ${opset}`).toBeLessThanOrEqual(tol * maxAbs(r.data));
        }
      });
    } else if (info.opset === 17) {
      it(`${file} relabeled as opset 26: onnxruntime-web's float32 output`, async () => {
        const { bytes, ref } = load(file, info);
        const x = ref.t('x'), up = relabeled(bytes, 26);
        const y = runOnnx(readOnnx(up), { input: x }, { algorithm: 'im2col' }).get('output')!;
        const session = await ort.InferenceSession.create(up);
        const theirs = (await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape as number[]) })).output.data as Float32Array;
        await session.release();
        expect(maxDiff(y.data, theirs)).toBeLessThanOrEqual(1e-4 * maxAbs(ref.t('y').data)); // as above
      });
    }
  }
});

describe('runOnnx with workers', () => {
  // A model read from its file keeps its weights in the shared memory the file was read into, and a
  // run allocates its values there too: the pool's workers read the weights and write each conv's
  // output where they lie, so nothing is copied into or out of the pool (the copies a one-shot
  // `repvgg run` of A0 paid for: 1.30 -> 0.90 s). The same bits as on one thread.
  it('copies nothing into or out of the pool, and computes the bits one thread does', async () => {
    const info = manifest['resnet_basic_opset17.onnx'];
    const model = readOnnxFile(fixturePath('onnx/resnet_basic_opset17.onnx'));
    const x = loadTorchFixture(`onnx/${info.reference.replace('.safetensors', '')}`).t('x');
    const old = setMinMacsPerPart('wasm', 1); // the fixture's small convs split too
    try {
      setThreads(1);
      const one = Array.from(runOnnx(model, { input: x }, { algorithm: 'im2col' }).get('output')!.data);
      setThreads(2);
      await workersReady(1);
      const parts = poolStats.workerParts, copied = poolStats.copiedBytes;
      const two = Array.from(runOnnx(model, { input: x }, { algorithm: 'im2col' }).get('output')!.data);
      expect(poolStats.workerParts).toBeGreaterThan(parts); // the convs did split
      expect(poolStats.copiedBytes - copied).toBe(0);
      expect(two).toEqual(one);
    } finally {
      setMinMacsPerPart('wasm', old);
      setThreads(2);
    }
  });
});
