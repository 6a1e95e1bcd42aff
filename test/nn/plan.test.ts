// 'auto' and algorithm plans: what ran is reported, a plan pins it, and a pinned plan decides the
// numerics bit for bit, whatever the timing would have chosen.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RepVGG, type AlgorithmPlanEntry } from '../../src/nn/repvgg.js';
import { convert } from '../../src/reparam/repvgg.js';
import { AUTO_AFTER, chooseWithMargin, conv2d, measuredAlgorithm } from '../../src/ops/conv2d.js';
import { convGeometry } from '../../src/ops/conv2d_geometry.js';
import { Conv2d } from '../../src/nn/layers.js';
import { relu } from '../../src/ops/relu.js';
import { globalAvgPool } from '../../src/ops/pool.js';
import { linear } from '../../src/ops/linear.js';
import { stateDict } from '../../src/io/state_dict.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { serializeNpy, parseNpy } from '../../src/io/npy.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { cli } from '../cli/run.js';
import { FUSED_MISSING, fusedMultiplyAddAvailable } from '../../src/backend/backend.js';

const CFG = { num_blocks: [1, 2, 1, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 5, in_channels: 3 };

describe('algorithm plans', () => {
  it('the plan reports what each conv ran, and the outputs are exactly those of the convs run with it', () => {
    const m = convert(RepVGG.fromConfig(CFG, { seed: 1 }).eval());
    const [, c2] = m.namedConvs()[3]; // stage2.1 (stride 1): one conv pinned to F(2×2), the rest 'auto'
    c2.algorithm = 'winograd';
    c2.winogradTile = 2;
    const x = uniform([2, 3, 40, 40], new Rng(2), -1, 1);
    const y = m.forward(x);
    const plan = m.algorithmPlan();
    expect(plan[3]).toEqual({ layer: 'stage2.1.rbr_reparam', algorithm: 'winograd', winogradTile: 2 });
    expect(plan.map((e) => e.layer)).toEqual(['stage0.rbr_reparam', 'stage1.0.rbr_reparam', 'stage2.0.rbr_reparam', 'stage2.1.rbr_reparam', 'stage3.0.rbr_reparam', 'stage4.0.rbr_reparam']);
    for (const e of plan) expect(['im2col', 'winograd']).toContain(e.algorithm); // 'auto' resolved
    expect(plan[0].algorithm).toBe('im2col'); // stride 2: Winograd does not apply
    // replay: each conv called directly with the algorithm the plan reports, then the same pool and
    // classifier ops; if the plan misreported any conv, the last bits would differ
    let h = x;
    m.namedConvs().forEach(([, c], i) => {
      const e = plan[i];
      h = relu(conv2d(h, c.weight.data, c.bias!.data, { stride: c.stride, padding: 1, groups: c.groups, algorithm: e.algorithm, winogradTile: e.winogradTile }));
    });
    expect(linear(globalAvgPool(h), m.linear.weight.data, m.linear.bias.data).data).toEqual(y.data);
  });

  it('a pinned plan gives the same bits on every run, and other plans differ only by rounding', () => {
    const base = convert(RepVGG.fromConfig(CFG, { seed: 1 }).eval());
    const x = uniform([2, 3, 40, 40], new Rng(2), -1, 1);
    base.forward(x);
    const s2 = (c: { stride: unknown }) => c.stride === 2;
    const plans: AlgorithmPlanEntry[][] = [
      base.namedConvs().map(([layer]) => ({ layer, algorithm: 'im2col' })),
      base.namedConvs().map(([layer, c]) => (s2(c) ? { layer, algorithm: 'im2col' } : { layer, algorithm: 'winograd', winogradTile: 2 })),
      base.namedConvs().map(([layer, c]) => (s2(c) ? { layer, algorithm: 'direct' } : { layer, algorithm: 'winograd', winogradTile: 4 })),
    ];
    const outs = plans.map((p) => {
      const a = convert(RepVGG.fromConfig(CFG, { seed: 1 }).eval()).setAlgorithmPlan(p).forward(x).data.slice();
      const b = convert(RepVGG.fromConfig(CFG, { seed: 1 }).eval()).setAlgorithmPlan(p).forward(x).data.slice();
      expect(b).toEqual(a); // pinned: identical bits
      return a;
    });
    expect(outs[1]).not.toEqual(outs[0]); // the algorithms really differ in their last bits
  });

  it('plans are validated: every conv named once, Winograd only where it applies', () => {
    const m = RepVGG.fromConfig(CFG, { seed: 1 });
    const names = m.namedConvs().map(([l]) => l);
    const all = names.map((layer) => ({ layer, algorithm: 'im2col' as const }));
    expect(() => m.setAlgorithmPlan(all.slice(1))).toThrow(/no entry for 'stage0\.rbr_dense\.conv'/);
    expect(() => m.setAlgorithmPlan([...all, { layer: 'stage9.0.rbr_dense.conv', algorithm: 'im2col' }])).toThrow(/no conv 'stage9\.0\.rbr_dense\.conv'/);
    expect(() => m.setAlgorithmPlan(all.map((e, i) => (i === 0 ? { ...e, algorithm: 'winograd', winogradTile: 4 } : e)))).toThrow(/'stage0\.rbr_dense\.conv' is 3×3 with stride 2, dilation 1, padding 1; Winograd needs a 3×3 kernel, stride 1, dilation 1 and padding ≤ 2 per side/);
    const stride1 = names.findIndex((l) => l === 'stage2.1.rbr_dense.conv');
    expect(() => m.setAlgorithmPlan(all.map((e, i) => (i === stride1 ? { layer: e.layer, algorithm: 'winograd' as const } : e)))).toThrow(/'stage2\.1\.rbr_dense\.conv' needs winogradTile 2 or 4/);
    expect(() => m.algorithmPlan()).toThrow(/has not run yet/);
  });

  it("'auto' keeps the more accurate algorithm unless another is faster by more than 5%", () => {
    expect(chooseWithMargin(['im2col', 'F2', 'F4'], [10, 9.7, 9.6])).toBe('im2col'); // 4% faster: not enough
    expect(chooseWithMargin(['im2col', 'F2', 'F4'], [10, 6, 5.9])).toBe('F2'); // F4 within 5% of F2
    expect(chooseWithMargin(['im2col', 'F2', 'F4'], [10, 6, 3])).toBe('F4');
  });

  it('repvgg forward --verbose shows its phases and the plan, --save-plan writes it and --plan pins it (the same bits)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-plan-'));
    const m = RepVGG.fromConfig(CFG, { seed: 3 });
    writeFileSync(join(dir, 'm.safetensors'), serializeSafetensors(stateDict(m)));
    writeFileSync(join(dir, 'x.npy'), serializeNpy(uniform([1, 3, 40, 40], new Rng(4), -1, 1)));
    const first = await cli('forward', join(dir, 'm.safetensors'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y1.npy'), '--verbose', '--save-plan', join(dir, 'plan.json'));
    expect(first.code, first.err).toBe(0);
    expect(first.err).toMatch(/stage0\.rbr_dense\.conv\s+im2col/);
    expect(first.err).toMatch(/^phases: read \d+ ms \(checkpoint and input\), build \d+ ms .*, forward \d+ ms .*, write \d+ ms$/m);
    expect(first.err).toMatch(new RegExp(`^threads: \\d+, kernels: wasm \\(SIMD, ${fusedMultiplyAddAvailable() ? 'fused multiply-add' : 'multiply then add'}\\)$`, 'm'));
    const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as AlgorithmPlanEntry[];
    expect(plan).toHaveLength(m.namedConvs().length);
    const again = await cli('forward', join(dir, 'm.safetensors'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y2.npy'), '--plan', join(dir, 'plan.json'));
    expect(again.code, again.err).toBe(0);
    expect(parseNpy(readFileSync(join(dir, 'y2.npy'))).data).toEqual(parseNpy(readFileSync(join(dir, 'y1.npy'))).data);
  });

  // --backend pins the kernels; wasm-fused refuses in one line where the engine cannot fuse (Node 20
  // without --experimental-wasm-relaxed-simd), and plain wasm returns to the default after a pin
  it('repvgg forward --backend js|wasm|wasm-fused|wasm-unfused: --verbose says which kernels ran', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'repvgg-backend-'));
    writeFileSync(join(dir, 'm.safetensors'), serializeSafetensors(stateDict(convert(RepVGG.fromConfig(CFG, { seed: 3 }).eval()))));
    writeFileSync(join(dir, 'x.npy'), serializeNpy(uniform([1, 3, 20, 20], new Rng(4), -1, 1)));
    const run = (backend: string) => cli('forward', join(dir, 'm.safetensors'), '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--verbose', '--backend', backend);
    const kernels = async (backend: string) => {
      const r = await run(backend);
      expect(r.code, r.err).toBe(0);
      return /kernels: (.*)$/m.exec(r.err)![1];
    };
    const fusedHere = fusedMultiplyAddAvailable();
    expect(await kernels('js')).toBe('js');
    expect(await kernels('wasm-unfused')).toBe('wasm (SIMD, multiply then add)');
    expect(await kernels('wasm')).toBe(fusedHere ? 'wasm (SIMD, fused multiply-add)' : 'wasm (SIMD, multiply then add)');
    if (fusedHere) expect(await kernels('wasm-fused')).toBe('wasm (SIMD, fused multiply-add)');
    else {
      const r = await run('wasm-fused');
      expect([r.code, r.err]).toEqual([1, `repvgg: forward: --backend wasm-fused: ${FUSED_MISSING}`]);
    }
    const bad = await run('gpu');
    expect([bad.code, bad.err]).toEqual([2, "repvgg: forward: --backend must be one of js, wasm, wasm-fused, wasm-unfused, got 'gpu'"]);
  });
});

// Each case below uses a shape no other test runs, since 'auto' counts and measures per shape for the process.
describe("'auto' times a shape only once it has run AUTO_AFTER times, apart for fixed and changing weights", () => {
  it('the first AUTO_AFTER calls run im2col (its bits) without timing; the next one times; the training regime is not timed by eval\'s calls', () => {
    const rng = new Rng(7);
    const x = uniform([1, 11, 9, 9], rng, -1, 1), w = uniform([11, 11, 3, 3], rng, -1, 1);
    const g = convGeometry(x.shape, w.shape, { padding: 1 });
    const pinned = conv2d(x, w, null, { padding: 1, algorithm: 'im2col' }).data;
    for (let i = 0; i < AUTO_AFTER; i++) expect(conv2d(x, w, null, { padding: 1 }).data, `call ${i + 1}`).toEqual(pinned);
    expect(measuredAlgorithm(g, 'float32')).toBeUndefined();
    conv2d(x, w, null, { padding: 1 });
    expect(measuredAlgorithm(g, 'float32')).toBeDefined();
    expect(measuredAlgorithm(g, 'float32', true)).toBeUndefined(); // training's choice is its own
  });

  it('a module counts its own calls: 3 equal layers run 10 times each (30 calls of the shape) stay untimed, on im2col', () => {
    const x = uniform([1, 7, 6, 6], new Rng(10), -1, 1);
    const layers = [0, 1, 2].map((i) => new Conv2d(7, 7, 3, { padding: 1, rng: new Rng(20 + i) }).eval());
    for (let r = 0; r < 10; r++) for (const c of layers) c.forward(x);
    expect(measuredAlgorithm(convGeometry(x.shape, [7, 7, 3, 3], { padding: 1 }), 'float32')).toBeUndefined();
    expect(layers.map((c) => c.used)).toEqual(layers.map(() => ({ algorithm: 'im2col', winogradTile: 4 })));
  });

  it("a module in training times its candidates with the filter transform each step pays: Winograd's F(4×4) transform of 192×192 filters dwarfs a 1×1 map's conv, so im2col", () => {
    // per call: F(4×4) transforms 36 864 filters (36 outputs of ~9 terms each: ~12 M operations, in
    // TypeScript) against 192·192·9 ≈ 0.33 M multiply-adds of the conv itself: ~40× apart, far beyond timing noise
    const c = new Conv2d(192, 192, 3, { padding: 1, rng: new Rng(8) }).train();
    const x = uniform([1, 192, 1, 1], new Rng(9), -1, 1);
    for (let i = 0; i <= AUTO_AFTER; i++) c.forward(x);
    expect(c.used).toEqual({ algorithm: 'im2col', winogradTile: 4 });
    expect(measuredAlgorithm(convGeometry(x.shape, c.weight.data.shape, { padding: 1 }), 'float32', true)).toEqual({ algorithm: 'im2col', winogradTile: 4 });
  });

  it('and where F(4×4) wins with its filters prepared once, training still pays the transform per step, so im2col', () => {
    // 256→256 on an 8×8 map: per call F(4×4) transforms 65 536 filters (~9 ms here, ~8 of them the
    // transform) against ~2.5 ms for im2col, while prepared once it takes ~1.3 ms against ~2.1; 3.5×
    // one way and 1.6× the other, far beyond timing noise (AUTO_MARGIN is 5%): timed as eval runs,
    // training would choose F(4×4)
    const c = new Conv2d(256, 256, 3, { padding: 1, rng: new Rng(10) }).train();
    const x = uniform([1, 256, 8, 8], new Rng(11), -1, 1);
    for (let i = 0; i <= AUTO_AFTER; i++) c.forward(x);
    expect(c.used).toEqual({ algorithm: 'im2col', winogradTile: 4 });
  });
});
