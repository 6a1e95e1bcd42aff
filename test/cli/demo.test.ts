// demo, train and ablate on a tiny slice of the bundled data (uncompressed IDX, to cover that path).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { cli } from './run.js';
import { fixturePath } from '../helpers.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { loadIdxDir } from '../../src/cli/data.js';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { mobileOnePlanFromStateDict, modelFromStateDict } from '../../src/io/state_dict.js';
import { accuracy, predict } from '../../src/train/fit.js';
import { parseNpy, serializeNpy } from '../../src/io/npy.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { DEMO_CONFIG } from '../../src/cli/commands/demo.js';
import { type AblationResult, type AblationRow, formatAblation, meanStd } from '../../src/cli/commands/ablate.js';

function tinyData(nTrain: number, nTest: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'repvgg-data-'));
  const cut = (stem: string, n: number, item: number) => {
    const raw = gunzipSync(readFileSync(fixturePath(`fashion-mnist/${stem}.gz`)));
    const ndim = raw[3];
    const head = Buffer.from(raw.subarray(0, 4 + 4 * ndim));
    head.writeUInt32BE(n, 4);
    writeFileSync(join(dir, stem), Buffer.concat([head, raw.subarray(4 + 4 * ndim, 4 + 4 * ndim + n * item)]));
  };
  cut('train-images-idx3-ubyte', nTrain, 784);
  cut('train-labels-idx1-ubyte', nTrain, 1);
  cut('t10k-images-idx3-ubyte', nTest, 784);
  cut('t10k-labels-idx1-ubyte', nTest, 1);
  return dir;
}

describe('repvgg demo', () => {
  it('trains, converts, verifies and writes the report folder; --json prints the summary', async () => {
    const data = tinyData(256, 100);
    const out = join(mkdtempSync(join(tmpdir(), 'repvgg-demo-')), 'report');
    const r = await cli('demo', '--data', data, '--epochs', '2', '--out', out, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(Object.keys(s).sort()).toEqual(['accuracy', 'agreement', 'int8', 'maxAbsDiff', 'seconds', 'speedup', 'testAccuracyPerEpoch']);
    // test accuracy after every epoch; the last one recomputed here from the saved checkpoint, run
    // as the demo evaluated it during training (im2col, eval mode): the same bits, the same count
    expect(s.testAccuracyPerEpoch).toHaveLength(2);
    const { test } = await loadIdxDir(data);
    const model = modelFromStateDict(parseCheckpoint(new Uint8Array(readFileSync(join(out, 'train.safetensors')))).entries).setAlgorithm('im2col');
    expect(s.testAccuracyPerEpoch[1]).toBe(accuracy(predict(model, test.x), test.y));
    // and the evaluation between epochs left training alone: every BN saw every step in training
    // mode (2 epochs × ⌈256/32⌉ batches), which an eval-mode epoch would not count
    const st = parseSafetensors(new Uint8Array(readFileSync(join(out, 'train.safetensors'))));
    const tracked = [...st.tensors.entries()].filter(([k]) => k.endsWith('num_batches_tracked'));
    expect(tracked.length).toBeGreaterThan(0);
    for (const [k, e] of tracked) expect(Number((e.data as BigInt64Array)[0]), k).toBe(16);
    expect(s.agreement).toBe(1);
    expect(s.maxAbsDiff).toBeLessThan(1e-3); // float32 through 7 fused blocks; see test/reparam
    expect(s.accuracy.train).toBeGreaterThan(0.2); // 10 classes: chance is 0.1
    expect(Math.abs(s.accuracy.train - s.accuracy.deploy)).toBeLessThanOrEqual(0.01);
    for (const f of ['train.safetensors', 'deploy.safetensors', 'report.md', 'curves.svg']) expect(existsSync(join(out, f))).toBe(true);
    expect(readFileSync(join(out, 'curves.svg'), 'utf8')).toMatch(/^<svg[^]*<polyline[^]*<\/svg>\n$/);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('| test accuracy |');
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/\| 2 \| \d\.\d{4} \| \d+\.\d\d% \| \d+\.\d\d% \|/); // epoch 2: loss, train, test
    expect(readFileSync(join(out, 'curves.svg'), 'utf8')).toContain('test, after each epoch');
    // INT8: the saved deploy checkpoint through `quantize` (calibrated on the first 256 training images,
    // all of this set) and `run`, as a user would: the accuracy the demo reports, per channel
    const { train } = await loadIdxDir(data);
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-demo-int8-'));
    writeFileSync(join(dir, 'calib.npy'), serializeNpy(train.x));
    writeFileSync(join(dir, 'x.npy'), serializeNpy(test.x));
    expect((await cli('quantize', join(out, 'deploy.safetensors'), '--calib', join(dir, 'calib.npy'), '--out', join(dir, 'q.onnx'))).code).toBe(0);
    expect((await cli('run', join(dir, 'q.onnx'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--algorithm', 'im2col')).code).toBe(0);
    const y = parseNpy(readFileSync(join(dir, 'y.npy')));
    expect(s.int8.perChannel).toBe(accuracy(new Tensor(y.data as Float32Array, y.shape), test.y));
    // --calib DATA: the folder's first 256 training images, normalized as training reads them: the same file
    expect((await cli('quantize', join(out, 'deploy.safetensors'), '--calib', data, '--out', join(dir, 'q2.onnx'))).code).toBe(0);
    expect(readFileSync(join(dir, 'q2.onnx')).equals(readFileSync(join(dir, 'q.onnx')))).toBe(true);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/INT8 deploy model \(repvgg quantize, calibrated on 256 training images; run as exact integers\): test accuracy \d+\.\d\d% per tensor, \d+\.\d\d% per channel\./);
    expect(r.err).toMatch(/train epoch 2\/2: loss/);
  });
});

describe('repvgg train', () => {
  it('trains, checkpoints every epoch, and resumes where it stopped', async () => {
    const data = tinyData(128, 50);
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-train-'));
    const ck = join(dir, 'ck.safetensors');
    const one = await cli('train', '--data', data, '--epochs', '1', '--batch-size', '32', '--out', ck);
    expect(one.code).toBe(0);
    expect(one.out).toMatch(/test accuracy \d+\.\d\d% on 50 images/);
    expect(parseSafetensors(new Uint8Array(readFileSync(ck))).metadata.step).toBe('4');
    const first = readFileSync(ck);
    const two = await cli('train', '--data', data, '--epochs', '2', '--batch-size', '32', '--resume', ck, '--out', ck);
    expect(two.code).toBe(0);
    expect(two.err).toContain('resuming from');
    expect(parseSafetensors(new Uint8Array(readFileSync(ck))).metadata.step).toBe('8');
    // the same seed (the default, 0) gives the same model, byte for byte
    const again = join(dir, 'again.safetensors');
    expect((await cli('train', '--data', data, '--epochs', '1', '--batch-size', '32', '--out', again)).code).toBe(0);
    expect(readFileSync(again).equals(first)).toBe(true);
    const bad = await cli('train', '--data', join(dir, 'nope'), '--out', ck);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/data directory '.*nope' does not exist/);
    const wrongArch = await cli('train', '--data', data, '--arch', 'A0', '--epochs', '1', '--out', join(dir, 'a0.safetensors'));
    expect(wrongArch.err).toContain('the model takes 3 input channels but the data has 1');
  });

  it('trains a MobileOne from its config (width_multipliers) and resumes it from the checkpoint\'s keys', async () => {
    const data = tinyData(64, 20);
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-train-'));
    const cfg = join(dir, 'mobileone.json'), ck = join(dir, 'mo.safetensors');
    writeFileSync(cfg, JSON.stringify({ width_multipliers: [0.125, 0.125, 0.125, 0.125], num_blocks_per_stage: [1, 1, 1, 1], num_conv_branches: 2, use_se: true, in_channels: 1, num_classes: 10 }));
    const one = await cli('train', '--data', data, '--config', cfg, '--epochs', '1', '--batch-size', '16', '--out', ck);
    expect(one.code, one.err).toBe(0);
    expect(mobileOnePlanFromStateDict(parseSafetensors(new Uint8Array(readFileSync(ck))).tensors).plan.blocks.map((b) => b.branches)).toEqual([1, 2, 2, 2, 2, 2, 2, 2, 2]);
    const two = await cli('train', '--data', data, '--epochs', '2', '--batch-size', '16', '--resume', ck, '--out', ck);
    expect(two.code, two.err).toBe(0);
    expect(parseSafetensors(new Uint8Array(readFileSync(ck))).metadata.step).toBe('8');
  });
});

describe('repvgg ablate', () => {
  interface Row { name: string; paper: { accuracy: number; speed?: number }; params: number; fuses: boolean; note?: string; accuracy: number[]; mean: number; std: number; speed: { trainingTime: number[]; deploy: number[] | null }; deployAgreement: number[] | null }
  const data = tinyData(64, 40);

  it('int8: RepVGG and QARepVGG deployed in INT8 per tensor and per channel over seeds, the drops and a verdict held to the standard error', async () => {
    const r = await cli('ablate', '--table', 'int8', '--data', data, '--epochs', '1', '--seeds', '2', '--json');
    expect(r.code, r.err).toBe(0);
    const o = JSON.parse(r.out) as AblationResult;
    expect(o.rows.map((x) => [x.name, x.paper.accuracy])).toEqual([['RepVGG', 52.2], ['QARepVGG', 70.4]]);
    expect(o.config).toEqual(DEMO_CONFIG); // the demo's model: its INT8 drop with error bars
    expect(o.rows.map((x) => x.params)).toEqual([...new Set(o.rows.map((x) => x.params))]); // two designs, two parameter counts
    for (const x of o.rows) {
      for (const v of [...x.accuracy, ...x.int8!.perTensor, ...x.int8!.perChannel]) expect(Math.abs(v * 40 - Math.round(v * 40))).toBeLessThan(1e-9); // k of 40 correct
      expect(x.int8!.perTensor).toHaveLength(2);
      expect(x.int8!.perChannel).toHaveLength(2);
    }
    // the printed table from the same object: the drops are FP32 − INT8 per seed, and the verdict follows the standard error
    const lines = formatAblation(o);
    const drop = (x: AblationRow) => x.accuracy.map((a, i) => a - x.int8!.perTensor[i]);
    const d = o.rows.map((x) => meanStd(drop(x))), diff = d[0].mean - d[1].mean, se = Math.sqrt((d[0].std ** 2 + d[1].std ** 2) / 2);
    expect(lines.find((l) => l.startsWith('RepVGG '))).toContain(`${(100 * d[0].mean).toFixed(2)} ± ${(100 * d[0].std).toFixed(2)}`);
    expect(lines.find((l) => l.startsWith("QARepVGG's claim"))).toMatch(diff > 2 * se ? /holds here/ : diff < -2 * se ? /does not hold here/ : /is not shown at this scale/);
  });

  it('fig6: the four branch variants over seeds, mean ± sample sd, speeds, beside the paper; a seed reproduces its row', async () => {
    const r = await cli('ablate', '--data', data, '--epochs', '1', '--seeds', '2', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out) as { table: string; seeds: number[]; epochs: number; trainImages: number; testImages: number; seconds: number; rows: Row[] };
    expect([o.table, o.seeds, o.epochs, o.trainImages, o.testImages]).toEqual(['fig6', [0, 1], 1, 64, 40]);
    expect(o.rows.map((x) => x.paper)).toEqual([{ accuracy: 72.39, speed: 1810 }, { accuracy: 74.79, speed: 1569 }, { accuracy: 73.15, speed: 1230 }, { accuracy: 75.14, speed: 1061 }]);
    expect(o.rows[0].params).toBeLessThan(o.rows[1].params);
    expect(o.rows[1].params).toBeLessThan(o.rows[3].params);
    for (const x of o.rows) {
      expect(x.accuracy).toHaveLength(2);
      for (const a of x.accuracy) expect(Math.abs(a * 40 - Math.round(a * 40))).toBeLessThan(1e-9); // k of 40 correct
      // the mean and the sample standard deviation (n − 1) of the two seeds, computed here
      const m = (x.accuracy[0] + x.accuracy[1]) / 2;
      expect(x.mean).toBeCloseTo(m, 12);
      expect(x.std).toBeCloseTo(Math.abs(x.accuracy[0] - x.accuracy[1]) / Math.SQRT2, 12);
      expect(x.fuses).toBe(true);
      expect(x.deployAgreement).toEqual([1, 1]); // the deployed network predicts the same class on every test image
      for (const v of [...x.speed.trainingTime, ...x.speed.deploy!]) expect(v).toBeGreaterThan(0);
    }
    // same budget, data order and seed: seed 1 alone gives seed 1's accuracies again (the table, as printed)
    const again = await cli('ablate', '--data', data, '--epochs', '1', '--seeds', '1', '--seed', '1');
    const printed = again.out.split('\n').map((l) => l.match(/(\d+\.\d\d) ± 0\.00%/)?.[1]).filter((v) => v !== undefined);
    expect(printed).toEqual(o.rows.map((x) => (100 * x.accuracy[1]).toFixed(2)));
  });

  it('fig7: the eight designs of Table 6 and Residual Reorg; the two that cannot fuse say so', async () => {
    const r = await cli('ablate', '--table', 'fig7', '--data', data, '--epochs', '1', '--seeds', '1', '--json');
    expect(r.code).toBe(0);
    const rows = (JSON.parse(r.out) as { rows: Row[] }).rows;
    expect(rows.map((x) => [x.name, x.paper.accuracy, x.fuses])).toEqual([
      ['Identity w/o BN', 74.18, true], ['Post-addition BN', 73.52, true], ['RepVGG', 75.14, true], ['+ReLU in branch', 75.69, false],
      ['DiracNet', 73.97, true], ['Trivial Re-param', 73.51, true], ['ACB', 73.58, true], ['Residual Reorg', 74.56, false],
    ]);
    for (const x of rows) {
      expect(x.speed.deploy === null).toBe(!x.fuses);
      if (x.fuses) expect(x.deployAgreement).toEqual([1]);
      else expect(x.note).toMatch(/^cannot fuse: a ReLU/);
    }
  });

  it('reports the sample standard deviation (n − 1), as the error bars of a few seeds need', () => {
    // 1, 2, 3, 4: mean 2.5, Σ(x − x̄)² = 5, s = √(5/3)
    expect(meanStd([1, 2, 3, 4])).toEqual({ mean: 2.5, std: Math.sqrt(5 / 3) });
    expect(meanStd([0.8])).toEqual({ mean: 0.8, std: 0 });
  });

  it('refuses an unknown table', async () => {
    const r = await cli('ablate', '--table', 'fig8');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--table must be one of fig6, fig7/);
  });
});
