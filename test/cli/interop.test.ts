// The CLI on checkpoints people hold (.pth, timm, MMPretrain) and on ONNX export.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './run.js';
import { parseNpy, serializeNpy } from '../../src/io/npy.js';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { modelFromStateDict } from '../../src/io/state_dict.js';
import { toOnnx } from '../../src/io/onnx.js';
import { fixturePath, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'repvgg-interop-'));
const pth = (name: string) => fixturePath(`pth/${name}`);
const exp = loadTorchFixture('pth/expected');

describe('repvgg inspect', () => {
  it('says what a timm training checkpoint is', async () => {
    const r = await cli('inspect', pth('timm_train.pth'));
    expect(r.code).toBe(0);
    expect(r.out).toContain("format        pth-zip (state dict under 'state_dict')");
    expect(r.out).toContain("also holds    'epoch', 'arch', 'optimizer', 'version', 'args', 'metric', 'state_dict_ema'");
    expect(r.out).toContain('records       args: argparse.Namespace (inert: never imported or called)');
    expect(r.out).toContain('names         timm');
    expect(r.out).toContain('model         training-time');
    expect(r.out).toContain('not a zoo model: blocks per stage 1, 2, 2, 1, 1, widths 8, 8, 16, 32, 64, groups 1/2/4, 3 input channels, 5 classes');
    expect(r.out).toContain('parameters    29,701 in 96 tensors');
  });

  it('--json for an MMPretrain deploy checkpoint; recognises a zoo architecture', async () => {
    const j = JSON.parse((await cli('inspect', pth('mmpretrain_deploy.pth'), '--json')).out);
    expect(j).toMatchObject({ format: 'pth-zip', wrapperKey: 'state_dict', otherKeys: ['meta'], names: 'mmpretrain', kind: 'deploy', architecture: null, parameters: 26325, dtypes: { F32: 16 } });
    const dir = tmp();
    expect((await cli('init', '--arch', 'A0', '--names', 'timm', '--out', join(dir, 'a0.pth'))).code).toBe(0);
    const a0 = JSON.parse((await cli('inspect', join(dir, 'a0.pth'), '--json')).out);
    // 9,108,968 trainable parameters: the paper's training-time A0 (see test/cli/cli.test.ts)
    expect(a0).toMatchObject({ format: 'pth-zip', names: 'timm', kind: 'training-time', architecture: 'RepVGG-A0', parameters: 9108968, numClasses: 1000 });
  }, 20_000);
});

describe('repvgg convert / init write what PyTorch read back', () => {
  // fixtures/pth/readback.json records torch.load(weights_only=True) of these files; they must be
  // exactly what the commands write today for that record to speak for the current writer.
  for (const names of ['official', 'timm', 'mmpretrain']) {
    it(`convert official_train.pth → deploy_${names}.pth is byte-identical to the file PyTorch read`, async () => {
      const dir = tmp();
      const out = join(dir, `deploy_${names}.pth`);
      const r = await cli('convert', pth('official_train.pth'), out, '--names', names);
      expect(r.err).toBe('');
      expect(readFileSync(out)).toEqual(readFileSync(pth(`ours/deploy_${names}.pth`)));
    });
  }

  it('init --names timm and init --float64 are byte-identical to the files PyTorch read', async () => {
    const dir = tmp();
    await cli('init', '--config', pth('ours/config.json'), '--seed', '3', '--names', 'timm', '--out', join(dir, 'a.pth'));
    await cli('init', '--config', pth('ours/config.json'), '--seed', '4', '--float64', '--out', join(dir, 'b.pth'));
    expect(readFileSync(join(dir, 'a.pth'))).toEqual(readFileSync(pth('ours/init_timm.pth')));
    expect(readFileSync(join(dir, 'b.pth'))).toEqual(readFileSync(pth('ours/init_official_f64.pth')));
  });

  it('the output naming defaults to the input\'s: an MMPretrain checkpoint converts to MMPretrain deploy keys', async () => {
    const dir = tmp();
    expect((await cli('convert', pth('mmpretrain.pth'), join(dir, 'd.safetensors'))).code).toBe(0);
    expect(parseCheckpoint(readFileSync(join(dir, 'd.safetensors'))).dialect).toBe('mmpretrain');
  });
});

describe('formats are read from the bytes, never the name', () => {
  it('forward runs a .pth renamed .safetensors, and --key picks the EMA weights of a timm checkpoint', async () => {
    const dir = tmp();
    copyFileSync(pth('official_train.pth'), join(dir, 'misnamed.safetensors'));
    writeFileSync(join(dir, 'x.npy'), serializeNpy(exp.t('input')));
    for (const [ckpt, key, ref] of [[join(dir, 'misnamed.safetensors'), [], 'eval.output'], [pth('timm_train.pth'), ['--key', 'state_dict_ema'], 'ema.eval.output']] as const) {
      const r = await cli('forward', ckpt, ...key, '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--algorithm', 'im2col');
      expect(r.err).toBe('');
      const y = parseNpy(readFileSync(join(dir, 'y.npy')));
      expect(maxAbsDiff(y, exp.t(ref))).toBeLessThanOrEqual(1e-4 * maxAbs(exp.t(ref))); // model contract, test/nn/repvgg.test.ts
    }
  });
});

describe('repvgg export', () => {
  it('writes the same bytes as toOnnx for a training-time and a deploy checkpoint', async () => {
    const dir = tmp();
    for (const file of ['official_train.pth', 'official_deploy.pth']) {
      const r = await cli('export', pth(file), join(dir, 'm.onnx'), '--opset', '13');
      expect(r.err).toBe('');
      expect(r.out).toMatch(file.includes('deploy') ? /deploy graph, opset 13, float32/ : /training-time \(eval\) graph, opset 13, float32/);
      const model = modelFromStateDict(parseCheckpoint(readFileSync(pth(file))).entries).eval();
      expect(readFileSync(join(dir, 'm.onnx'))).toEqual(Buffer.from(toOnnx(model, { opset: 13 })));
    }
  });
});

describe('bad interop input: one line naming the flag, key or file', () => {
  const CASES: [string[], RegExp][] = [
    [['convert', pth('official_train.pth'), '/tmp/x.txt'], /DEPLOY '\/tmp\/x\.txt': name the output \.pth, \.pt, \.bin or \.pth\.tar \(PyTorch\) or \.safetensors/],
    [['convert', pth('official_train.pth'), '/tmp/x.pth', '--names', 'keras'], /--names must be one of official, timm, mmpretrain, got 'keras'/],
    [['convert', pth('official_deploy.pth'), '/tmp/x.pth'], /already a deploy checkpoint \(it has rbr_reparam keys\)/],
    [['export', pth('official_train.pth'), '/tmp/x.bin'], /OUT '\/tmp\/x\.bin': name the output \.onnx/],
    [['export', pth('official_train.pth'), '/tmp/x.onnx', '--opset', '7'], /opset 7 is not supported/],
    [['inspect', pth('train_run.pth'), '--key', 'nope'], /no key 'nope'/],
    [['inspect', pth('readback.json')], /unrecognised first bytes/],
  ];
  for (const [argv, msg] of CASES) {
    it(argv.slice(0, 1).concat(argv.slice(2).map((a) => a.replace(/.*\//, ''))).join(' '), async () => {
      const r = await cli(...argv);
      expect(r.code).not.toBe(0);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
    });
  }
});
