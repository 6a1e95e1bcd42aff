// ONNX exports run by onnxruntime-web (wasm, in Node) and compared elementwise with our forward and
// with PyTorch's, within the derived forward error bound (test/helpers.ts forwardErrorBound).
// float64 exports: onnxruntime has no float64 Conv, so fixtures/make_pth_fixtures.py checks them
// with onnx.checker and evaluates them with PyTorch's ops (fixtures/pth/readback.*).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { modelFromStateDict } from '../../src/io/state_dict.js';
import { toOnnx } from '../../src/io/onnx.js';
import { convert } from '../../src/reparam/repvgg.js';
import type { RepVGG } from '../../src/nn/repvgg.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { fixturePath, forwardErrorBound, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';

ort.env.wasm.numThreads = 1;
const exp = loadTorchFixture('pth/expected');
const bytesOf = (name: string) => new Uint8Array(readFileSync(fixturePath(`pth/${name}`)));
const trainModel = () => modelFromStateDict(parseCheckpoint(bytesOf('official_train.pth')).entries).eval().setAlgorithm('im2col');

/** The first n images of the fixture batch. */
function batch(n: number): Tensor {
  const x = exp.t('input');
  const per = x.size / x.shape[0];
  return new Tensor(x.data.slice(0, n * per), [n, ...x.shape.slice(1)]);
}

async function runOnnx(bytes: Uint8Array, x: Tensor): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

function withinBound(got: ArrayLike<number>, ref: ArrayLike<number>, bound: Float64Array, what: string) {
  for (let i = 0; i < bound.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= 2 * bound[i])) throw new Error(`${what}: logit ${i}: |${got[i]} − ${ref[i]}| = ${d} > 2·E = ${2 * bound[i]}`);
  }
}

describe.each([1, 2])('onnxruntime-web runs our exports (batch %i, one file for every batch size)', (n) => {
  const cases: [string, () => RepVGG, string][] = [
    ['training-time graph (Conv, BatchNormalization, Add, Relu)', trainModel, 'eval.output'],
    ['deploy graph (Conv+Relu chain)', () => convert(trainModel()).setAlgorithm('im2col'), 'deploy.output'],
  ];
  for (const [what, make, ref] of cases) {
    it(what, async () => {
      const model = make();
      const x = batch(n);
      const ours = model.forward(x);
      const theirs = await runOnnx(toOnnx(model), x);
      const bound = forwardErrorBound(model, x);
      withinBound(theirs, ours.data, bound, 'onnxruntime vs repvgg-ts');
      const torch = exp.t(ref).data.subarray(0, n * 5);
      withinBound(theirs, torch, bound, 'onnxruntime vs PyTorch');
      // not vacuous: under 0.1% of the largest logit (here ~3.5e-4 of it; a wrong graph is off by O(1))
      expect(Math.max(...bound)).toBeLessThan(1e-3 * maxAbs(ours));
    }, 20_000);
  }
});

describe('ONNX export options', () => {
  it('opsets 11 and 21 both load and agree (IR version follows the opset)', async () => {
    const model = convert(trainModel()).setAlgorithm('im2col');
    const x = batch(1);
    const bound = forwardErrorBound(model, x);
    for (const opset of [11, 21]) withinBound(await runOnnx(toOnnx(model, { opset }), x), model.forward(x).data, bound, `opset ${opset}`);
    expect(() => toOnnx(model, { opset: 9 })).toThrow(/opset 9 is not supported \(supported: 11 to 21\)/);
  }, 20_000);

  it('float64 exports: PyTorch evaluated our files (onnx.checker passed) and agrees with our float64 forward', () => {
    const report = JSON.parse(readFileSync(fixturePath('pth/readback.json'), 'utf8')).files;
    const readback = loadTorchFixture('pth/readback');
    const trainF64 = modelFromStateDict(parseCheckpoint(bytesOf('ours/init_official_f64.pth')).entries).eval().setAlgorithm('im2col');
    for (const [file, model] of [['train_f64.onnx', trainF64], ['deploy_f64.onnx', convert(trainF64).setAlgorithm('im2col')]] as const) {
      expect(report[file].checker).toMatch(/passed/);
      // the committed file is what toOnnx writes today, so PyTorch's verdict applies to it
      expect(toOnnx(model)).toEqual(new Uint8Array(readFileSync(fixturePath(`pth/ours/${file}`))));
      const y = model.forward(exp.t('input').to('float64'));
      // float64 chain as in test/nn/repvgg.test.ts: ≤ 1e-10·max|ref|
      expect(maxAbsDiff(y, readback.t(file)), file).toBeLessThanOrEqual(1e-10 * maxAbs(readback.t(file)));
    }
  });
});
