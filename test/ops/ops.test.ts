// BatchNorm, ReLU, pooling, linear and the loss against PyTorch (forward and backward).
import { describe, expect, it } from 'vitest';
import { batchNorm2d, batchNorm2dBackward, batchNormSum, batchNormSumBackward } from '../../src/ops/batchnorm.js';
import { setBackend } from '../../src/backend/backend.js';
import { relu, reluBackward, reluBits, reluGradMaskBits } from '../../src/ops/relu.js';
import { Rng } from '../../src/tensor/rng.js';
import { globalAvgPool, globalAvgPoolBackward } from '../../src/ops/pool.js';
import { linear, linearBackward } from '../../src/ops/linear.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from '../../src/ops/loss.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadTorchFixture, maxAbs, maxAbsDiff, signedZeros } from '../helpers.js';

// Tolerances: these ops are short sums (≤ 72 terms per channel here) of O(1) values; two float32
// implementations summing in different orders differ by at most ~n·u·Σ|terms| ≤ 72·6e-8·(Σ|·| ≤ 300)
// ≈ 1.3e-3 in the worst case, typically far less. We use 1e-5·(1 + max|ref|)·√n, an order of
// magnitude above the typical error (√n·u·|terms|) and well below any real bug.
const F32_TOL = (ref: Tensor, n: number) => 1e-5 * (1 + maxAbs(ref)) * Math.sqrt(n);
// float64 against PyTorch float64 on the same inputs: ≤ 1e-12 relative to the largest magnitude.
const F64_TOL = (ref: Tensor) => 1e-12 * (1 + maxAbs(ref));

describe.each(['train', 'eval'])('batch_norm (%s) matches PyTorch', (mode) => {
  const training = mode === 'train';
  for (const dtype of ['float32', 'float64'] as const) {
    it(dtype, () => {
      const fx = loadTorchFixture(`batchnorm_${mode}`);
      const s = dtype === 'float64' ? '@f64' : '';
      const cast = (k: string) => fx.t(k).to(dtype);
      const params = { weight: cast('weight'), bias: cast('bias'), runningMean: cast('running_mean'), runningVar: cast('running_var') };
      const x = cast('x');
      const out = batchNorm2d(x, params, { training });
      const tol = (ref: Tensor, n: number) => (dtype === 'float64' ? F64_TOL(ref) : F32_TOL(ref, n));
      const M = x.shape[0] * x.shape[2] * x.shape[3];
      expect(maxAbsDiff(out.y, fx.t('y' + s))).toBeLessThanOrEqual(tol(fx.t('y' + s), M));
      expect(maxAbsDiff(params.runningMean, fx.t('running_mean_after' + s))).toBeLessThanOrEqual(tol(fx.t('running_mean_after' + s), M));
      expect(maxAbsDiff(params.runningVar, fx.t('running_var_after' + s))).toBeLessThanOrEqual(tol(fx.t('running_var_after' + s), M));
      if (!training) expect(Array.from(params.runningMean.data)).toEqual(Array.from(cast('running_mean').data));
      const g = batchNorm2dBackward(cast('dy'), x, params.weight, out, training);
      for (const [got, key] of [[g.dx, 'dx'], [g.dweight!, 'dweight'], [g.dbias!, 'dbias']] as const) {
        expect(maxAbsDiff(got, fx.t(key + s))).toBeLessThanOrEqual(tol(fx.t(key + s), M));
      }
    });
  }
});

// The statistics are float64 sums in (n, i) order per channel over each half of the batch (images
// [0, ⌈N/2⌉) and the rest), the two halves then added (src/ops/batch_shards.ts), whatever the channel
// count (channels go through the loop four or two at a time): the same bits as the one-channel loops
// written here, so training results depend neither on a layer's other channels nor on how many
// threads share the batch. Float64 inputs, so that another order would round differently (float32
// terms often sum exactly in float64). N = 3: halves of 2 and 1 images.
describe('batch_norm sums each channel in (n, i) order, by the batch\'s halves', () => {
  it('mean, 1/√(σ² + ε), Σ dy and Σ dy·x̂ equal one-channel sequential loops over each half, added, bit for bit, for C = 1 … 9', () => {
    const rng = new Rng(11);
    for (let C = 1; C <= 9; C++) {
      const [N, P] = [3, 5];
      const halves = [[0, 2], [2, 3]];
      const x = new Tensor(Float64Array.from({ length: N * C * P }, () => rng.next() * 8 - 3), [N, C, 1, P]);
      const dy = new Tensor(Float64Array.from({ length: N * C * P }, () => rng.next() * 2 - 1), [N, C, 1, P]);
      const p = { weight: null, bias: null, runningMean: new Tensor(new Float64Array(C), [C]), runningVar: new Tensor(new Float64Array(C).fill(1), [C]) };
      const out = batchNorm2d(x, p, { training: true });
      const g = batchNorm2dBackward(dy, x, null, out, true);
      for (let c = 0; c < C; c++) {
        const at = (n: number, i: number) => (n * C + c) * P + i;
        const s = [0, 0], ss = [0, 0], sbh = [0, 0], sgh = [0, 0];
        halves.forEach(([n0, n1], k) => { for (let n = n0; n < n1; n++) for (let i = 0; i < P; i++) s[k] += x.data[at(n, i)]; });
        const mu = (s[0] + s[1]) / (N * P);
        halves.forEach(([n0, n1], k) => { for (let n = n0; n < n1; n++) for (let i = 0; i < P; i++) { const d = x.data[at(n, i)] - mu; ss[k] += d * d; } });
        const is = 1 / Math.sqrt((ss[0] + ss[1]) / (N * P) + 1e-5);
        halves.forEach(([n0, n1], k) => { for (let n = n0; n < n1; n++) for (let i = 0; i < P; i++) { sbh[k] += dy.data[at(n, i)]; sgh[k] += dy.data[at(n, i)] * (x.data[at(n, i)] - mu) * is; } });
        const sb = sbh[0] + sbh[1], sg = sgh[0] + sgh[1];
        expect([out.mean[c], out.invStd[c], g.dbias!.data[c]]).toEqual([mu, is, sb]);
        expect(g.dweight).toBeNull();
        expect(g.dx.data[at(1, 2)]).toBe(is * (dy.data[at(1, 2)] - sb / (N * P) - (x.data[at(1, 2)] - mu) * is * (sg / (N * P))));
      }
      // statistics written into the caller's arrays (a module's, reused each forward): those arrays
      // are the result's, holding the same bits, and y is unchanged
      const stats = { mean: new Float64Array(C).fill(NaN), invStd: new Float64Array(C).fill(NaN) };
      const p2 = { ...p, runningMean: new Tensor(new Float64Array(C), [C]), runningVar: new Tensor(new Float64Array(C).fill(1), [C]) };
      const into = batchNorm2d(x, p2, { training: true, stats });
      expect(into.mean).toBe(stats.mean);
      expect(into.invStd).toBe(stats.invStd);
      expect(Array.from(stats.mean)).toEqual(Array.from(out.mean));
      expect(Array.from(stats.invStd)).toEqual(Array.from(out.invStd));
      expect(Array.from(into.y.data)).toEqual(Array.from(out.y.data));
    }
  });
});

// A block's tail as one op: batchNormSum is batchNorm2d per branch, the outputs added in branch order,
// then ReLU; its backward is ReLU's gradient, then batchNorm2dBackward per branch. It must give those
// ops' bits (on 'wasm' the BN outputs are never stored and ReLU's gradient is found once in WebAssembly
// memory), running statistics included, on both backends, float32 and float64: 1 to 3 branches, with
// and without ReLU, channel counts around multiples of four, planes of 1 to 49 floats, ±0, ±∞ and NaN
// in the inputs (so outputs of exactly ±0 and NaN reach ReLU and its gradient).
describe('batchNormSum (a block\'s BNs, their sum, ReLU) and its backward', () => {
  it('give the bits of batchNorm2d per branch, summed in order, then relu; and of reluBackward, then batchNorm2dBackward per branch', () => {
    const rng = new Rng(31);
    let compared = 0, mismatches = 0;
    for (const backend of ['wasm', 'js'] as const) {
      setBackend(backend);
      for (const dtype of ['float32', 'float64'] as const) {
        for (const [B, N, C, H, W] of [[1, 2, 3, 1, 3], [2, 3, 5, 2, 2], [3, 4, 9, 7, 7], [3, 2, 4, 1, 1], [2, 5, 6, 3, 5]] as const) {
          for (const withRelu of [true, false]) {
            const size = N * C * H * W;
            const make = (scale: number) => {
              const t = new Tensor(Float32Array.from({ length: size }, () => (rng.next() * 2 - 1) * scale), [N, C, H, W]);
              return dtype === 'float64' ? t.to('float64') : t;
            };
            const xs = Array.from({ length: B }, () => make(3));
            if (C >= 3) xs[0].data.set([-0, Infinity, NaN], H * W); // channel 1 of image 0
            const dy = make(1);
            const vec = (f: (c: number) => number) => {
              const t = new Tensor(Float32Array.from({ length: C }, (_, c) => f(c)), [C]);
              return dtype === 'float64' ? t.to('float64') : t;
            };
            const gammas = xs.map(() => vec(() => 0.5 + rng.next()));
            const params = () => xs.map((_, b) => ({ weight: gammas[b], bias: vec((c) => c - 1), runningMean: vec(() => b / 4), runningVar: vec(() => 1 + b) }));
            const opts = xs.map(() => ({ training: true }));
            // the ops one by one
            const pa = params();
            const outs = xs.map((x, b) => batchNorm2d(x, pa[b], opts[b]));
            const sum = outs[0].y.data.slice();
            for (let b = 1; b < B; b++) for (let i = 0; i < size; i++) sum[i] += outs[b].y.data[i];
            const ref = withRelu ? relu(new Tensor(sum, [N, C, H, W])) : new Tensor(sum, [N, C, H, W]);
            const d = withRelu ? reluBackward(dy, ref) : dy;
            const refGrads = xs.map((x, b) => batchNorm2dBackward(d, x, pa[b].weight, outs[b], true));
            // the fused op, on running statistics that start where the others did
            const pb = params();
            const got = batchNormSum(xs, pb, opts, withRelu);
            const grads = batchNormSumBackward(dy, withRelu ? got.y : null, xs, pb.map((p) => p.weight), got.saved, xs.map(() => true));
            const pairs: [ArrayLike<number>, ArrayLike<number>][] = [[got.y.data, ref.data]];
            xs.forEach((_, b) => {
              pairs.push([got.saved[b].mean, outs[b].mean], [got.saved[b].invStd, outs[b].invStd], [pb[b].runningMean.data, pa[b].runningMean.data], [pb[b].runningVar.data, pa[b].runningVar.data]);
              pairs.push([grads[b].dx.data, refGrads[b].dx.data], [grads[b].dweight!.data, refGrads[b].dweight!.data], [grads[b].dbias!.data, refGrads[b].dbias!.data]);
            });
            for (const [g, r] of pairs) for (let i = 0; i < r.length; i++, compared++) if (!Object.is(g[i], r[i])) mismatches++;
          }
        }
      }
    }
    setBackend('wasm');
    expect(compared).toBeGreaterThan(50000);
    expect(mismatches).toBe(0);
  });
});

describe('global average pooling, linear and cross-entropy match PyTorch', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const s = dtype === 'float64' ? '@f64' : '';
    const tol = (ref: Tensor, n: number) => (dtype === 'float64' ? F64_TOL(ref) : F32_TOL(ref, n));
    it(`global_avg_pool ${dtype}`, () => {
      const fx = loadTorchFixture('global_avg_pool');
      const x = fx.t('x').to(dtype);
      expect(maxAbsDiff(globalAvgPool(x), fx.t('y' + s))).toBeLessThanOrEqual(tol(fx.t('y' + s), 35));
      expect(maxAbsDiff(globalAvgPoolBackward(fx.t('dy').to(dtype), x.shape), fx.t('dx' + s))).toBeLessThanOrEqual(tol(fx.t('dx' + s), 1));
    });
    it(`linear ${dtype}`, () => {
      const fx = loadTorchFixture('linear');
      const x = fx.t('x').to(dtype), w = fx.t('w').to(dtype);
      expect(maxAbsDiff(linear(x, w, fx.t('b').to(dtype)), fx.t('y' + s))).toBeLessThanOrEqual(tol(fx.t('y' + s), 6));
      const g = linearBackward(fx.t('dy').to(dtype), x, w);
      expect(maxAbsDiff(g.dx, fx.t('dx' + s))).toBeLessThanOrEqual(tol(fx.t('dx' + s), 3));
      expect(maxAbsDiff(g.dw, fx.t('dw' + s))).toBeLessThanOrEqual(tol(fx.t('dw' + s), 4));
      expect(maxAbsDiff(g.db, fx.t('db' + s))).toBeLessThanOrEqual(tol(fx.t('db' + s), 4));
    });
    // batch 2 < 11 out_features: linear() computes yᵀ = W·xᵀ
    it(`linear, batch smaller than out_features, ${dtype}`, () => {
      const fx = loadTorchFixture('linear_wide');
      const x = fx.t('x').to(dtype), w = fx.t('w').to(dtype);
      expect(maxAbsDiff(linear(x, w, fx.t('b').to(dtype)), fx.t('y' + s))).toBeLessThanOrEqual(tol(fx.t('y' + s), 10)); // 9 products and the bias
      const g = linearBackward(fx.t('dy').to(dtype), x, w);
      expect(maxAbsDiff(g.dx, fx.t('dx' + s))).toBeLessThanOrEqual(tol(fx.t('dx' + s), 11));
      expect(maxAbsDiff(g.dw, fx.t('dw' + s))).toBeLessThanOrEqual(tol(fx.t('dw' + s), 2));
      expect(maxAbsDiff(g.db, fx.t('db' + s))).toBeLessThanOrEqual(tol(fx.t('db' + s), 2));
    });
    it(`cross_entropy ${dtype} (labels stored as I64)`, () => {
      const fx = loadTorchFixture('cross_entropy');
      const labels = Array.from(fx.raw('labels').data as BigInt64Array, Number);
      const { loss, probs } = softmaxCrossEntropy(fx.t('logits').to(dtype), labels);
      expect(Math.abs(loss - fx.t('y' + s).data[0])).toBeLessThanOrEqual(tol(fx.t('y' + s), 4));
      expect(maxAbsDiff(softmaxCrossEntropyBackward(probs, labels), fx.t('dlogits' + s))).toBeLessThanOrEqual(tol(fx.t('dlogits' + s), 4));
    });
  }
  it('cross-entropy of logits ±1e4 is finite and exact (max-subtraction; exp(1e4) overflows)', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const logits = new Tensor(dtype === 'float32' ? new Float32Array([1e4, -1e4, 0, -1e4, 1e4, 0]) : new Float64Array([1e4, -1e4, 0, -1e4, 1e4, 0]), [2, 3]);
      // sample 0, label 0: −log softmax = log(1 + e^−2e4 + e^−1e4) = 0; sample 1, label 2: 1e4 + log(1 + …) = 1e4
      const { loss, probs } = softmaxCrossEntropy(logits, [0, 2]);
      expect(loss).toBe(5000);
      expect(Array.from(probs.data)).toEqual([1, 0, 0, 0, 1, 0]);
      // d/dz (mean loss) = (softmax − onehot)/N
      expect(Array.from(softmaxCrossEntropyBackward(probs, [0, 2]).data)).toEqual([0, 0, 0, 0, 0.5, -0.5]);
    }
  });
  it('relu and its backward (exact)', () => {
    const x = new Tensor(new Float32Array([-1, 0, 2, -0.5, 3]), [5]);
    const y = relu(x);
    expect(Array.from(y.data)).toEqual([0, 0, 2, 0, 3]);
    expect(Array.from(reluBackward(new Tensor(new Float32Array([1, 1, 1, 1, 1]), [5]), y).data)).toEqual([0, 0, 1, 0, 1]);
  });
  // The float32 ReLU works on the bits (relu.ts reluBits); against the definition v < 0 ? 0 : v on
  // every class of float32: ±0, ±denormals, ±normals, ±∞, NaNs of both signs and any payload, and
  // 200 000 random bit patterns. NaN must come back with its bits unchanged.
  it('the float32 ReLU on bits equals v < 0 ? 0 : v on every kind of float32, bit for bit', () => {
    const f = new Float32Array(1), b = new Int32Array(f.buffer);
    const rng = new Rng(5);
    const patterns = [0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x807fffff, 0x00800000, 0x80800000, 0x3f800000, 0xbf800000,
      0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7f800001, 0xff800001, 0x7fc00000, 0xffc00000, 0x7fffffff, 0xffffffff];
    for (let k = 0; k < 200_000; k++) patterns.push(Math.floor(rng.next() * 2 ** 32));
    const wrong: string[] = []; // one expect at the end: 200 000 expect calls cost seconds
    for (const p of patterns) {
      b[0] = p | 0;
      const v = f[0];
      const want = new Float32Array([v < 0 ? 0 : v]);
      const wantBits = Number.isNaN(v) ? p | 0 : new Int32Array(want.buffer)[0];
      if (reluBits(p | 0) !== wantBits) wrong.push(`0x${(p >>> 0).toString(16)}`);
    }
    expect(wrong).toEqual([]);
  });
  it('the float32 ReLU gradient mask on bits equals !(y <= 0) on every kind of float32; reluBackward gives +0 or dy bit for bit', () => {
    const f = new Float32Array(1), b = new Int32Array(f.buffer);
    const rng = new Rng(6);
    const patterns = [0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x807fffff, 0x00800000, 0x80800000, 0x3f800000, 0xbf800000,
      0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7f800001, 0xff800001, 0x7fc00000, 0xffc00000, 0x7fffffff, 0xffffffff, 0xff7fffff, 0xff800002];
    for (let k = 0; k < 200_000; k++) patterns.push(Math.floor(rng.next() * 2 ** 32));
    const wrong: string[] = [];
    for (const p of patterns) {
      b[0] = p | 0;
      if (reluGradMaskBits(p | 0) !== (!(f[0] <= 0) ? -1 : 0)) wrong.push(`0x${(p >>> 0).toString(16)}`);
    }
    expect(wrong).toEqual([]);
    const y = new Float32Array([2, 0, -0, -1, NaN, -Infinity, Infinity, 1e-45]);
    const dy = new Float32Array([NaN, NaN, Infinity, -3, -5, 7, -0, 9]);
    const dx = reluBackward(new Tensor(dy, [8]), new Tensor(y, [8])).data;
    expect(signedZeros(dx)).toEqual([NaN, 0, 0, 0, -5, 0, '-0', 9]);
  });
  it('relu keeps NaN and −0 (float32 and float64)', () => {
    for (const Arr of [Float32Array, Float64Array]) {
      const y = relu(new Tensor(new Arr([-1, -0, NaN, 2, -Infinity, Infinity]), [6])).data;
      expect(signedZeros(y)).toEqual([0, '-0', NaN, 2, 0, Infinity]);
    }
  });
  it('errors name the shape at fault', () => {
    const x = new Tensor(new Float32Array(8), [1, 2, 2, 2]);
    const p = { weight: null, bias: null, runningMean: new Tensor(new Float32Array(3), [3]), runningVar: new Tensor(new Float32Array(2), [2]) };
    expect(() => batchNorm2d(x, p, { training: false })).toThrow('running_mean shape [3] does not match 2 channels');
    const one = new Tensor(new Float32Array(2), [1, 2, 1, 1]);
    const q = { weight: null, bias: null, runningMean: new Tensor(new Float32Array(2), [2]), runningVar: new Tensor(new Float32Array(2), [2]) };
    expect(() => batchNorm2d(one, q, { training: true })).toThrow('expected more than 1 value per channel');
    const stats = { mean: new Float64Array(3), invStd: new Float64Array(2) };
    expect(() => batchNorm2d(one, q, { training: false, stats })).toThrow('batch_norm: stats hold 3 and 2 values, expected 2 (the input\'s channels)');
    expect(() => linear(new Tensor(new Float32Array(6), [2, 3]), new Tensor(new Float32Array(8), [2, 4]), null)).toThrow('input shape [2, 3] does not match weight shape [2, 4]');
    expect(() => softmaxCrossEntropy(new Tensor(new Float32Array(4), [2, 2]), [0, 2])).toThrow('label 2 at index 1 is outside [0, 2)');
  });
});
