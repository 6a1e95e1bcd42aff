// convert --blocks (src/reparam/state_dict_blocks.ts) on a YOLO-style state dict built from the
// upstream-faithful block classes (fixtures/make_blocks_fixtures.py), against the deploy state dict
// each upstream's own switch to deploy gives. Passed-through keys: bit for bit. Fused kernels and
// biases: both sides compute in float64 from the same float32 parameters and round once to float32,
// so they can differ only where float64's different summation order (~1e-16 relative) straddles a
// float32 rounding boundary: at most 1 ulp.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../cli/run.js';
import { describe, expect, it } from 'vitest';
import { parseRawCheckpoint } from '../../src/io/checkpoint.js';
import { parseSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import { ulpDistance } from '../../src/io/compare.js';
import type { SafeEntry } from '../../src/io/safetensors.js';
import { fuseStateDictBlocks } from '../../src/reparam/state_dict_blocks.js';
import { fixturePath, loadTorchFixture } from '../helpers.js';

const stack = () => parseRawCheckpoint(new Uint8Array(readFileSync(fixturePath('blocks/yolo_stack.pth')))).entries;
const upstream = parseSafetensors(new Uint8Array(readFileSync(fixturePath('blocks/yolo_stack_deploy.safetensors')))).tensors;
const without = (m: Map<string, SafeEntry>, ...keys: string[]) => new Map([...m].filter(([k]) => !keys.includes(k)));

// Our fused state dict against an upstream deploy one, key by key: each shape; a key the fused pattern
// does not name passed through untouched (the input's values, and the upstream's); fused values ≤ 1 ulp.
function expectUpstreamDeploy(entries: Map<string, SafeEntry>, want: Map<string, SafeEntry>, input: Map<string, SafeEntry>, fusedKey: RegExp): void {
  let worst = 0;
  for (const [k, w] of want) {
    const got = entries.get(k)!;
    expect(got.shape, k).toEqual(w.shape);
    const fused = fusedKey.test(k);
    if (!fused) expect(got.data, k).toEqual(input.get(k)!.data);
    for (let i = 0; i < w.data.length; i++) worst = Math.max(worst, fused ? ulpDistance(Number(got.data[i]), Number(w.data[i]), 'float32') : Number(got.data[i] !== w.data[i]) * Infinity || 0);
  }
  expect(worst).toBeLessThanOrEqual(1);
}

describe('convert --blocks: the DBB and ACB blocks of a ResNet-style state dict, as DingXiaoH\'s repositories deploy them', () => {
  it('four DBBs (idconv, groups 2 stride 2, depthwise) and three ACBs found by their keys; the result is the upstream deploy state dict (≤ 1 ulp, the rest bit for bit)', () => {
    const input = parseRawCheckpoint(new Uint8Array(readFileSync(fixturePath('blocks/resnet_dbb_acb.pth')))).entries;
    const want = parseSafetensors(new Uint8Array(readFileSync(fixturePath('blocks/resnet_dbb_acb_deploy.safetensors')))).tensors;
    const { entries, blocks } = fuseStateDictBlocks(input);
    expect(blocks.map((b) => `${b.prefix} ${b.family} ${b.in}→${b.out} g${b.groups}`)).toEqual([
      'layer1.0.conv1. DBB 8→8 g1', 'layer1.0.conv2. ACB (ACNet) 8→8 g1', 'layer1.1.conv1. DBB 8→8 g1', 'layer1.1.conv2. ACB (ACNet) 8→8 g1',
      'layer2.0.conv1. DBB 8→16 g2', 'layer2.0.conv2. ACB (ACNet) 16→16 g1', 'dw. DBB 16→16 g16',
    ]);
    expect([...entries.keys()]).toEqual([...want.keys()]);
    expectUpstreamDeploy(entries, want, input, /(dbb_reparam|fused_conv)\./);
  });

  it('a DBB whose 1×1 branch contradicts its groups, and an ACB without its 1×k conv, are refused by prefix', () => {
    const input = parseRawCheckpoint(new Uint8Array(readFileSync(fixturePath('blocks/resnet_dbb_acb.pth')))).entries;
    expect(() => fuseStateDictBlocks(without(input, ...[...input.keys()].filter((k) => k.startsWith('layer1.0.conv1.dbb_1x1.'))))).toThrow(/^block 'layer1\.0\.conv1': has dbb_origin\.conv\.weight \(DBB\) but groups 1 with 8 outputs needs a dbb_1x1 branch; not fused$/);
    expect(() => fuseStateDictBlocks(without(input, 'layer2.0.conv2.hor_conv.weight'))).toThrow(/^block 'layer2\.0\.conv2': has square_conv\.weight \(ACB \(ACNet\)\) but no ver_conv and hor_conv; not fused$/);
  });
});

describe('convert --blocks: RepVGG with SE (RepVGG-D2se) under a prefix', () => {
  it('rbr_* become rbr_reparam, the SE is kept bit for bit; the fused kernel is DingXiaoH\'s, in float64 rounded once (≤ 1 ulp)', () => {
    const fx = loadTorchFixture('families/repvgg_se');
    const entries = new Map<string, SafeEntry>([['stem.weight', fx.raw('x')]]);
    for (const k of fx.keys.filter((k) => k.startsWith('state.'))) entries.set(`backbone.block.${k.slice(6)}`, fx.raw(k));
    const { entries: out, blocks } = fuseStateDictBlocks(entries, { eps: 1e-5 });
    expect(blocks.map((b) => `${b.prefix} ${b.family} ${b.in}→${b.out}`)).toEqual(['backbone.block. RepVGG / YOLOv6 RepVGGBlock 16→16']);
    expect([...out.keys()]).toEqual(['stem.weight', 'backbone.block.rbr_reparam.weight', 'backbone.block.rbr_reparam.bias', 'backbone.block.se.down.weight', 'backbone.block.se.down.bias', 'backbone.block.se.up.weight', 'backbone.block.se.up.bias']);
    for (const k of ['se.down.weight', 'se.down.bias', 'se.up.weight', 'se.up.bias']) expect(out.get(`backbone.block.${k}`)!.data).toBe(fx.raw(`state.${k}`).data);
    for (const [ours, theirs] of [['rbr_reparam.weight', 'fused.weight@f64'], ['rbr_reparam.bias', 'fused.bias@f64']]) {
      const got = out.get(`backbone.block.${ours}`)!.data, want = fx.raw(theirs).data;
      for (let i = 0; i < want.length; i++) expect(ulpDistance(Number(got[i]), Math.fround(Number(want[i])), 'float32'), `${ours}[${i}]`).toBeLessThanOrEqual(1);
    }
  });
});

describe('convert --blocks writes what PyTorch loads strictly into the upstream deploy network', () => {
  // fixtures/blocks/readback.json: torch.load(weights_only=True) of ours/NAME_deploy.pth, load_state_dict(strict=True)
  // into the network with each block in its upstream deploy form, and its eval output against the training-time
  // network's; held to docs/oracle.md's whole-model float32 bound 1e-4·max|y|. The files must be what convert writes today.
  it('the YOLO-style stack and the DBB/ACB ResNet: byte for byte the files PyTorch read back', async () => {
    const readback = JSON.parse(readFileSync(fixturePath('blocks/readback.json'), 'utf8')).files;
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-blocks-'));
    for (const [name, extra] of [['yolo_stack', ['--eps', '1e-3']], ['resnet_dbb_acb', []]] as const) {
      const r = readback[`${name}_deploy.pth`];
      expect(r.strict_load).toBe(true);
      expect(r.max_abs_diff_vs_training_time).toBeLessThanOrEqual(1e-4 * r.max_abs_y);
      const out = join(dir, `${name}.pth`);
      const c = await cli('convert', fixturePath(`blocks/${name}.pth`), out, '--blocks', ...extra);
      expect(c.code, c.err).toBe(0);
      expect(readFileSync(out).equals(readFileSync(fixturePath(`blocks/ours/${name}_deploy.pth`))), name).toBe(true);
    }
  });
});

describe('convert --blocks: a whole FastViT (stem, RepMixer stages, patch embeddings, RepCPE, attention, SE), as reparameterize_model deploys it', () => {
  // fixtures/make_fastvit_fixtures.py: a FastViT-SA-like network at reduced width with the real layout, in timm's
  // and apple's namings; the deploy state dict is each module's own reparameterize() in float64, rounded once.
  // Fused values: both sides float64 from the same float32 parameters, rounded once: ≤ 1 ulp (as above).
  for (const names of ['timm', 'apple'] as const) {
    it(`${names}: 15 blocks found, RepMixer's inner MobileOne taken with it; the deploy state dict key for key, fused ≤ 1 ulp, the rest bit for bit`, () => {
      const input = parseRawCheckpoint(new Uint8Array(readFileSync(fixturePath(`blocks/fastvit_${names}.pth`)))).entries;
      const want = parseSafetensors(new Uint8Array(readFileSync(fixturePath(`blocks/fastvit_${names}_deploy.safetensors`)))).tensors;
      const { entries, blocks } = fuseStateDictBlocks(input);
      const count = (label: RegExp) => blocks.filter((b) => label.test(b.family)).length;
      // stem 3 + a 1×1 block per patch embedding (3) + the final block; a RepMixer per RepMixer block (1 + 1 + 2);
      // a large-kernel conv per patch embedding; one RepCPE
      expect([count(/^MobileOne/), count(/^RepMixer/), count(/^large kernel/), count(/^RepCPE/), blocks.length]).toEqual([7, 4, 3, 1, 15]);
      expect(blocks.some((b) => /\.mixer\.$/.test(b.prefix))).toBe(false);
      // in order, but for apple's final block: its SE (registered before the branches) comes first in PyTorch's
      // state dict, and ours writes the fused conv first, as for every deploy block (load_state_dict reads by name)
      const order = (keys: string[]) => names === 'apple' ? [...keys.filter((k) => !k.startsWith('conv_exp.reparam_conv.')), ...keys.filter((k) => k.startsWith('conv_exp.reparam_conv.'))] : keys;
      expect(order([...entries.keys()])).toEqual(order([...want.keys()]));
      expectUpstreamDeploy(entries, want, input, /(reparam_conv|lkb_reparam)\./);
    });
  }

  it('PyTorch loads what convert writes strictly into the reparameterized network (fastvit_readback.json), byte for byte today\'s files', async () => {
    // the two networks' eval outputs in float32 differ by the float32 roundings of ~30 layers: held to docs/oracle.md's
    // whole-model bound 1e-4·max|y|, as the YOLO and ResNet readbacks
    const readback = JSON.parse(readFileSync(fixturePath('blocks/fastvit_readback.json'), 'utf8')).files;
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-fastvit-'));
    for (const names of ['timm', 'apple']) {
      const r = readback[`fastvit_${names}_deploy.pth`];
      expect(r.strict_load).toBe(true);
      expect(r.max_abs_diff_vs_training_time).toBeLessThanOrEqual(1e-4 * r.max_abs_y);
      const out = join(dir, `${names}.pth`);
      const c = await cli('convert', fixturePath(`blocks/fastvit_${names}.pth`), out, '--blocks');
      expect(c.code, c.err).toBe(0);
      expect(readFileSync(out).equals(readFileSync(fixturePath(`blocks/ours/fastvit_${names}_deploy.pth`))), names).toBe(true);
    }
  });

  it('a conv named pe outside network.N (apple) or pos_emb (timm) is an ordinary layer; a RepMixer or RepCPE in part is refused by prefix', () => {
    const input = parseRawCheckpoint(new Uint8Array(readFileSync(fixturePath('blocks/fastvit_apple.pth')))).entries;
    const moved = new Map([...input].map(([k, e]) => [k.replace(/^network\.6\.pe\./, 'neck.pe.'), e]));
    const { entries, blocks } = fuseStateDictBlocks(moved);
    expect(blocks.filter((b) => /^RepCPE/.test(b.family))).toEqual([]);
    expect(entries.get('neck.pe.weight')).toBe(moved.get('neck.pe.weight'));
    expect(() => fuseStateDictBlocks(without(input, 'network.0.0.token_mixer.norm.rbr_skip.running_var'))).toThrow("block 'network.0.0.token_mixer': has mixer.rbr_conv.0.conv.weight (RepMixer (apple FastViT)) but not both of mixer.rbr_skip and norm.rbr_skip; not fused");
    expect(() => fuseStateDictBlocks(without(input, 'network.6.pe.bias'))).toThrow("block 'network.6': has pe.weight (RepCPE (apple FastViT)) but no pe.bias; not fused");
    const wide = new Map(input);
    const w = input.get('network.6.pe.weight')!;
    wide.set('network.6.pe.weight', { ...w, shape: [64, 2, 7, 7], data: new Float32Array(64 * 2 * 49) });
    expect(() => fuseStateDictBlocks(wide)).toThrow("block 'network.6': has pe.weight (RepCPE (apple FastViT)) but pe is 64×2×7×7, not a depthwise odd square kernel; not fused");
  });
});

describe('convert --blocks: every Rep-block of a YOLO-style state dict, as each upstream deploys it', () => {
  it('seven blocks found by their keys (one in the neck), fused, and the result is the upstream deploy state dict (keys in order; values ≤ 1 ulp, the rest bit for bit)', () => {
    const input = stack();
    const { entries, blocks } = fuseStateDictBlocks(input, { eps: 1e-3 });
    expect(blocks.map((b) => `${b.prefix} ${b.family} ${b.in}→${b.out} g${b.groups} ${b.eps}`)).toEqual([
      'model.1. RepConv (Ultralytics) 8→8 g1 0.001', 'model.2. RepConv (YOLOv7) 8→16 g1 0.001', 'model.3. RepVGG / YOLOv6 RepVGGBlock 16→16 g1 0.001',
      'model.4. QARepVGG (YOLOv6) 16→24 g1 0.001', 'model.5. MobileOne (apple) 24→24 g24 0.00001', 'model.6. MobileOne (timm) 24→32 g1 0.00001',
      'model.9. RepConv (YOLOv7) 48→24 g1 0.001',
    ]);
    expect([...entries.keys()]).toEqual([...upstream.keys()]);
    expectUpstreamDeploy(entries, upstream, input, /(rbr_reparam|reparam_conv|model\.1\.conv)\./);
  });

  it('a block at the top level beside other keys: only its branches are taken, the rest passes through', () => {
    const input = new Map([...stack()].filter(([k]) => k.startsWith('model.2.') || k.startsWith('head.')).map(([k, e]) => [k.replace(/^model\.2\./, ''), e]));
    const { entries, blocks } = fuseStateDictBlocks(input);
    expect(blocks.map((b) => b.prefix)).toEqual(['']);
    expect([...entries.keys()]).toEqual(['rbr_reparam.weight', 'rbr_reparam.bias', 'head.weight', 'head.bias']);
    expect(entries.get('head.weight')).toBe(input.get('head.weight'));
    for (const k of ['weight', 'bias']) {
      const got = entries.get(`rbr_reparam.${k}`)!.data, want = upstream.get(`model.2.rbr_reparam.${k}`)!.data;
      for (let i = 0; i < want.length; i++) expect(ulpDistance(Number(got[i]), Number(want[i]), 'float32')).toBeLessThanOrEqual(1); // as above
    }
  });

  it('QARepVGG folded: its post-sum bn goes into rbr_reparam (one conv, not YOLOv6\'s deploy form)', () => {
    const { entries } = fuseStateDictBlocks(stack(), { eps: 1e-3, qarepvgg: 'folded' });
    expect([...entries.keys()].filter((k) => k.startsWith('model.4.'))).toEqual(['model.4.rbr_reparam.weight', 'model.4.rbr_reparam.bias']);
  });

  it('what the keys cannot say is refused with the block named, never guessed', () => {
    expect(() => fuseStateDictBlocks(stack())).toThrow("block 'model.3': its rbr_dense.conv / rbr_1x1.conv names are RepVGG's (BN eps 1e-5) and YOLOv6's RepVGGBlock's (1e-3), and a state dict does not record eps; say which with --eps");
    expect(() => fuseStateDictBlocks(without(stack(), 'model.2.rbr_1x1.1.running_var'), { eps: 1e-3 })).toThrow("block 'model.2': has rbr_dense.0.weight (RepConv (YOLOv7)) but not all of rbr_dense.1, rbr_1x1.0 and rbr_1x1.1; not fused");
    const extra = new Map(stack());
    extra.set('model.1.conv1.conv.bias', { dtype: 'F32', shape: [8], data: new Float32Array(8) });
    expect(() => fuseStateDictBlocks(extra, { eps: 1e-3 })).toThrow("block 'model.1' (RepConv (Ultralytics), 8→8, 3×3): unexpected key 'conv1.conv.bias'; not fused");
    // a QARepVGG block with in = out: its identity branch has no parameters and exists only at stride 1
    const qa = new Map([...stack()].filter(([k]) => k.startsWith('model.4.')).map(([k, e]) => [k, k === 'model.4.rbr_dense.conv.weight' ? { ...e, shape: [24, 24, 3, 3], data: new Float32Array(24 * 24 * 9) } : e]));
    expect(() => fuseStateDictBlocks(qa)).toThrow("block 'model.4': has rbr_dense.conv.weight (RepVGG / YOLOv6 RepVGGBlock or QARepVGG (YOLOv6)) but no rbr_1x1.conv.weight; in = out channels: its parameter-free identity branch exists only at stride 1, which a state dict does not record; not fused");
  });
});

describe('repvgg convert --blocks', () => {
  it('writes the fused state dict with the table of blocks; --eps alone is refused', async () => {
    const { cli } = await import('../cli/run.js');
    const { mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const out = join(mkdtempSync(join(tmpdir(), 'blocks-')), 'deploy.safetensors');
    const r = await cli('convert', fixturePath('blocks/yolo_stack.pth'), out, '--blocks', '--eps', '1e-3');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/model\.5\s+MobileOne \(apple\)\s+24→24\s+3×3\s+24\s+1e-5/);
    expect(r.out).toMatch(/7 block\(s\) fused, 117 → 31 keys/);
    const written = parseSafetensors(new Uint8Array(readFileSync(out))).tensors;
    expect([...written.keys()]).toEqual([...upstream.keys()]);
    const refused = await cli('convert', fixturePath('blocks/yolo_stack.pth'), `${out}2.safetensors`, '--eps', '1e-3');
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/--eps goes with --blocks/);
  });
  it('inspect says what another network holds: its Rep-blocks by family, and where convert --blocks needs --eps; a file with none is refused as before', async () => {
    const fv = await cli('inspect', fixturePath('blocks/fastvit_timm.pth'));
    expect(fv.code, fv.err).toBe(0);
    expect(fv.out).toContain('not a RepVGG or MobileOne network: 15 Rep-block(s) that `repvgg convert --blocks` fuses (280 → 100 tensors)');
    expect(fv.out).toContain('MobileOne (timm) ×7, RepMixer (timm FastViT) ×4, large kernel (timm FastViT) ×3, RepCPE (timm FastViT) ×1');
    expect(fv.out).not.toContain('--eps');
    const yolo = await cli('inspect', fixturePath('blocks/yolo_stack.pth'), '--json');
    const info = JSON.parse(yolo.out);
    expect([info.kind, info.tensors, info.deployTensors, info.blocks.length]).toEqual(['blocks', 117, 31, 7]);
    expect(info.blocks.filter((b: { epsFrom: string }) => b.epsFrom === 'option').map((b: { prefix: string }) => b.prefix)).toEqual(['model.3']);
    expect((await cli('inspect', fixturePath('blocks/yolo_stack.pth'))).out).toContain('1 block(s) named like RepVGG (BN eps 1e-5) and YOLOv6\'s RepVGGBlock (1e-3) alike: convert --blocks needs --eps');
    const dir = mkdtempSync(join(tmpdir(), 'blocks-inspect-'));
    const none = join(dir, 'none.safetensors');
    writeFileSync(none, serializeSafetensors(new Map([['fc.weight', { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } as SafeEntry]])));
    const refused = await cli('inspect', none);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/not a RepVGG state dict in any known naming/);
  });
});
