// The batch's halves (src/ops/batch_shards.ts): every sum over a training batch's images is the sum
// over images [0, ⌈N/2⌉) plus the sum over the rest. With a batch of two, each half is one image, so
// the reference is the op on each image alone, the two results added in float32 (or float64): bit
// for bit, on both backends. And what the halves need of the kernels: an image's dx independent of
// its place among the GEMM's columns, a GEMM that sums its terms in two parts.
import { describe, expect, it } from 'vitest';
import { conv2dBackward } from '../../src/ops/conv2d.js';
import { linearBackward } from '../../src/ops/linear.js';
import { batchSums, gradientByHalves, onBatchShard } from '../../src/ops/batch_shards.js';
import { gemm } from '../../src/backend/gemm.js';
import { addOnto } from '../../src/backend/add.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { signedZeros, withBackend } from '../helpers.js';

const image = (t: Tensor, n: number) => new Tensor(t.data.slice(n * (t.size / t.shape[0]), (n + 1) * (t.size / t.shape[0])), [1, ...t.shape.slice(1)]);
// a + b elementwise, rounded to a's type once
const added = (a: ArrayLike<number>, b: ArrayLike<number>, f32: boolean) => Array.from(a, (v, i) => (f32 ? Math.fround(v + b[i]) : v + b[i]));

describe('sums over the batch by halves', () => {
  for (const backend of ['wasm', 'js'] as const) {
    for (const algorithm of ['im2col', 'direct'] as const) {
      it(`conv2d backward's dW and db for a batch of two are each image's alone added, bit for bit (${algorithm}, ${backend}; stride 1 and 2)`, () => withBackend(backend, () => {
        const rng = new Rng(3);
        for (const stride of [1, 2]) {
          const x = uniform([2, 5, 9, 9], rng, -1, 1), w = uniform([6, 5, 3, 3], rng, -1, 1);
          const Ho = stride === 1 ? 9 : 5, dy = uniform([2, 6, Ho, Ho], rng, -1, 1);
          const opts = { stride, padding: 1, algorithm };
          const both = conv2dBackward(dy, x, w, opts, { dx: false });
          const [a, b] = [0, 1].map((n) => conv2dBackward(image(dy, n), image(x, n), w, opts, { dx: false }));
          expect(Array.from(both.dw!.data)).toEqual(added(a.dw!.data, b.dw!.data, true));
          expect(Array.from(both.db!.data)).toEqual(added(a.db!.data, b.db!.data, true));
        }
      }));
    }
    it(`linear backward's dW and db for a batch of two are each row's alone added, bit for bit (${backend})`, () => withBackend(backend, () => {
      const rng = new Rng(4);
      const x = uniform([2, 37], rng, -1, 1), w = uniform([11, 37], rng, -1, 1), dy = uniform([2, 11], rng, -1, 1);
      const both = linearBackward(dy, x, w);
      const [a, b] = [0, 1].map((n) => linearBackward(image(dy, n), image(x, n), w));
      expect(Array.from(both.dw.data)).toEqual(added(a.dw.data, b.dw.data, true));
      expect(Array.from(both.db.data)).toEqual(added(a.db.data, b.db.data, true));
    }));
  }

  it('on a thread holding one half (data parallel) a sum is its images\' then the meeting\'s; a parameter\'s gradient stays its own', () => {
    const calls: number[][] = [];
    const shard = { images: 10, half: 1 as const, combine: (s: Float64Array) => { calls.push(Array.from(s)); s[0] += 100; } };
    const seen: [number, number][] = [];
    const sumOver = (n0: number, n1: number, out: Float64Array) => { seen.push([n0, n1]); out[0] = n1 - n0; };
    const out = new Float64Array(1), grad = new Float32Array(1);
    onBatchShard(shard, () => {
      batchSums(4, out, sumOver);
      gradientByHalves(4, grad, sumOver);
    });
    expect(seen).toEqual([[0, 4], [0, 4]]); // all four of its images, one sum
    expect(calls).toEqual([[4]]); // the meeting, for the total only
    expect(out[0]).toBe(104);
    expect(grad[0]).toBe(4);
    // on its own the same thread cuts a batch of 5 at 3
    seen.length = 0;
    batchSums(5, out, sumOver);
    expect(seen).toEqual([[0, 3], [3, 5]]);
    expect(out[0]).toBe(5);
  });
});

describe('what the halves need of the kernels', () => {
  // The kernel's col2im adds a block of the GEMM's columns at a time, so a dx element's terms are
  // added block by block; blocks end where images start, so an image's dx is the same wherever it
  // lies in the batch. 25 images of 7×7 output positions: 1,225 columns, past one block of 1,024,
  // which would end inside image 20.
  it('an image\'s dx from a stride-2 conv is the same bits in a batch of 25 as alone (columns past one kernel block)', () => {
    const rng = new Rng(6);
    const x = uniform([25, 3, 13, 13], rng, -1, 1), w = uniform([4, 3, 3, 3], rng, -1, 1), dy = uniform([25, 4, 7, 7], rng, -1, 1);
    const opts = { stride: 2, padding: 1, algorithm: 'im2col' as const };
    const all = conv2dBackward(dy, x, w, opts, { dw: false, db: false });
    const size = 3 * 13 * 13;
    for (const n of [19, 20, 21, 24]) {
      const alone = conv2dBackward(image(dy, n), image(x, n), w, opts, { dw: false, db: false });
      expect(signedZeros(all.dx!.data.slice(n * size, (n + 1) * size))).toEqual(signedZeros(alone.dx!.data));
    }
  });

  // im2col's backward sums dW over chunks of at most 2²¹/K positions that end where images start; a
  // chunk that holds the second half's start sums its two halves apart, and where the second half
  // spans more chunks its sums go into a dW of their own (dW1), the chunk's second part read from the
  // half's first position. 2,427 channels of 3×3 taps (K = 21,843) make chunks of 96 positions, 24
  // images of 2×2; 64 images put the half's start (image 32) inside the second chunk, and the second
  // half across two. With dx not asked for, dW reads dy across images in place; with dx, from dy
  // gathered for both: the same bits either way. Against the float64 definition, each element a
  // float32 sum of 256 products (γ₂₅₆ of S = Σ|dy·x|) stored at most four times between chunks and
  // halves (4u·S).
  it('dW where the second half starts inside a backward chunk and spans two: the same bits with and without dx, and the definition', () => withBackend('wasm', () => {
    const rng = new Rng(9);
    const [N, C, F] = [64, 2427, 2];
    const x = uniform([N, C, 2, 2], rng, -1, 1), w = uniform([F, C, 3, 3], rng, -1, 1), dy = uniform([N, F, 2, 2], rng, -1, 1);
    const opts = { stride: 1, padding: 1, algorithm: 'im2col' as const };
    const inPlace = conv2dBackward(dy, x, w, opts, { dx: false, db: false }).dw!.data;
    const gathered = conv2dBackward(dy, x, w, opts, { db: false }).dw!.data;
    expect(new Int32Array(inPlace.buffer, inPlace.byteOffset, inPlace.length)).toEqual(new Int32Array(gathered.buffer, gathered.byteOffset, gathered.length));
    const U = 2 ** -24, bound = (256 * U) / (1 - 256 * U) + 4 * U;
    let worst = 0;
    for (let f = 0; f < F; f++) for (let c = 0; c < C; c++) for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) {
      let sum = 0, S = 0;
      for (let n = 0; n < N; n++) for (let oh = 0; oh < 2; oh++) for (let ow = 0; ow < 2; ow++) {
        const ih = oh + kh - 1, iw = ow + kw - 1;
        if (ih < 0 || ih >= 2 || iw < 0 || iw >= 2) continue;
        const p = dy.data[((n * F + f) * 2 + oh) * 2 + ow] * x.data[((n * C + c) * 2 + ih) * 2 + iw];
        sum += p;
        S += Math.abs(p);
      }
      worst = Math.max(worst, Math.abs(inPlace[((f * C + c) * 3 + kh) * 3 + kw] - sum) / (bound * S));
    }
    expect(worst).toBeLessThanOrEqual(1);
  }));

  // splitK: the terms from splitK on summed from zero, then added to the first ones' sum (which
  // starts from C when accumulating); 'plus': C + the product. Against the two GEMMs run apart
  // and added in float32. Sizes past a panel (256 terms) and a column block (1,024).
  it('gemm with splitK and with \'plus\' equal the GEMMs run apart and added in float32, bit for bit (wasm and js)', () => {
    for (const backend of ['wasm', 'js'] as const) withBackend(backend, () => {
      const rng = new Rng(8);
      for (const [M, N, K, split] of [[5, 9, 20, 7], [9, 1030, 300, 260], [4, 3, 513, 256], [3, 8, 40, 1]]) {
        const a = uniform([M, K], rng, -1, 1).data as Float32Array, b = uniform([K, N], rng, -1, 1).data as Float32Array;
        const c0 = uniform([M, N], rng, -1, 1).data as Float32Array;
        const A = { data: a, offset: 0, ld: K, trans: false }, B = { data: b, offset: 0, ld: N, trans: false };
        const A2 = { data: a, offset: split, ld: K, trans: false }, B2 = { data: b, offset: split * N, ld: N, trans: false };
        for (const acc of [false, true]) {
          const got = c0.slice();
          gemm(M, N, K, A, B, got, 0, N, acc, undefined, undefined, undefined, split);
          const first = c0.slice(), second = new Float32Array(M * N);
          gemm(M, N, split, A, B, first, 0, N, acc);
          gemm(M, N, K - split, A2, B2, second, 0, N, false);
          expect(signedZeros(got)).toEqual(signedZeros(added(first, second, true)));
        }
        const plus = c0.slice(), fresh = new Float32Array(M * N);
        gemm(M, N, K, A, B, plus, 0, N, 'plus');
        gemm(M, N, K, A, B, fresh, 0, N, false);
        expect(signedZeros(plus)).toEqual(signedZeros(added(c0, fresh, true)));
      }
    });
  });

  it('addOnto adds as a float32 loop does, bit for bit: NaN, ±0, ±∞, lengths past a chunk and not a multiple of four', () => {
    for (const backend of ['wasm', 'js'] as const) withBackend(backend, () => {
      const rng = new Rng(9);
      const specials = [NaN, 0, -0, Infinity, -Infinity, 3.4e38, -3.4e38, 1e-45];
      for (const n of [1, 63, 64, 4095, 4097, 9001]) {
        const a = Float32Array.from({ length: n }, (_, i) => (i % 17 === 0 ? specials[i % 8] : rng.next() * 4 - 2));
        const b = Float32Array.from({ length: n }, (_, i) => (i % 13 === 0 ? specials[(i + 3) % 8] : rng.next() * 4 - 2));
        const want = a.slice();
        for (let i = 0; i < n; i++) want[i] += b[i];
        addOnto(a, b);
        expect(signedZeros(a)).toEqual(signedZeros(want));
      }
    });
  });
});
