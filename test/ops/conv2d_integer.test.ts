// The integer convolution of INT8 graphs: exact sums, so every path must give the direct float64
// reference's values to the bit (integers far below 2⁵³), on the SIMD kernel (32-bit sums) and the
// TypeScript one. End to end against onnxruntime: test/onnx/quant.test.ts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { conv2dInteger, conv2dIntegerApplies } from '../../src/ops/conv2d_integer.js';
import { conv2d } from '../../src/ops/conv2d.js';
import { INT16_GEMM_MAX_K, gemmInt16 } from '../../src/backend/gemm.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/rng.js';
import { withBackend } from '../helpers.js';
import { poolStats, setMinMacsPerPart, setThreads, workersReady } from '../../src/backend/threads.js';

const ints = (rng: Rng, n: number, lo: number, hi: number) => Int16Array.from({ length: n }, () => lo + Math.floor(rng.next() * (hi - lo + 1)));

describe('conv2dInteger', () => {
  const geometry = fc.record({
    N: fc.integer({ min: 1, max: 2 }), groups: fc.integer({ min: 1, max: 3 }), cg: fc.integer({ min: 1, max: 5 }), fg: fc.integer({ min: 1, max: 9 }),
    H: fc.integer({ min: 1, max: 11 }), W: fc.integer({ min: 1, max: 13 }), KH: fc.integer({ min: 1, max: 3 }), KW: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 3 }), sw: fc.integer({ min: 1, max: 2 }), dh: fc.integer({ min: 1, max: 2 }), dw: fc.integer({ min: 1, max: 2 }),
    pads: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }), seed: fc.integer({ min: 1, max: 1e6 }), extreme: fc.boolean(),
  }).filter((g) => g.H + g.pads[0] + g.pads[1] >= (g.KH - 1) * g.dh + 1 && g.W + g.pads[2] + g.pads[3] >= (g.KW - 1) * g.dw + 1);

  it('equals the direct float64 reference to the bit: strides, dilations, uneven padding, groups, values at ±255 (wasm and js)', () => {
    fc.assert(fc.property(geometry, (g) => {
      const rng = new Rng(g.seed), C = g.cg * g.groups, F = g.fg * g.groups;
      const xs = ints(rng, g.N * C * g.H * g.W, -255, 255), ws = ints(rng, F * g.cg * g.KH * g.KW, -255, 255);
      if (g.extreme) { xs.fill(-255); ws.fill(255); } // every product −255·255, the largest magnitude
      const opts = { stride: [g.sh, g.sw] as [number, number], dilation: [g.dh, g.dw] as [number, number], padding: [[g.pads[0], g.pads[1]], [g.pads[2], g.pads[3]]] as [[number, number], [number, number]], groups: g.groups };
      const ref = conv2d(new Tensor(Float64Array.from(xs), [g.N, C, g.H, g.W]), new Tensor(Float64Array.from(ws), [F, g.cg, g.KH, g.KW]), null, { ...opts, algorithm: 'direct' });
      for (const b of ['wasm', 'js'] as const) {
        const y = withBackend(b, () => conv2dInteger(xs, [g.N, C, g.H, g.W], ws, [F, g.cg, g.KH, g.KW], opts));
        expect(y.shape, b).toEqual(ref.shape);
        expect(Array.from(y.data), b).toEqual(Array.from(ref.data));
      }
    }), { numRuns: 150 });
  });

  // a w's packing is kept with it between calls (conv2d_integer.ts): the same array read as another
  // shape (4 filters of 6, then 6 of 4 in two groups of 3) must be packed again, not given the first packing
  it('weights kept between calls are packed again where the same array comes with another shape (wasm and js)', () => {
    const rng = new Rng(31), ws = ints(rng, 24, -255, 255);
    for (const [wShape, C, groups] of [[[4, 6, 1, 1], 6, 1], [[6, 4, 1, 1], 8, 2], [[4, 6, 1, 1], 6, 1]] as const) {
      const xs = ints(rng, C * 2 * 3, -255, 255);
      const ref = conv2d(new Tensor(Float64Array.from(xs), [1, C, 2, 3]), new Tensor(Float64Array.from(ws), [...wShape]), null, { groups, algorithm: 'direct' });
      for (const b of ['wasm', 'js'] as const) {
        const y = withBackend(b, () => conv2dInteger(xs, [1, C, 2, 3], ws, wShape, { groups }));
        expect(Array.from(y.data), `${b} ${wShape.join('×')}`).toEqual(Array.from(ref.data));
      }
    }
  });

  it('a 1×1 conv of stride 1 reads x in place: two images of two groups, each from its own offset, equal the reference (wasm and js)', () => {
    // (the property above almost never draws this geometry: 1×1, stride 1 and no padding on every side;
    // 2×4 maps are whole strips of 8 positions, which the kernel stages in one copy, 3×5 row by row)
    const rng = new Rng(12), N = 2, C = 6, F = 4, groups = 2;
    for (const [H, W] of [[3, 5], [2, 4]]) {
      const xs = ints(rng, N * C * H * W, -255, 255), ws = ints(rng, F * (C / groups), -255, 255);
      const ref = conv2d(new Tensor(Float64Array.from(xs), [N, C, H, W]), new Tensor(Float64Array.from(ws), [F, C / groups, 1, 1]), null, { groups, algorithm: 'direct' });
      for (const b of ['wasm', 'js'] as const) {
        const y = withBackend(b, () => conv2dInteger(xs, [N, C, H, W], ws, [F, C / groups, 1, 1], { groups }));
        expect(Array.from(y.data), `${b} ${H}×${W}`).toEqual(Array.from(ref.data));
      }
    }
  });

  it('sums up to INT16_GEMM_MAX_K terms of ±255² without wrapping: a 1×1 conv over 33,025 channels gives ±2,147,450,625 (closed form)', () => {
    const K = INT16_GEMM_MAX_K;
    expect(K).toBe(33025);
    expect(K * 255 * 255).toBeLessThan(2 ** 31);
    const x = new Int16Array(K * 3).fill(255), w = new Int16Array(2 * K).fill(-255);
    w.fill(255, K); // filter 1: +255
    for (let i = 0; i < K; i++) x[i * 3 + 2] = -255; // position 2: −255
    for (const b of ['wasm', 'js'] as const) {
      const y = withBackend(b, () => conv2dInteger(x, [1, K, 1, 3], w, [2, K, 1, 1], {}));
      expect(Array.from(y.data), b).toEqual([-2147450625, -2147450625, 2147450625, 2147450625, 2147450625, -2147450625]);
    }
  });

  it('the integer GEMM refuses a gathered B whose offsets leave its planes (an offset past them would read other memory)', () => {
    const src = new Int16Array(10), A = { data: new Int16Array(2), offset: 0, M: 1, K: 2 };
    const run = (taps: number[], cols: number[]) => () => gemmInt16(A, cols.length, { src, taps: Int32Array.from(taps), cols: Int32Array.from(cols) }, 0, 0, new Float64Array(cols.length), 0, cols.length);
    for (const b of ['wasm', 'js'] as const) {
      expect(() => withBackend(b, run([0, 5], [0, 4])), b).not.toThrow(); // 5 + 4 = 9: the last value
      expect(() => withBackend(b, run([0, 5], [0, 5])), b).toThrow('gemmInt16: a gathered offset (taps 0 … 5, columns 0 … 5) leaves its 10 values');
      expect(() => withBackend(b, run([-1, 5], [0, 1])), b).toThrow(/leaves its 10 values/);
    }
  });

  it('takes sums within int32 only: one more term is refused, and conv2dIntegerApplies says so first', () => {
    expect(conv2dIntegerApplies([4, 33025, 1, 1])).toBe(true);
    expect(conv2dIntegerApplies([4, 3669, 3, 3])).toBe(true); // 33,021 terms
    expect(conv2dIntegerApplies([4, 3670, 3, 3])).toBe(false); // 33,030
    expect(conv2dIntegerApplies([4, 33026, 1, 1])).toBe(false);
    expect(() => conv2dInteger(new Int16Array(33026), [1, 33026, 1, 1], new Int16Array(33026), [1, 33026, 1, 1], {})).toThrow('conv2d: sums of 33026 terms could overflow 32 bits (at most 33025)');
  });

  it('on two threads, each taking blocks of positions (one image of one group cut for both too; a 1×1 conv reading x in place), the same values as the reference (wasm and js)', async () => {
    setThreads(2);
    await workersReady();
    const saved = [setMinMacsPerPart('wasm', 1 << 10), setMinMacsPerPart('js', 1 << 10)];
    try {
      const rng = new Rng(8);
      // (the last: a 1×1 conv of stride 1, whose columns are x's own positions, in two blocks)
      for (const [N, C, F, H, W, groups, k] of [[1, 6, 10, 13, 17, 1, 3], [3, 8, 6, 9, 7, 2, 3], [1, 6, 10, 13, 17, 1, 1]]) {
        const xs = ints(rng, N * C * H * W, -255, 255), ws = ints(rng, F * (C / groups) * k * k, -255, 255);
        const opts = k === 3 ? { padding: 1, stride: [2, 1] as [number, number], groups } : { groups };
        const ref = conv2d(new Tensor(Float64Array.from(xs), [N, C, H, W]), new Tensor(Float64Array.from(ws), [F, C / groups, k, k]), null, { ...opts, algorithm: 'direct' });
        for (const b of ['wasm', 'js'] as const) {
          const before = poolStats.workerParts;
          const y = withBackend(b, () => conv2dInteger(xs, [N, C, H, W], ws, [F, C / groups, k, k], opts));
          expect(poolStats.workerParts, `${b}: a part ran on the worker`).toBeGreaterThan(before);
          expect(Array.from(y.data), `${b} N ${N}`).toEqual(Array.from(ref.data));
        }
      }
    } finally {
      setMinMacsPerPart('wasm', saved[0]);
      setMinMacsPerPart('js', saved[1]);
      setThreads(1);
    }
  });

  it('a large map runs in blocks of positions: 3×3 over 40×300 at 129 channels (blocks of 3,608 positions, the last 1,176) equals the reference', () => {
    const rng = new Rng(3), C = 129, H = 40, W = 300, F = 5;
    const xs = ints(rng, C * H * W, -255, 255), ws = ints(rng, F * C * 9, -255, 255);
    const ref = conv2d(new Tensor(Float64Array.from(xs), [1, C, H, W]), new Tensor(Float64Array.from(ws), [F, C, 3, 3]), null, { padding: 1, algorithm: 'im2col' });
    const y = conv2dInteger(xs, [1, C, H, W], ws, [F, C, 3, 3], { padding: 1 });
    expect(Array.from(y.data)).toEqual(Array.from(ref.data));
  });
});
