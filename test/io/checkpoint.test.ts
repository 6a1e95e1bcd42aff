// Finding the state dict in the wrappers real runs save, and the three key namings, against
// checkpoints PyTorch wrote from modules laid out as the official repo, timm and MMPretrain lay them out.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkpointFormat, parseCheckpoint, parseRawCheckpoint, serializeCheckpoint } from '../../src/io/checkpoint.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { detectDialect, renameKeys } from '../../src/io/dialects.js';
import { loadStateDict, modelFromStateDict, stateDict } from '../../src/io/state_dict.js';
import { RepVGG } from '../../src/nn/repvgg.js';
import type { SafeEntry } from '../../src/io/dtypes.js';
import { fixturePath, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';

const exp = loadTorchFixture('pth/expected');
const bytesOf = (name: string) => new Uint8Array(readFileSync(fixturePath(`pth/${name}`)));
const read = (name: string, key?: string) => parseCheckpoint(bytesOf(name), { key });
const official = read('official_train.pth').entries;

// float32 model contract as in test/nn/repvgg.test.ts: ≤ 1e-4·max|ref|.
function evalMatches(entries: Map<string, SafeEntry>, refKey: string) {
  const y = modelFromStateDict(entries).eval().setAlgorithm('im2col').forward(exp.t('input'));
  expect(maxAbsDiff(y, exp.t(refKey))).toBeLessThanOrEqual(1e-4 * maxAbs(exp.t(refKey)));
}

describe('wrappers and namings, each against PyTorch\'s output for the same weights', () => {
  const CASES: [file: string, key: string | undefined, format: string, wrapper: string | null, dialect: string, ref: string][] = [
    ['train_run.pth', undefined, 'pth-zip', 'model', 'official', 'eval.output'], // {'model' (module.-prefixed), 'optimizer', 'epoch', 'args'}
    ['pytorch_model.bin', undefined, 'pth-zip', null, 'timm', 'eval.output'],
    ['timm_model.safetensors', undefined, 'safetensors', null, 'timm', 'eval.output'],
    ['timm_train.pth', undefined, 'pth-zip', 'state_dict', 'timm', 'eval.output'],
    ['timm_train.pth', 'state_dict_ema', 'pth-zip', 'state_dict_ema', 'timm', 'ema.eval.output'],
    ['mmpretrain.pth', undefined, 'pth-zip', 'state_dict', 'mmpretrain', 'eval.output'],
    ['mmpretrain_deploy.pth', undefined, 'pth-zip', 'state_dict', 'mmpretrain', 'deploy.output'],
  ];
  for (const [file, key, format, wrapper, dialect, ref] of CASES) {
    it(`${file}${key === undefined ? '' : ` --key ${key}`}: ${format}, ${wrapper ?? 'top level'}, ${dialect} names`, () => {
      const ck = read(file, key);
      expect(ck).toMatchObject({ format, wrapperKey: wrapper, dialect });
      evalMatches(ck.entries, ref);
      if (ref === 'eval.output') for (const [k, e] of official) expect(ck.entries.get(k)!.data, k).toEqual(e.data);
    });
  }

  it('lists what else a wrapper holds', () => {
    expect(read('train_run.pth').otherKeys).toEqual(['optimizer', 'epoch', 'args']);
    expect(read('timm_train.pth').otherKeys).toEqual(['epoch', 'arch', 'optimizer', 'version', 'args', 'metric', 'state_dict_ema']);
    expect(read('mmpretrain.pth').otherKeys).toEqual(['meta', 'message_hub']);
  });

  it('--key errors name the keys there are; a key holding no dict says what it holds', () => {
    expect(() => read('train_run.pth', 'weights')).toThrow(/no key 'weights' \(top-level keys: 'model', 'optimizer', 'epoch', 'args'\)/);
    expect(() => read('train_run.pth', 'epoch')).toThrow(/'epoch' holds 3, not a state dict/);
    expect(() => read('train_run.pth', 'args')).toThrow(/'args' holds a pickled 'argparse\.Namespace' object, not a state dict/);
    expect(() => read('train_run.pth', 'optimizer')).toThrow(/'state' .*not a RepVGG state dict|non-string key|holds a dict|not a tensor/);
    expect(() => parseCheckpoint(bytesOf('timm_model.safetensors'), { key: 'model' })).toThrow(/safetensors file holds one flat state dict/);
  });
});

describe('naming rules', () => {
  it('every key maps both ways between the namings (official ↔ timm ↔ MMPretrain)', () => {
    const train = stateDict(RepVGG.fromConfig({ num_blocks: [2, 2, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], num_classes: 5 }));
    for (const d of ['timm', 'mmpretrain'] as const) {
      const there = renameKeys(train, 'official', d);
      expect(detectDialect(there.keys())).toBe(d);
      expect([...renameKeys(there, d, 'official').keys()]).toEqual([...train.keys()]);
    }
    // the names the real libraries use, spot-checked against their module layouts
    const timm = [...renameKeys(train, 'official', 'timm').keys()];
    expect(timm).toContain('stem.conv_kxk.conv.weight');
    expect(timm).toContain('stages.0.1.identity.running_var');
    expect(timm).toContain('stages.3.0.conv_1x1.bn.num_batches_tracked');
    expect(timm).toContain('head.fc.bias');
    const mm = [...renameKeys(train, 'official', 'mmpretrain').keys()];
    expect(mm).toContain('backbone.stem.branch_3x3.norm.running_mean');
    expect(mm).toContain('backbone.stage_1.1.branch_norm.weight');
    expect(mm).toContain('backbone.stage_4.0.branch_1x1.conv.weight');
  });

  it('a key outside the naming is named; SE blocks say why', () => {
    const timm = renameKeys(official, 'official', 'timm');
    timm.set('stages.0.0.attn.fc.weight', timm.get('head.fc.weight')!);
    expect(() => renameKeys(timm, 'timm', 'official')).toThrow(/state dict \(timm names\): unexpected key 'stages\.0\.0\.attn\.fc\.weight'/);
    const mm = renameKeys(official, 'official', 'mmpretrain');
    mm.set('backbone.stage_1.0.se_layer.conv1.conv.weight', mm.get('head.fc.weight')!);
    expect(() => renameKeys(mm, 'mmpretrain', 'official')).toThrow(/se_layer.*squeeze-and-excitation/);
  });

  it('loading stays strict after renaming: a missing or mis-shaped key is named', () => {
    const m = RepVGG.fromConfig({ num_blocks: [2, 2, 1, 1], width_multiplier: [0.125, 0.125, 0.125, 0.125], override_groups_map: { 2: 2, 4: 4 }, num_classes: 5 });
    const short = new Map(official);
    short.delete('stage1.0.rbr_1x1.bn.running_var');
    expect(() => loadStateDict(m, short)).toThrow(/missing key 'stage1\.0\.rbr_1x1\.bn\.running_var'/);
    const bad = new Map(official);
    bad.set('linear.bias', { dtype: 'F32', shape: [6], data: new Float32Array(6) });
    expect(() => loadStateDict(m, bad)).toThrow(/'linear\.bias' has shape \[6\], expected \[5\]/);
  });

  it('an unknown naming is refused with the first keys', () => {
    expect(() => detectDialect(['features.0.weight', 'classifier.weight'])).toThrow(/not a RepVGG state dict in any known naming.*'features\.0\.weight'/);
  });
});

describe('formats come from the bytes', () => {
  it('recognises each format whatever the file is called', () => {
    expect(checkpointFormat(bytesOf('pytorch_model.bin'))).toBe('pth-zip');
    expect(checkpointFormat(bytesOf('official_legacy.pth'))).toBe('pth-legacy');
    expect(checkpointFormat(bytesOf('timm_model.safetensors'))).toBe('safetensors');
    expect(() => checkpointFormat(new TextEncoder().encode('not a checkpoint at all'))).toThrow(/unrecognised first bytes/);
  });

  it('writes either format in any naming; reading it back gives the same tensors', () => {
    for (const format of ['pth', 'safetensors'] as const) {
      for (const names of ['official', 'timm', 'mmpretrain'] as const) {
        const back = parseCheckpoint(serializeCheckpoint(official, { format, names }));
        expect(back.dialect).toBe(names);
        expect([...back.entries.keys()]).toEqual([...official.keys()]);
        for (const [k, e] of official) expect(back.entries.get(k)!.data, k).toEqual(e.data);
      }
    }
  });
});

describe('a pickled module tree (torch.save({\'model\': model}), as the YOLO trainers save) is read as its state dict, never run', () => {
  const pt = () => new Uint8Array(readFileSync(fixturePath('blocks/yolo_model.pt')));
  const flat = parseRawCheckpoint(new Uint8Array(readFileSync(fixturePath('blocks/yolo_stack.pth')))).entries;
  it('model: the same keys, in state_dict() order, and values as model.state_dict() saved on its own; the classes are named, not imported', () => {
    const ck = parseRawCheckpoint(pt());
    expect(ck.wrapperKey).toBe('model');
    expect(ck.otherKeys).toEqual(['epoch', 'optimizer', 'ema']);
    expect([...ck.entries.keys()]).toEqual([...flat.keys()]);
    for (const [k, e] of flat) expect(ck.entries.get(k)!.data, k).toEqual(e.data);
    expect(ck.records.slice(0, 3)).toEqual([
      { at: 'model', cls: 'torch.nn.modules.module.Module' }, { at: 'model.model', cls: 'torch.nn.modules.container.Sequential' }, { at: 'model.model.0', cls: '__main__.UltralyticsConv' }]);
  });
  it('--key ema: the float16 copy, widened exactly to float32 (as PyTorch\'s .float() gives)', () => {
    const ck = parseRawCheckpoint(pt(), { key: 'ema' });
    const want = parseSafetensors(new Uint8Array(readFileSync(fixturePath('blocks/yolo_model_ema_fp16.safetensors')))).tensors;
    expect([...ck.entries.keys()]).toEqual([...want.keys()]);
    for (const [k, e] of want) expect(ck.entries.get(k)!.data, k).toEqual(e.data);
  });
});
