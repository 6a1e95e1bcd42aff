import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cli } from './run.js';
import { ZOO } from '../../src/nn/config.js';
import { parseNpy, serializeNpy } from '../../src/io/npy.js';
import { parseSafetensors, serializeSafetensors, tensorOf, type SafeEntry } from '../../src/io/safetensors.js';
import { RepVGG } from '../../src/nn/repvgg.js';
import { stateDict } from '../../src/io/state_dict.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';
import type { RepVGGConfig } from '../../src/nn/config.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'repvgg-cli-'));

describe('repvgg info', () => {
  it('A0 exactly: train 9,108,968, deploy 8,309,384 params, 1,361,451,008 MACs', async () => {
    const r = await cli('info', '--arch', 'RepVGG-A0', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    // Winograd F(2×2,3×3) multiplications, by hand: each stride-1 3×3 layer's MACs / 2.25 (16 instead of
    // 36 per 2×2 tile), the stride-2 layers and the classifier as they are: stage0 16,257,024; stage1
    // 65,028,096 + 28,901,376; stage2 32,514,048 + 3·28,901,376; stage3 32,514,048 + 13·28,901,376;
    // stage4 108,380,160; linear 1,280,000 — 747,296,768 in all.
    expect(j).toEqual({ arch: 'RepVGG-A0', params: { train: 9108968, deploy: 8309384 }, macs: 1361451008, winogradMuls: 747296768 });
  });
  // The RepVGG paper's Table 4: deploy params (M, truncated to 2 decimals), Theo FLOPs (B), Wino MULs (B).
  const PAPER: Record<string, [string, number, number]> = {
    A0: ['8.30', 1.4, 0.7], A1: ['12.78', 2.4, 1.3], A2: ['25.49', 5.1, 2.7], B0: ['14.33', 3.1, 1.6],
    B1: ['51.82', 11.8, 5.9], B1g2: ['41.36', 8.8, 4.6], B1g4: ['36.12', 7.3, 3.9], B2: ['80.31', 18.4, 9.1],
    B2g4: ['55.77', 11.3, 6.0], B3: ['110.96', 26.2, 12.9], B3g4: ['75.62', 16.1, 8.4],
  };
  for (const [arch, [params, flops, wino]] of Object.entries(PAPER)) {
    it(`RepVGG-${arch} reproduces the paper's table`, async () => {
      const j = JSON.parse((await cli('info', '--arch', arch, '--json')).out);
      expect((Math.trunc(j.params.deploy / 1e4) / 100).toFixed(2)).toBe(params);
      expect(Number((j.macs / 1e9).toFixed(1))).toBe(flops);
      expect(Number((j.winogradMuls / 1e9).toFixed(1))).toBe(wino);
    });
  }
  it('prints a readable per-stage table', async () => {
    const r = await cli('info', '--arch', 'B0');
    expect(r.out).toMatch(/stage3\s+16\s+256\s+14×14/);
    expect(r.out).toContain('deploy params 14.33 M');
  });
  it('covers the whole zoo', () => expect(Object.keys(ZOO)).toHaveLength(11));
});

describe('repvgg init / forward / backward', () => {
  const fx = loadTorchFixture('repvgg_small');
  const cfg = fx.meta.config as RepVGGConfig;
  const writeFixtureCheckpoint = (dir: string, prefix = '') => {
    const st = new Map<string, SafeEntry>();
    for (const key of stateDict(RepVGG.fromConfig(cfg)).keys()) st.set(prefix + key, fx.raw('state.' + key));
    const p = join(dir, 'ckpt.safetensors');
    writeFileSync(p, serializeSafetensors(st));
    return p;
  };

  it('forward on a PyTorch-trained checkpoint matches PyTorch (eval and train, float32 and float64)', async () => {
    const dir = tmp();
    const ckpt = writeFixtureCheckpoint(dir, 'module.');
    for (const [dtype, s] of [['float32', ''], ['float64', '@f64']] as const) {
      writeFileSync(join(dir, 'x.npy'), serializeNpy(fx.t('input').to(dtype)));
      for (const [mode, algorithm] of [['eval', 'auto'], ['eval', 'winograd'], ['eval', 'direct'], ['train', 'im2col']]) {
        const r = await cli('forward', ckpt, '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--mode', mode, '--algorithm', algorithm);
        expect(r.err).toBe('');
        expect(r.code).toBe(0);
        const y = parseNpy(readFileSync(join(dir, 'y.npy')));
        expect(y.dtype).toBe(dtype);
        const ref = fx.t(`${mode}.output${s}`);
        expect(maxAbsDiff(y, ref)).toBeLessThanOrEqual((dtype === 'float32' ? 1e-4 : 1e-10) * maxAbs(ref)); // see test/nn/repvgg.test.ts
      }
    }
  });

  it('backward writes every parameter gradient and the input gradient, matching PyTorch', async () => {
    const dir = tmp();
    const ckpt = writeFixtureCheckpoint(dir);
    writeFileSync(join(dir, 'x.npy'), serializeNpy(fx.t('input')));
    writeFileSync(join(dir, 'dy.npy'), serializeNpy(fx.t('grad_output')));
    const r = await cli('backward', ckpt, '--input', join(dir, 'x.npy'), '--grad-output', join(dir, 'dy.npy'), '--out', join(dir, 'g.safetensors'));
    expect(r.code).toBe(0);
    const g = parseSafetensors(readFileSync(join(dir, 'g.safetensors'))).tensors;
    const ref = fx.t('grad.input');
    expect(maxAbsDiff(tensorOf(g.get('input')!, 'input'), ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
    let n = 0;
    for (const [key, e] of g) {
      if (key === 'input') continue;
      const want = fx.t('grad.' + key);
      expect(maxAbsDiff(tensorOf(e, key), want)).toBeLessThanOrEqual(1e-4 * Math.max(maxAbs(want), 1e-3));
      n++;
    }
    expect(n).toBe(RepVGG.fromConfig(cfg).namedParameters().length);
  });

  it('init is deterministic for a seed and loads back; --config takes the constructor arguments', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
    for (const name of ['a.safetensors', 'b.safetensors']) {
      expect((await cli('init', '--config', join(dir, 'cfg.json'), '--seed', '7', '--out', join(dir, name))).code).toBe(0);
    }
    expect(readFileSync(join(dir, 'a.safetensors'))).toEqual(readFileSync(join(dir, 'b.safetensors')));
    expect((await cli('init', '--arch', 'A0', '--seed', '1', '--out', join(dir, 'a0.safetensors'))).out).toContain('9,108,968 parameters');
  });
});

describe('bad input: one line on stderr, non-zero exit, no clobbered output', () => {
  const fx = loadTorchFixture('repvgg_small');
  it('each failure names the problem and leaves an existing output untouched', async () => {
    const dir = tmp();
    const good = join(dir, 'good.safetensors');
    expect((await cli('init', '--config', fixtureCfg(dir, fx), '--out', good)).code).toBe(0);
    const x = join(dir, 'x.npy');
    writeFileSync(x, serializeNpy(fx.t('input')));
    const out = join(dir, 'y.npy');
    writeFileSync(out, 'precious');
    const bytes = readFileSync(good);
    const trunc = join(dir, 'trunc.safetensors');
    writeFileSync(trunc, bytes.subarray(0, bytes.length - 100));
    const x1 = join(dir, 'x1.npy');
    writeFileSync(x1, serializeNpy(fx.t('input').reshape([3, 1, 57, 17])));
    const notJson = join(dir, 'notjson.safetensors');
    const nj = new Uint8Array(8 + 9);
    new DataView(nj.buffer).setBigUint64(0, 9n, true);
    nj.set(new TextEncoder().encode('{not json'), 8);
    writeFileSync(notJson, nj);
    const st = parseSafetensors(new Uint8Array(bytes)).tensors;
    const missing = new Map(st);
    missing.delete('stage1.0.rbr_1x1.bn.running_mean');
    writeFileSync(join(dir, 'missingkey.safetensors'), serializeSafetensors(missing));
    const misshaped = new Map(st);
    misshaped.set('linear.bias', { dtype: 'F32', shape: [7], data: new Float32Array(7) });
    writeFileSync(join(dir, 'misshaped.safetensors'), serializeSafetensors(misshaped));
    const cases: [string[], RegExp][] = [
      [['forward', notJson, '--input', x, '--out', out], /notjson\.safetensors: safetensors: header \(bytes 8\.\.17\) is not valid UTF-8 JSON/],
      [['forward', join(dir, 'missingkey.safetensors'), '--input', x, '--out', out], /state dict: missing key 'stage1\.0\.rbr_1x1\.bn\.running_mean'/],
      [['forward', join(dir, 'misshaped.safetensors'), '--input', x, '--out', out], /state dict: 'linear\.bias' has shape \[7\], expected \[5\]/],
      [['forward', trunc, '--input', x, '--out', out], /trunc\.safetensors: safetensors: .*run past the/],
      [['forward', join(dir, 'missing.safetensors'), '--input', x, '--out', out], /checkpoint '.*missing\.safetensors' does not exist/],
      [['forward', good, '--input', x1, '--out', out], /input shape \[3, 1, 57, 17\] does not match \(N, 3, H, W\)/],
      [['forward', good, '--input', x, '--out', out, '--mode', 'test'], /--mode must be one of eval, train, got 'test'/],
      [['forward', good, '--input', x, '--out', out, '--bogus', '1'], /unknown option --bogus/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['info', '--arch', 'Z9'], /unknown architecture 'Z9'/],
    ];
    for (const [argv, msg] of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.err).toMatch(msg);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(readFileSync(out, 'utf8')).toBe('precious');
    }
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('the installed binary prints no stack trace', () => {
    const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    expect(existsSync(bin)).toBe(true); // npm test builds dist/ first
    const r = spawnSync(process.execPath, [bin, 'forward', '/nonexistent.safetensors', '--input', '/nonexistent.npy', '--out', '/tmp/never.npy'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    const h = spawnSync(process.execPath, [bin, 'forward', '--help'], { encoding: 'utf8' });
    expect(h.status).toBe(0);
    expect(h.stdout).toContain('usage: repvgg forward CKPT ');
  });

  // Node 20 has relaxed SIMD behind V8's flag; the binary, its own process, turns it on, so it fuses
  // where a process started with the flag (or a Node that has it by default) finds that the CPU fuses.
  // The library (this process, run through `cli`) keeps the engine's defaults.
  it('the binary fuses its multiply-adds wherever relaxed SIMD and the CPU can, Node 20 included; wasm-unfused pins the other', () => {
    const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    const backend = fileURLToPath(new URL('../../dist/backend/backend.js', import.meta.url));
    const probe = `import { fusedMultiplyAddAvailable } from ${JSON.stringify(backend)}; console.log(fusedMultiplyAddAvailable())`;
    let p = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', probe], { encoding: 'utf8' });
    if (p.status !== 0) p = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' }); // a Node whose V8 dropped the flag
    expect(p.status, p.stderr).toBe(0);
    const fuses = p.stdout.trim() === 'true';
    const dir = tmp();
    writeFileSync(join(dir, 'm.safetensors'), serializeSafetensors(stateDict(RepVGG.fromConfig({ num_blocks: [1, 1, 1, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 3 }, { seed: 2 }).eval())));
    writeFileSync(join(dir, 'x.npy'), serializeNpy(new Tensor(Float32Array.from({ length: 768 }, (_, i) => Math.sin(i)), [1, 3, 16, 16])));
    const kernels = (...extra: string[]) => {
      const r = spawnSync(process.execPath, [bin, 'forward', join(dir, 'm.safetensors'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--verbose', ...extra], { encoding: 'utf8' });
      return r.status === 0 ? /kernels: (.*)$/m.exec(r.stderr)![1] : r.stderr.trim();
    };
    expect(kernels()).toBe(fuses ? 'wasm (SIMD, fused multiply-add)' : 'wasm (SIMD, multiply then add)');
    expect(kernels('--backend', 'wasm-unfused')).toBe('wasm (SIMD, multiply then add)');
    expect(kernels('--backend', 'wasm-fused')).toMatch(fuses ? /^wasm \(SIMD, fused multiply-add\)$/ : /^repvgg: forward: --backend wasm-fused: this engine has no fused multiply-add/);
  });
});

function fixtureCfg(dir: string, fx: ReturnType<typeof loadTorchFixture>): string {
  const p = join(dir, 'cfg.json');
  writeFileSync(p, JSON.stringify(fx.meta.config));
  return p;
}

describe('repvgg convert / explain', () => {
  const fx = loadTorchFixture('repvgg_small');
  it('converts a PyTorch-trained checkpoint; the deploy checkpoint runs through forward and matches PyTorch', async () => {
    const dir = tmp();
    const cfg = fx.meta.config as RepVGGConfig;
    const st = new Map<string, SafeEntry>();
    for (const key of stateDict(RepVGG.fromConfig(cfg)).keys()) st.set(key, fx.raw('state.' + key));
    writeFileSync(join(dir, 'train.safetensors'), serializeSafetensors(st));
    const r = await cli('convert', join(dir, 'train.safetensors'), join(dir, 'deploy.safetensors'));
    expect(r.code).toBe(0);
    const m = /max \|Δ logit\| on a 2×3×32×32 probe batch: (\S+) \(max \|logit\| (\S+)\)/.exec(r.out);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(1e-4 * Number(m![2])); // float32 chain, as in test/reparam
    // and above 0: the two sides are different computations (three branches summed vs one fused conv),
    // so float32 rounds them differently; a probe that compared a model with itself would print 0
    expect(Number(m![1])).toBeGreaterThan(0);
    const deployKeys = [...parseSafetensors(readFileSync(join(dir, 'deploy.safetensors'))).tensors.keys()];
    expect(deployKeys).toContain('stage2.1.rbr_reparam.weight');
    expect(deployKeys.some((k) => k.includes('rbr_dense'))).toBe(false);
    writeFileSync(join(dir, 'x.npy'), serializeNpy(fx.t('input')));
    expect((await cli('forward', join(dir, 'deploy.safetensors'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'))).out).toContain('deploy model');
    const ref = fx.t('eval.output');
    expect(maxAbsDiff(parseNpy(readFileSync(join(dir, 'y.npy'))), ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
    const again = await cli('convert', join(dir, 'deploy.safetensors'), join(dir, 'd2.safetensors'));
    expect(again.code).toBe(1);
    expect(again.err).toContain('is already a deploy checkpoint');
  });
  it('explain shows every step and ends with two matching outputs', async () => {
    const r = await cli('explain');
    expect(r.code).toBe(0);
    for (const step of ['1. The three branches', '2. Fold each BN', '3. Pad the 1×1 kernel', '4. The identity as a 3×3 kernel', '5. Sum the branches', '6. Both models']) {
      expect(r.out).toContain(step);
    }
    const worst = Number(/largest \|Δ\| = (\S+)/.exec(r.out)![1]);
    expect(worst).toBeLessThanOrEqual(1e-14); // float64, O(10) terms of O(1): ~10·2⁻⁵³ ≈ 1e-15
  });
  it.each([
    ['mobileone', ['rbr_scale.conv (Conv2d) → rbr_scale.bn', 'rbr_skip: no conv before this BN: start from the identity kernel I', 'rbr_conv.1.bn: fold the BN', 'rbr_conv.1: centre the branch in 3×3', "('reparam_conv') + ReLU"]],
    ['repconv', ['rbr_dense.0 (Conv2d) → rbr_dense.1 (BatchNorm2d)', 'rbr_1x1: centre the branch in 3×3', "('rbr_reparam') + SiLU"]],
    ['qarepvgg', ['rbr_1x1 (Conv2d)', '(identity, no parameters)', 'the identity branch: the identity kernel I', 'bn: fold the BN after the sum', "('rbr_reparam') + ReLU"]],
    ['dbb', ['dbb_avg.avg: the average pool as a kernel (1/k² on each tap of its own channel), merged with the 1×1 map', 'dbb_1x1_kxk.bn1: its border is BN(0)', 'dbb_1x1_kxk.conv2: merge with the 1×1 map before it', "('dbb_reparam') + ReLU"]],
    ['repmixer', ['norm.identity (BatchNorm2d) → layer_scale (LayerScale)', "layer_scale: the layer scale as a BN (γ = γ, β = μ = 0, σ² = 1, ε = 0), folded: K' = K·γ, b' = b·γ", "layer_scale: the negated layer scale as a BN (γ = −γ", "('reparam_conv') + nothing"]],
  ])('explain --block %s walks the family through the one fuser', async (block, expected) => {
    const r = await cli('explain', '--block', block);
    expect(r.code, r.err).toBe(0);
    for (const line of expected) expect(r.out).toContain(line);
    expect(Number(/largest \|Δ\| = (\S+)/.exec(r.out)![1])).toBeLessThanOrEqual(1e-14); // float64, as above
  });
});
