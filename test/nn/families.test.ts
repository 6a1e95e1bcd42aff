// The re-parameterization families against PyTorch (fixtures/make_family_fixtures.py): each public
// block's state dict loads under its own names; eval and training forward, backward, running
// statistics, the fused conv (against that repository's own fusion) and the deploy block agree.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Tensor, type DType } from '../../src/tensor/tensor.js';
import type { SafeEntry } from '../../src/io/safetensors.js';
import { loadStateDict, stateDict } from '../../src/io/state_dict.js';
import { type FamilySpec, deployKey, familyBlock, mobileOneSEWidth } from '../../src/nn/families.js';
import type { BranchBlock } from '../../src/nn/branch_block.js';
import { deployBlock, fuseBranchBlock } from '../../src/reparam/branches.js';
import { U32, firstViolation, fixturePath, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';
import { familyMagnitude, familyTerms } from '../reparam/helpers.js';

const manifest = JSON.parse(readFileSync(fixturePath('families/manifest.json'), 'utf8')) as { cases: { name: string; options: FamilySpec }[] };

function build(name: string, dtype: DType): { block: BranchBlock; spec: FamilySpec; fx: ReturnType<typeof loadTorchFixture>; state: Map<string, SafeEntry> } {
  const fx = loadTorchFixture(`families/${name}`);
  const spec = fx.meta.options as FamilySpec;
  const block = familyBlock({ ...spec, dtype });
  const state = new Map<string, SafeEntry>();
  for (const key of fx.keys) if (key.startsWith('state.')) state.set(key.slice('state.'.length), fx.raw(key));
  loadStateDict(block, state); // strict: a key missing on either side throws
  return { block, spec, fx, state };
}

describe.each(manifest.cases.map((c) => c.name))('%s matches PyTorch', (name) => {
  it('loads the public state dict, strictly, in float32 and float64; writes the same keys back', () => {
    const { block, fx } = build(name, 'float32');
    expect([...stateDict(block).keys()].sort()).toEqual(fx.keys.filter((k) => k.startsWith('state.')).map((k) => k.slice(6)).sort());
    expect(() => build(name, 'float64')).not.toThrow();
  });

  it('eval and deploy forward: float64 to 1e-12, float32 within γ_n·S of the float64 values', () => {
    for (const dtype of ['float64', 'float32'] as const) {
      const { block, spec, fx } = build(name, dtype);
      const s = '@f64';
      const x = fx.t('x').to(dtype);
      block.eval();
      const y = block.forward(x);
      const deploy = deployBlock(block, deployKey(spec));
      const yd = deploy.forward(x);
      if (dtype === 'float64') {
        // float64: both sides compute the same real numbers with u = 2⁻⁵³ in a few dozen operations
        for (const [got, key] of [[y, 'y_eval'], [yd, 'y_fused'], [yd, 'y_eval']] as const) {
          expect(maxAbsDiff(got, fx.t(key + s)), key).toBeLessThanOrEqual(1e-12 * maxAbs(fx.t(key + s)));
        }
      } else {
        // float32: |ŷ − y| ≤ γ_n·S per output (any summation order), n the terms on its longest path
        const S = familyMagnitude(spec, block, x), n = familyTerms(block, x);
        const g = (n * U32) / (1 - n * U32);
        expect(firstViolation(y, fx.t('y_eval' + s), (i) => g * S.data[i] + 1e-30)).toBeNull();
        // the deploy conv: weights rounded once (u·|K|), then Cg·k² + 2 terms: within the same γ_n·S
        expect(firstViolation(yd, fx.t('y_eval' + s), (i) => 2 * g * S.data[i] + 1e-30)).toBeNull();
      }
    }
  });

  it("the fused conv equals the public repository's own fusion (float64, 1e-12)", () => {
    const { block, fx } = build(name, 'float32');
    const f = fuseBranchBlock(block.eval());
    // our float64 fuser on the float32 parameters computes what PyTorch's float64 run did on them
    expect(maxAbsDiff(f.kernel, fx.t('fused.weight@f64'))).toBeLessThanOrEqual(1e-12 * maxAbs(fx.t('fused.weight@f64')));
    expect(maxAbsDiff(f.bias, fx.t('fused.bias@f64'))).toBeLessThanOrEqual(1e-12 * maxAbs(fx.t('fused.bias@f64')));
  });

  it('training step: output, dx, every parameter gradient and the running statistics', () => {
    for (const dtype of ['float64', 'float32'] as const) {
      const { block, fx } = build(name, dtype);
      // Compared with PyTorch's float64 run on the same float32 values (the exact result to ~1e-15).
      // float64: 1e-12 relative (the contract). float32: 1e-4 of the block's largest gradient
      // (the whole-model fixtures' tolerance, fixtures/README.md): ~100 rounded terms × u ≈ 6e-6, times
      // BN's 1/σ_batch amplification on a batch of 2 (≤ 10 here). The scale is the block's, not each
      // tensor's: every gradient sums products of the same dy, x̂ and weights, and cancellation can
      // make one tensor's exact value tiny (a bias before a training-mode BN has gradient exactly 0).
      const tol = dtype === 'float64' ? 1e-12 : 1e-4;
      const ref = (key: string) => fx.t(`${key}@f64`);
      block.train();
      const y = block.forward(fx.t('x').to(dtype));
      expect(maxAbsDiff(y, ref('y_train')), 'y_train').toBeLessThanOrEqual(tol * maxAbs(ref('y_train')));
      block.zeroGrad();
      const dx = block.backward(fx.t('dy').to(dtype));
      const grads: [string, Tensor][] = [['dx', dx], ...block.namedParameters().map(([k, p]): [string, Tensor] => [`grad.${k}`, p.grad])];
      const scale = Math.max(...grads.map(([k]) => maxAbs(ref(k))));
      for (const [k, g] of grads) expect(maxAbsDiff(g, ref(k)), k).toBeLessThanOrEqual(tol * scale);
      for (const [key, b] of block.namedBuffers()) {
        if (b.kind !== 'tensor') continue;
        expect(maxAbsDiff(b.value, ref(`after.${key}`)), key).toBeLessThanOrEqual(tol * maxAbs(ref(`after.${key}`)));
      }
    }
  });
});

describe.each(manifest.cases.map((c) => c.name))('%s: steps after the first', (name) => {
  // A block writes its tail convs' outputs and its gradients before the sum into arrays it keeps
  // from one step to the next: a step after others (on another batch size, then other inputs of its
  // own) must give PyTorch's values again, and what a step returned (y, dx) must not change under the
  // next one.
  it('the fixture step again, after steps on other inputs, matches PyTorch; earlier results stay as returned', () => {
    const { block, fx, state } = build(name, 'float32');
    const tol = 1e-4; // as the training step above (float32 against PyTorch's float64 run)
    const ref = (key: string) => fx.t(`${key}@f64`);
    const x = fx.t('x').to('float32'), dy = fx.t('dy').to('float32');
    block.train();
    const other = (n: number) => {
      const shape = [n, ...x.shape.slice(1)];
      const t = (s: number) => new Tensor(Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, (_, i) => Math.sin(s * i + 1)), shape);
      const y = block.forward(t(0.7));
      return { y, dx: block.backward(new Tensor(Float32Array.from({ length: y.size }, (_, i) => Math.cos(0.3 * i)), y.shape)) };
    };
    other(x.shape[0] + 1);
    const first = other(x.shape[0]);
    const kept = { y: Float32Array.from(first.y.data), dx: Float32Array.from(first.dx.data) };
    other(x.shape[0]); // the same shapes: the block's kept arrays are written again
    loadStateDict(block, state); // the running statistics back (DBB's padding reads them in training too)
    const y = block.forward(x);
    block.zeroGrad();
    const dx = block.backward(dy);
    expect(maxAbsDiff(y, ref('y_train')), 'y_train').toBeLessThanOrEqual(tol * maxAbs(ref('y_train')));
    const grads: [string, Tensor][] = [['dx', dx], ...block.namedParameters().map(([k, p]): [string, Tensor] => [`grad.${k}`, p.grad])];
    const scale = Math.max(...grads.map(([k]) => maxAbs(ref(k))));
    for (const [k, g] of grads) expect(maxAbsDiff(g, ref(k)), k).toBeLessThanOrEqual(tol * scale);
    expect(Array.from(first.y.data)).toEqual(Array.from(kept.y));
    expect(Array.from(first.dx.data)).toEqual(Array.from(kept.dx));
  });

  it("backwardParameters: every parameter's gradient as PyTorch's, without the input's", () => {
    const { block, fx } = build(name, 'float32');
    const ref = (key: string) => fx.t(`${key}@f64`);
    block.train().forward(fx.t('x').to('float32'));
    block.zeroGrad();
    expect(block.backwardParameters(fx.t('dy').to('float32'))).toBeUndefined();
    const grads = block.namedParameters().map(([k, p]): [string, Tensor] => [`grad.${k}`, p.grad]);
    const scale = Math.max(...[['dx'], ...grads].map(([k]) => maxAbs(ref(k as string))));
    for (const [k, g] of grads) expect(maxAbsDiff(g, ref(k)), k).toBeLessThanOrEqual(1e-4 * scale); // as the training step above
  });
});

describe('MobileOne SE widths', () => {
  it("timm's make_divisible(c/16, 8) = max(8, int(c/16 + 4) // 8 · 8), worked by hand; apple's int(c·0.0625)", () => {
    // c = 24: int(5.5) // 8 = 0 → 8; 136: int(12.5) // 8 = 1 → 8; 144: int(13) // 8 = 1 → 8 (not 16: it rounds to
    // nearest, not up); 200: int(16.5) // 8 = 2 → 16; 896: 56 → int(60) // 8 = 7 → 56; 2048: 128
    expect([24, 136, 144, 200, 896, 2048].map((c) => mobileOneSEWidth(c, 'timm'))).toEqual([8, 8, 8, 16, 56, 128]);
    expect([24, 136, 144, 200, 896, 2048].map((c) => mobileOneSEWidth(c, 'official'))).toEqual([1, 8, 9, 12, 56, 128]);
  });
});

describe('SE is kept after the fused conv', () => {
  for (const name of manifest.cases.filter((c) => c.options.se === true).map((c) => c.name)) {
    it(`${name}: dropping the SE (as MMPretrain's RepVGG-D2se deploy path does) is caught`, () => {
      const { block, spec, fx } = build(name, 'float64');
      const kept = deployBlock(block.eval(), deployKey(spec));
      const seName = spec.names === 'timm' ? 'attn.' : 'se.'; // timm's byobnet calls it attn (fc1/fc2), apple's se (reduce/expand)
      expect([...stateDict(kept).keys()].some((k) => k.startsWith(seName))).toBe(true);
      const ref = fx.t('y_eval@f64');
      expect(maxAbsDiff(kept.forward(fx.t('x').to('float64')), ref)).toBeLessThanOrEqual(1e-12 * maxAbs(ref));
      const dropped = new (kept.constructor as typeof import('../../src/nn/branch_block.js').FusedBlock)(kept.conv, { convName: deployKey(spec), activation: kept.activation });
      // the gate is σ(·) ∈ (0, 1) per channel: without it the outputs are off by a visible fraction
      expect(maxAbsDiff(dropped.eval().forward(fx.t('x').to('float64')), ref)).toBeGreaterThan(0.05 * maxAbs(ref));
    });
  }
});
