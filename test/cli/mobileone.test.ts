// The CLI on MobileOne checkpoints (fixtures/make_network_fixtures.py): every command that takes a
// RepVGG takes them too, recognised from the keys. Outputs are held to PyTorch's (fixtures/networks/):
// float32 runs within 16 × PyTorch's own float32 error (see test/nn/mobileone.test.ts).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './run.js';
import { parseNpy, serializeNpy } from '../../src/io/npy.js';
import { parseSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { MOBILEONE_ZOO, MobileOne } from '../../src/nn/mobileone.js';
import { fixturePath, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'repvgg-mobileone-'));
const net = (name: string) => fixturePath(`networks/${name}`);
const fx = loadTorchFixture('networks/mobileone_s4');
const rel = (got: ArrayLike<number>, want: ArrayLike<number>) => maxAbsDiff(got, want) / maxAbs(want);
const f32err = (key: string) => rel(fx.t(key).data, fx.t(`${key}@f64`).data);

describe('repvgg on MobileOne checkpoints', () => {
  it('convert writes the file PyTorch loaded strictly into apple\'s deploy network (readback.json), byte for byte', async () => {
    // readback.json: torch.load(weights_only=True) of ours/NAME_deploy.pth, load_state_dict(strict=True)
    // into the upstream inference_mode network, and its max |Δ| from upstream's own reparameterize_model
    const readback = JSON.parse(readFileSync(net('readback.json'), 'utf8')).files;
    const dir = tmp();
    for (const name of ['mobileone_s0', 'mobileone_s4', 'mobileone_s0_timm']) {
      expect(readback[`${name}_deploy.pth`]).toMatchObject({ strict_load: true, max_abs_diff_vs_upstream_deploy: 0 });
      const r = await cli('convert', net(`${name}.pth.tar`), join(dir, `${name}.pth`));
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain(`43 blocks fused`);
      expect(r.out).toContain(name.endsWith('timm') ? 'MobileOne, timm names' : 'MobileOne, apple (official) names');
      expect(readFileSync(join(dir, `${name}.pth`)).equals(readFileSync(net(`ours/${name}_deploy.pth`))), name).toBe(true); // (toEqual walks 10⁶ bytes slowly)
    }
  });

  it('forward (training-time and deploy), backward and export run the file to PyTorch\'s numbers', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'x.npy'), serializeNpy(fx.t('x')));
    writeFileSync(join(dir, 'dy.npy'), serializeNpy(fx.t('dy')));
    const y = async (ckpt: string) => {
      const r = await cli('forward', ckpt, '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--algorithm', 'im2col');
      expect(r.code, r.err).toBe(0);
      return parseNpy(readFileSync(join(dir, 'y.npy'))).data;
    };
    expect(rel(await y(net('mobileone_s4.pth.tar')), fx.t('y_eval@f64').data)).toBeLessThanOrEqual(16 * f32err('y_eval'));
    expect(rel(await y(net('ours/mobileone_s4_deploy.pth')), fx.t('y_deploy@f64').data)).toBeLessThanOrEqual(16 * f32err('y_deploy'));
    const b = await cli('backward', net('mobileone_s4.pth.tar'), '--input', join(dir, 'x.npy'), '--grad-output', join(dir, 'dy.npy'), '--out', join(dir, 'g.safetensors'));
    expect(b.code, b.err).toBe(0);
    const grads = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'g.safetensors')))).tensors;
    // float32 training-mode gradients against autograd's float64: 16 × autograd's own float32 error
    expect(rel(grads.get('input')!.data as Float32Array, fx.t('dx@f64').data)).toBeLessThanOrEqual(16 * f32err('dx'));
    expect(grads.size).toBe(fx.keys.filter((k) => k.startsWith('grad.') && k.endsWith('@f64')).length + 1);
    const e = await cli('export', net('ours/mobileone_s4_deploy.pth'), join(dir, 'd.onnx'));
    expect(e.out).toMatch(/deploy graph, opset 17, float32/);
    const r = await cli('run', join(dir, 'd.onnx'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'yo.npy'), '--algorithm', 'im2col');
    expect(r.code, r.err).toBe(0);
    expect(rel(parseNpy(readFileSync(join(dir, 'yo.npy'))).data, fx.t('y_deploy@f64').data)).toBeLessThanOrEqual(16 * f32err('y_deploy'));
  }, 20_000);

  it('quantize takes a deploy MobileOne (every conv: 43 blocks and the 12 SE blocks\' two; the classifier), and forward pins its plan', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'x.npy'), serializeNpy(fx.t('x')));
    const q = await cli('quantize', net('ours/mobileone_s4_deploy.pth'), '--calib', join(dir, 'x.npy'), '--out', join(dir, 'q.onnx'));
    expect(q.code, q.err).toBe(0);
    expect(q.out).toMatch(/wrote .*q\.onnx: 68 layer\(s\) quantized/); // and the classifier
    expect((await cli('run', join(dir, 'q.onnx'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'yq.npy'))).code).toBe(0);
    // the algorithm plan: saved by one run, pinned in the next; every conv of PyTorch's module named, the SE's too
    const a = await cli('forward', net('mobileone_s4.pth.tar'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y1.npy'), '--save-plan', join(dir, 'plan.json'));
    expect(a.code, a.err).toBe(0);
    const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8'));
    expect(plan.length).toBe(fx.keys.filter((k) => /conv\.weight@f64$|se\.(reduce|expand)\.weight@f64$/.test(k)).length);
    const b = await cli('forward', net('mobileone_s4.pth.tar'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y2.npy'), '--plan', join(dir, 'plan.json'));
    expect(b.code, b.err).toBe(0);
    expect(readFileSync(join(dir, 'y2.npy')).equals(readFileSync(join(dir, 'y1.npy')))).toBe(true);
  });

  it('quant-report --svg draws every layer\'s SQNRs and ratios and names the worst three', async () => {
    const dir = tmp();
    const s0 = loadTorchFixture('networks/mobileone_s0');
    writeFileSync(join(dir, 'x.npy'), serializeNpy(s0.t('x')));
    const r = await cli('quant-report', net('mobileone_s0.pth.tar'), '--calib', join(dir, 'x.npy'), '--svg', join(dir, 'r.svg'), '--json');
    expect(r.code, r.err).toBe(0);
    const { layers, worst } = JSON.parse(r.out) as { layers: { layer: string }[]; worst: string[] };
    const svg = readFileSync(join(dir, 'r.svg'), 'utf8');
    expect(svg).toMatch(/^<svg [^]*<\/svg>\n$/);
    const lines = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1].split(' ').length);
    expect(lines).toEqual([43, 43, 43, 43, 43]); // five series, one point per layer
    expect(layers).toHaveLength(43);
    for (const w of worst) expect(svg).toContain(`: ${w} (layer ${layers.findIndex((l) => l.layer === w)})`);
  });

  it('inspect names the family, its naming, the units per stage and the SE blocks', async () => {
    const r = await cli('inspect', net('mobileone_s4.pth.tar'));
    expect(r.out).toContain('names         MobileOne, apple (official: stage0, stageN.j, linear)');
    expect(r.out).toContain('architecture  not a zoo model: depthwise+pointwise units per stage 2, 8, 10, 1, widths 24, 56, 112, 256, 12 SE block(s), 3 input channels, 10 classes');
    const j = JSON.parse((await cli('inspect', net('ours/mobileone_s0_timm_deploy.pth'), '--json')).out);
    expect(j).toMatchObject({ family: 'MobileOne', names: 'timm', kind: 'deploy', blocks: [2, 8, 10, 1], widths: [6, 16, 32, 128], seBlocks: 0, numClasses: 10 });
  });

  it('init --arch S0 --names timm is timm\'s MobileOne-S0 (inspect recognises it); info gives the paper\'s columns; S4 builds what info counts', async () => {
    const dir = tmp();
    expect((await cli('init', '--arch', 'S0', '--names', 'timm', '--out', join(dir, 's0.safetensors'))).code).toBe(0);
    const j = JSON.parse((await cli('inspect', join(dir, 's0.safetensors'), '--json')).out);
    expect(j).toMatchObject({ names: 'timm', architecture: 'MobileOne-S0', convBranches: 4, parameters: 5293272 });
    const i = await cli('info', '--arch', 's0', '--json');
    expect(JSON.parse(i.out)).toMatchObject({ arch: 'MobileOne-S0', params: { train: 5293272, deploy: 2078504 }, macs: 275110400 });
    // S4 with apple's ⌊c/16⌋-wide SE: the model's own tensors against info's closed-form count (no 60 MB file written)
    const s4 = JSON.parse((await cli('info', '--arch', 'mobileone-s4', '--json')).out);
    expect(MobileOne.fromConfig(MOBILEONE_ZOO['MobileOne-S4']).parameterCount()).toBe(s4.params.train);
    expect(s4.params.train).toBe(14951248);
  });

  it('refusals: --names on a MobileOne convert, MMPretrain names for a MobileOne init, a stage cut in half', async () => {
    const dir = tmp();
    const r = await cli('convert', net('mobileone_s0.pth.tar'), join(dir, 'd.pth'), '--names', 'timm');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--names renames RepVGG keys; .* is a MobileOne, written in its own \(apple's\) names/);
    const i = await cli('init', '--arch', 's0', '--names', 'mmpretrain', '--out', join(dir, 'a.pth'));
    expect(i.err).toMatch(/MobileOne is named as apple \(official\) or timm names it/);
    // a pointwise block's keys dropped: the depthwise/pointwise pairing breaks at stage2.3
    const entries = parseCheckpoint(new Uint8Array(readFileSync(net('mobileone_s0.pth.tar')))).entries;
    writeFileSync(join(dir, 'cut.safetensors'), serializeSafetensors(new Map([...entries].filter(([k]) => !k.startsWith('stage2.3.')))));
    for (const cmd of [['inspect', join(dir, 'cut.safetensors')], ['convert', join(dir, 'cut.safetensors'), join(dir, 'c.pth')]]) {
      const c = await cli(...cmd);
      expect(c.code).not.toBe(0);
      expect(c.err).toMatch(/^repvgg: checkpoint: missing key 'stage2\.3\.rbr_conv\.0\.conv\.weight' \(each MobileOne stage is pairs of a depthwise and a pointwise block\)$/);
    }
  });
});
