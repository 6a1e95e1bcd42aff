// The WebAssembly side: the emitter's encodings against the specification's own examples, and the
// SIMD GEMM's memory: no growth after warm-up, no user array inside it, nothing detached by growth.
import { describe, expect, it } from 'vitest';
import { sleb, uleb } from '../../src/backend/wasm/emit.js';
import { gemmModuleBytes } from '../../src/backend/wasm/gemm_code.js';
import { floats, getInstance, releasePanels, scratchAbove, setArenaBytes, simdStats, wasmArenaBytes, wasmMemoryBytes } from '../../src/backend/wasm/instance.js';
import { flippedFiltersSimd, padder } from '../../src/backend/wasm/gather.js';
import { setTouchAhead, touchAhead, touchTrialTimes, touchWins, winogradInputSimd, winogradOutputSimd, winogradTilesSimd } from '../../src/backend/wasm/winograd_drivers.js';
import { float32, inputTransformF4, outputTransformF4, winogradWeights } from '../../src/ops/conv2d_winograd.js';
import { AUTO_AFTER, conv2d, conv2dBackward, measuredAlgorithm } from '../../src/ops/conv2d.js';
import { convGeometry } from '../../src/ops/conv2d_geometry.js';
import { setBackend } from '../../src/backend/backend.js';
import { setThreads } from '../../src/backend/threads.js';
import { bPanels, filterRows, gatherImageRows, gemm, prepareFilters } from '../../src/backend/gemm.js';
import { packPanels } from '../../src/backend/wasm/gemm_simd.js';
import { RepVGG } from '../../src/nn/repvgg.js';
import { Conv2d } from '../../src/nn/layers.js';
import { convert } from '../../src/reparam/repvgg.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { batchNorm2d, batchNorm2dBackward } from '../../src/ops/batchnorm.js';
import { sgdUpdate } from '../../src/ops/sgd.js';
import { sgdOnKernel } from '../../src/backend/sgd.js';

describe('the WebAssembly emitter', () => {
  it('encodes LEB128 as the specification does', () => {
    // the DWARF / WebAssembly examples: 624485 = e5 8e 26, −123456 = c0 bb 78
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(uleb(0)).toEqual([0]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]); // bit 6 set: needs a second byte to stay positive
  });

  it('writes a module the engine validates, starting with the magic and version', () => {
    const bytes = gemmModuleBytes();
    expect([...bytes.subarray(0, 8)]).toEqual([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    expect(WebAssembly.validate(bytes as BufferSource)).toBe(true);
  });
});

describe('the SIMD GEMM\'s memory', () => {
  it('does not grow after warm-up, and never holds a user array', () => {
    setBackend('wasm');
    setThreads(1);
    const model = convert(RepVGG.fromConfig({ num_blocks: [1, 2, 1, 1], width_multiplier: [0.5, 0.5, 0.5, 0.5], num_classes: 10 }, { seed: 2 }).eval());
    const x = uniform([2, 3, 32, 32], new Rng(1), -1, 1);
    // warm-up: the first forward runs 'auto' as im2col (untimed: too few calls), the second fills the modules' caches
    // (their packed filters are copied into WebAssembly memory once, to stay)
    model.forward(x);
    model.forward(x);
    const bytes = wasmMemoryBytes(), copied = simdStats.bytesCopied;
    model.forward(x);
    const y = model.forward(x);
    expect(wasmMemoryBytes()).toBe(bytes);
    expect(simdStats.bytesCopied).toBeGreaterThan(copied); // the GEMMs did run on WebAssembly
    expect(y.data.buffer).not.toBeInstanceOf(WebAssembly.Memory);
    expect(y.data.buffer.constructor === ArrayBuffer || y.data.buffer.constructor === SharedArrayBuffer).toBe(true);
    setThreads(2);
  });

  // V8 copies to or from a SharedArrayBuffer with relaxed atomics: word by word where both sides lie
  // at the same offset modulo 8 bytes, byte by byte otherwise (3× slower from memory, 7× in cache). A
  // stem's im2col has K = 3·3·3 = 27 gathered rows, whose offset table sat just below C's block and
  // left it at an odd float: each of its output rows went out byte by byte into the shared
  // activations of two threads. A scatter's M row offsets sit below A's place the same way.
  it('copies between its memory and shared memory at the same offset modulo 8 bytes on both sides', () => {
    setBackend('wasm');
    setThreads(1);
    const x = uniform([1, 3, 40, 40], new Rng(3), -1, 1), w = uniform([8, 3, 3, 3], new Rng(4), -1, 1);
    const out = new Tensor(new Float32Array(new SharedArrayBuffer(4 * 8 * 20 * 20)), [1, 8, 20, 20]);
    const wShared = new Tensor(new Float32Array(new SharedArrayBuffer(4 * w.size)), w.shape);
    wShared.data.set(w.data);
    const dy = uniform([1, 8, 20, 20], new Rng(5), -1, 1);
    const proto = Object.getPrototypeOf(Float32Array.prototype) as { set: (this: Float32Array, src: ArrayLike<number>, at?: number) => void };
    const original = proto.set;
    // each copy between the kernel's memory and shared memory: its destination's and source's byte offsets
    const offsets: [number, number][] = [];
    proto.set = function (src, at = 0) {
      const kernel = getInstance().f32.buffer;
      if (ArrayBuffer.isView(src) && (this.buffer === kernel || src.buffer === kernel) && (this.buffer instanceof SharedArrayBuffer || src.buffer instanceof SharedArrayBuffer)) {
        offsets.push([this.byteOffset + this.BYTES_PER_ELEMENT * at, src.byteOffset]);
      }
      original.call(this, src, at);
    };
    try {
      // the output stored into shared memory; dx scattered by col2im, W_gᵀ (M = 27 rows) read whole from shared memory
      conv2d(x, w, null, { stride: 2, padding: 1, algorithm: 'im2col', out });
      conv2dBackward(dy, x, wShared, { stride: 2, padding: 1, algorithm: 'im2col' }, { dw: false, db: false });
    } finally {
      proto.set = original;
    }
    expect(offsets.length).toBeGreaterThanOrEqual(2); // both crossed this way
    expect(offsets.filter(([d, s]) => (d - s) % 8 !== 0)).toEqual([]);
    setThreads(2);
  });

  // A module's packed filters stay in WebAssembly memory (the arena) up to a limit; past it the arena
  // starts over, and filters larger than it are copied block by block. All three must compute the
  // same bits (the same kernel on the same values), and keeping them must save the copies.
  it('keeps packed filters resident: the same bits whether they fit, start over or never fit', () => {
    setBackend('wasm');
    setThreads(1);
    const model = convert(RepVGG.fromConfig({ num_blocks: [1, 2, 2, 1], width_multiplier: [0.5, 0.5, 0.5, 0.5], num_classes: 10 }, { seed: 3 }).eval());
    // pinned, so that the panels' sizes are known: im2col's for stride 2, F(4×4)'s U (4× the weights) for stride 1
    for (const [, c] of model.namedConvs()) c.algorithm = c.stride === 2 ? 'im2col' : 'winograd';
    const x = uniform([1, 3, 32, 32], new Rng(4), -1, 1);
    const run = (bytes: number) => {
      setArenaBytes(bytes);
      model.forward(x);
      model.forward(x); // kept filters become resident at a conv's second call
      const c0 = simdStats.bytesCopied;
      const y = Array.from(model.forward(x).data);
      return { y, copied: simdStats.bytesCopied - c0 };
    };
    const fits = run(128 * 2 ** 20);
    try {
      // this model's panels, in order: 3.5, 37, 74, 590, 295, 2359 and 1180 kB; with 100 kB, 700 kB and
      // 2.5 MB the arena starts over mid-pass, and some panels never fit
      for (const bytes of [0, 8e3, 100e3, 700e3, 2.5e6]) {
        const r = run(bytes);
        expect(r.y, `arena of ${bytes} bytes`).toEqual(fits.y);
        if (bytes === 0) expect(fits.copied).toBeLessThan(r.copied);
      }
    } finally {
      setArenaBytes(128 * 2 ** 20);
      setThreads(2);
    }
  });

  // A one-shot call grows no kernel memory for filters: a conv's prepared filters are copied block by
  // block at its first call and become resident at its second (first-touched memory is what a
  // one-shot run pays most for: docs/performance.md).
  it('a model keeps nothing resident after one forward, and its filters from the second on', () => {
    setBackend('wasm');
    setThreads(1);
    setArenaBytes(128 * 2 ** 20); // empties it
    const model = convert(RepVGG.fromConfig({ num_blocks: [1, 1, 1, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 10 }, { seed: 5 }).eval());
    for (const [, c] of model.namedConvs()) c.algorithm = 'im2col';
    const x = uniform([1, 3, 32, 32], new Rng(6), -1, 1);
    const y1 = Array.from(model.forward(x).data);
    expect(wasmArenaBytes()).toBe(0);
    const y2 = Array.from(model.forward(x).data);
    expect(wasmArenaBytes()).toBeGreaterThan(0);
    expect(y2).toEqual(y1); // the same bits either way
    setThreads(2);
  });

  it.each(['im2col', 'winograd'] as const)('a %s conv: nothing resident after its first call, its filters after its second', (algorithm) => {
    setBackend('wasm');
    setThreads(1);
    setArenaBytes(128 * 2 ** 20); // empties it
    const conv = new Conv2d(8, 8, 3, { padding: 1, rng: new Rng(7) }).eval();
    conv.algorithm = algorithm;
    const x = uniform([1, 8, 12, 12], new Rng(8), -1, 1);
    conv.forward(x);
    expect(wasmArenaBytes()).toBe(0);
    conv.forward(x);
    expect(wasmArenaBytes()).toBeGreaterThan(0);
    setThreads(2);
  });

  // 'auto' times its candidates with their filters kept in the arena, as modules keep theirs, then
  // releases them: only what modules keep may stay (a 7×7 map of 13 channels: a shape no other test measures)
  it("'auto' leaves nothing of its timing in the arena", () => {
    setBackend('wasm');
    setThreads(1);
    const rng = new Rng(6);
    const x = uniform([1, 13, 7, 7], rng, -1, 1), w = uniform([13, 13, 3, 3], rng, -1, 1);
    const before = wasmArenaBytes();
    for (let i = 0; i <= AUTO_AFTER; i++) conv2d(x, w, null, { padding: 1 }); // the last call times
    expect(measuredAlgorithm(convGeometry(x.shape, w.shape, { padding: 1 }), 'float32')).toBeDefined();
    expect(wasmArenaBytes()).toBe(before);
    setThreads(2);
  });

  it('growing it leaves earlier results intact (they are copies, not views)', () => {
    setBackend('wasm');
    const small = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7) % 5) - 2);
    const a = small(4 * 8), b = small(8 * 4), c = new Float32Array(16);
    gemm(4, 4, 8, { data: a, offset: 0, ld: 8, trans: false }, { data: b, offset: 0, ld: 4, trans: false }, c, 0, 4, false);
    const before = Array.from(c);
    const before64 = wasmMemoryBytes();
    // a GEMM whose blocks need more memory than any before: M = 2000 rows of C, 1000 columns
    const M = 2000, N = 1000, K = 3;
    const big = new Float32Array(M * N);
    gemm(M, N, K, { data: small(M * K), offset: 0, ld: K, trans: false }, { data: small(K * N), offset: 0, ld: N, trans: false }, big, 0, N, false);
    expect(wasmMemoryBytes()).toBeGreaterThan(before64);
    expect(c.byteLength).toBe(64); // not detached
    expect(Array.from(c)).toEqual(before);
    // and the small product is exact (integers): c[0] = Σ_k a[0, k]·b[k, 0]
    let s = 0;
    for (let k = 0; k < 8; k++) s += a[k] * b[k * 4];
    expect(c[0]).toBe(s);
  });
});

describe('touchLines (the next block of kept filters started on its way in)', () => {
  // It only reads: one word from each 64-byte line of the region, their bits xored into what it
  // returns (so that no load is dead). Against that xor written out, for regions of 0 to 5 lines
  // and a partial line; the memory it reads is left as it was.
  it('reads the first word of every line of the region and returns their xor, writing nothing', () => {
    const inst = getInstance();
    const at = inst.arenaEnd, mem = scratchAbove(6 * 16 + 64);
    const words = new Int32Array(mem.buffer, 4 * at, 6 * 16 + 16);
    for (let i = 0; i < words.length; i++) words[i] = (i * 2654435761) | 0;
    const before = words.slice();
    for (const bytes of [0, 4, 64, 65, 128, 320, 384]) {
      let want = 0;
      for (let p = 0; p < bytes; p += 64) want ^= words[p / 4];
      expect(inst.touchLines(4 * at, bytes), `${bytes} bytes`).toBe(want);
    }
    expect(Array.from(words)).toEqual(Array.from(before));
  });
});

describe('the SIMD plane padder', () => {
  // The padded source im2col's gather and Winograd's input transform read: planes copied to the end
  // of their region and spread over it in place with their zeros, or copied just past the padded
  // planes (staged: the region holds both) and their rows copied out of the way. Against a
  // zero-padded copy written here, bit for bit (a copy does no arithmetic), for every padding from 0
  // to 2 on each side (none: the planes stay or move to the region's start), rows of 1 to 9 floats
  // (the copies' vectors and remainders) and 1 to 4 planes (in place, the first ones far enough from
  // their source to be zeroed whole first, the last not); the floats around the region must stay as
  // they were.
  it('writes exactly the zero-padded planes, its source lying inside the region', () => {
    const rng = new Rng(5);
    const mem = floats(4096);
    for (const staged of [false, true]) {
      for (const [H, W] of [[1, 1], [1, 2], [2, 3], [3, 4], [5, 5], [4, 9], [7, 7], [2, 8]]) {
        for (let code = 0; code < 81; code++) {
          const [pt, pb, pl, pr] = [code % 3, Math.floor(code / 3) % 3, Math.floor(code / 9) % 3, Math.floor(code / 27) % 3];
          const planes = 1 + (code % 4), Hp = H + pt + pb, Wp = W + pl + pr, padded = planes * Hp * Wp, at = 40;
          const x = Float32Array.from({ length: planes * H * W }, () => rng.next() * 2 - 1);
          const size = staged ? padded + x.length : padded;
          const want = new Float32Array(padded);
          for (let p = 0; p < planes; p++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) want[p * Hp * Wp + (pt + i) * Wp + pl + j] = x[(p * H + i) * W + j];
          mem.fill(NaN, 0, at + size + 40);
          const src = at + size - x.length;
          mem.set(x, src);
          padder(getInstance(), at, size, 'test')(src, planes, H, W, pt, pb, pl, pr);
          expect(Array.from(mem.subarray(at, at + padded)), `${staged ? 'staged' : 'in place'}, ${planes}×${H}×${W}, pads ${pt} ${pb} ${pl} ${pr}`).toEqual(Array.from(want));
          expect(mem.subarray(0, at).every(Number.isNaN) && mem.subarray(at + size, at + size + 40).every(Number.isNaN)).toBe(true);
        }
      }
    }
  });

  it('refuses a source that would be written over before it is read, or planes that leave the region', () => {
    const pad = padder(getInstance(), 0, 2 * 4 * 4, 'test'); // two 2×2 planes padded by 1: 4×4 each
    expect(() => pad(32 - 8 - 1, 2, 2, 2, 1, 1, 1, 1)).toThrow(/test: padding 2 planes of 2×2 at 23 would leave the source of 32 floats at 0/);
    expect(() => pad(32 - 7, 2, 2, 2, 1, 1, 1, 1)).toThrow(/would leave the source/);
    expect(() => pad(32 - 8, 2, 2, 2, 1, 2, 1, 1)).toThrow(/would leave the source/);
  });
});

describe('rows of images laid side by side (gatherImageRows: dy gathered for dW)', () => {
  // A copy: bit for bit, on both backends, against the element-wise definition, for position ranges
  // that start and end inside images, a group's rows (srcOff) of images with more rows, rows of 1 to
  // 9 positions (the copy's vector loop and its remainder), a destination with longer rows; the
  // destination's other floats stay as they were.
  it('writes each image\'s share of each row where its positions go, nothing else', () => {
    const rng = new Rng(8);
    for (const backend of ['js', 'wasm'] as const) {
      setBackend(backend);
      for (const [N, F, Fg, gi, P, qa, qb, extra] of [[3, 4, 4, 0, 49, 0, 147, 0], [5, 6, 2, 1, 7, 3, 31, 5], [2, 8, 8, 0, 1, 0, 2, 0], [4, 3, 3, 0, 9, 10, 11, 2], [32, 16, 16, 0, 4, 0, 128, 0]] as const) {
        const src = Float32Array.from({ length: N * F * P }, () => rng.next() * 2 - 1);
        const L = qb - qa, ld = L + extra, dstOff = 3;
        const dst = new Float32Array(dstOff + Fg * ld + 4).fill(NaN);
        gatherImageRows(src, gi * Fg * P, F * P, P, Fg, P, qa, qb, dst, dstOff, ld);
        const want = new Float32Array(dst.length).fill(NaN);
        for (let r = 0; r < Fg; r++) for (let j = 0; j < L; j++) {
          const n = Math.floor((qa + j) / P), p = qa + j - n * P;
          want[dstOff + r * ld + j] = src[(n * F + gi * Fg + r) * P + p];
        }
        expect(Array.from(dst), `${backend}: ${Fg} rows of ${F}, positions ${qa}…${qb} of images of ${P}`).toEqual(Array.from(want));
      }
    }
    setBackend('wasm');
    expect(() => gatherImageRows(new Float32Array(10), 0, 5, 5, 2, 5, 0, 3, new Float32Array(6), 1, 3)).toThrow(/gatherImageRows: 2 rows of positions 0…3 \(images of 5\) would leave the source \(10\) or the destination \(6\)/);
  });
});

describe('the SIMD offset check (offsetBytes: a gather\'s and a scatter\'s offsets, floats to bytes)', () => {
  // The largest offset, or −1 with nothing written where one is negative or not below the limit;
  // else each ×4 in place. Tables of 1 to 13 offsets and 1,001 (the four-at-a-time pass and the rest),
  // an offender at every position, at −1, at the limit and far past it (2³⁰: ×4 would overflow).
  it('returns the largest and writes bytes, or refuses a table with an offender untouched', () => {
    const rng = new Rng(17);
    const inst = getInstance();
    const mem = floats(4096), ints = new Int32Array(mem.buffer), at = 100;
    for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 13, 1001]) {
      const src = Int32Array.from({ length: n }, () => Math.floor(rng.next() * 1000));
      const limit = 1000;
      ints.set(src, at);
      ints[at + n] = 12345; // past the table: never touched
      expect(inst.offsetBytes(4 * at, 4 * at, n, limit), `n ${n}`).toBe(Math.max(...src));
      expect(Array.from(ints.subarray(at, at + n))).toEqual(Array.from(src, (o) => 4 * o));
      expect(ints[at + n]).toBe(12345);
      for (let i = 0; i < Math.min(n, 13); i++) {
        for (const bad of [-1, limit, 1 << 30]) {
          const t = src.slice();
          t[i] = bad;
          ints.set(t, at);
          expect(inst.offsetBytes(4 * at, 4 * at, n, limit), `n ${n}, ${bad} at ${i}`).toBe(-1);
          expect(Array.from(ints.subarray(at, at + n)), 'left as it was').toEqual(Array.from(t));
        }
      }
    }
  });
});

describe('the SIMD Winograd filter transform', () => {
  // U = G g Gᵀ on the kernels does TypeScript's float64 operations in its order (zero coefficients
  // included) and rounds once: the same bits ('js' runs the TypeScript transform, 'wasm' the kernel),
  // NaN as NaN; an odd channel count (the last channel alone), groups, and 600 channels (9 filters
  // per chunk: a group of 20 goes in 3 chunks, the last ragged); −0, ±∞ and NaN among the weights.
  it('writes bit for bit the values of the TypeScript transform', () => {
    const rng = new Rng(12);
    let mismatches = 0, compared = 0;
    for (const [F, Cg, groups] of [[4, 3, 1], [6, 5, 2], [20, 600, 1], [8, 2, 4]] as const) {
      const w = Float32Array.from({ length: F * Cg * 9 }, () => (rng.next() * 2 - 1) * 10 ** Math.floor(rng.next() * 6 - 3));
      w.set([-0, Infinity, -Infinity, NaN, 0], 7);
      setBackend('js');
      const ref = winogradWeights(w, F, Cg, groups, 4).data;
      setBackend('wasm');
      const got = winogradWeights(w, F, Cg, groups, 4).data;
      expect(got.length).toBe(ref.length);
      for (let i = 0; i < ref.length; i++, compared++) if (!Object.is(got[i], ref[i])) mismatches++;
    }
    expect(compared).toBeGreaterThan(400000);
    expect(mismatches).toBe(0);
  });
});

describe('the SIMD Winograd input transform', () => {
  // It does the TypeScript transform's float32 operations in the same order, four tiles in the lanes
  // of an f32x4: V must be the same bits, for tiles anywhere in a padded multi-image source, a count
  // not a multiple of four (the last quad filled with the last tile) and several channels.
  it.each(['plain rows', 'GEMM panels'] as const)('writes bit for bit the values of the TypeScript transform (V = Bᵀ d B, F(4×4)), laid out as %s', (layout) => {
    const rng = new Rng(3);
    for (const [images, channels, Hp, Wp, count] of [[1, 1, 6, 6, 1], [2, 3, 10, 14, 7], [3, 2, 18, 10, 19]] as const) {
      const size = images * channels * Hp * Wp;
      const source = Float32Array.from({ length: size }, () => (rng.next() * 2 - 1) * 10 ** Math.floor(rng.next() * 6 - 3));
      const quads = Math.ceil(count / 4), packed = layout === 'GEMM panels';
      const rowsOf = packed ? Math.ceil(count / 8) * 8 : 4 * quads;
      const corners = Array.from({ length: count }, (_, t) => t % images * channels * Hp * Wp + Math.floor(rng.next() * (Hp - 5)) * Wp + Math.floor(rng.next() * (Wp - 5)));
      // where tile t's value of channel c lands in V_k (the reference layout the GEMM reads)
      const place = (t: number, c: number) => (packed ? (t >> 3) * channels * 8 + c * 8 + (t & 7) : c * rowsOf + t);
      const tiles = new Int32Array(5 * quads);
      for (let q = 0; q < quads; q++) tiles.set([0, 1, 2, 3].map((i) => corners[Math.min(4 * q + i, count - 1)]).concat(place(4 * q, 0)), 5 * q);
      const V = new Float32Array(36 * channels * rowsOf);
      winogradInputSimd({
        size, tiles, channels, planeStride: Hp * Wp, rowStride: Wp,
        vFloats: V.length, kStride: channels * rowsOf, channelStride: packed ? 8 : rowsOf,
        load(mem, at) {
          mem.set(source, at); // already padded
        },
      }, V, 0);
      const want = new Float32Array(36), d = new Float64Array(72);
      const bits = new Int32Array(V.buffer), wantBits = new Int32Array(want.buffer);
      for (let c = 0; c < channels; c++) {
        for (let t = 0; t < count; t++) {
          for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) d[i * 6 + j] = source[corners[t] + c * Hp * Wp + i * Wp + j];
          inputTransformF4(d, want, 0, 1, float32);
          for (let k = 0; k < 36; k++) expect(bits[k * channels * rowsOf + place(t, c)], `k ${k}, channel ${c}, tile ${t}`).toBe(wantBits[k]);
        }
      }
    }
  });
});

describe('the SIMD Winograd output pass', () => {
  // Y = Aᵀ M A in float32, + bias, ReLU on the float32 (NaN and −0 kept): what the TypeScript output
  // pass stores, bit for bit, for a tile count not a multiple of four (the phantom tiles write only
  // their spare column) with and without bias and ReLU.
  it.each([[false, false], [true, false], [false, true], [true, true]] as const)('writes bit for bit what the TypeScript pass stores (bias %s, ReLU %s)', (withBias, relu) => {
    const rng = new Rng(withBias ? 5 : 6);
    const channels = 3, count = 5, rowLength = 8, quads = 2, cols = 4 * count + 4, planeStride = 4 * cols;
    const M = Float32Array.from({ length: 36 * channels * rowLength }, () => (rng.next() * 2 - 1) * 10 ** Math.floor(rng.next() * 4 - 2));
    M[9] = NaN; // m_0 of channel 1's tile 1: that tile's 16 outputs NaN, kept by ReLU
    M[0] = -0;
    const bias = withBias ? Float32Array.from({ length: channels + 2 }, () => rng.next() - 0.5) : null;
    const corner = (t: number) => (t < count ? 4 * t : 4 * count);
    const tiles = new Int32Array(5 * quads);
    for (let q = 0; q < quads; q++) tiles.set([4 * q, corner(4 * q), corner(4 * q + 1), corner(4 * q + 2), corner(4 * q + 3)], 5 * q);
    const out = new Float32Array(channels * planeStride);
    winogradOutputSimd({
      M, mOffset: 0, channels, rowLength, tiles, outFloats: out.length, planeStride, rowStride: cols,
      bias, biasOffset: 2, relu, staging: 0, store: (mem, at) => out.set(mem.subarray(at, at + out.length)),
    });
    const bits = new Int32Array(out.buffer), d = new Float64Array(40), one = new Float32Array(1), oneBits = new Int32Array(one.buffer);
    for (let f = 0; f < channels; f++) {
      for (let t = 0; t < count; t++) {
        outputTransformF4(M, f * rowLength + t, channels * rowLength, d, float32);
        for (let i = 0; i < 4; i++) {
          for (let j = 0; j < 4; j++) {
            one[0] = d[i * 4 + j] + (bias === null ? 0 : bias[2 + f]);
            if (relu && one[0] < 0) one[0] = 0;
            expect(bits[f * planeStride + i * cols + 4 * t + j], `channel ${f}, tile ${t}, (${i}, ${j})`).toBe(oneBits[0]);
          }
        }
      }
    }
    expect(out.some(Number.isNaN), 'a NaN came through').toBe(true);
  });
});

describe('the SIMD Winograd tiles with V and M kept in the kernel\'s memory', () => {
  // winogradTilesSimd runs the input transform, the 36 products and the output pass without V and M
  // leaving WebAssembly memory: it must store the bits of the three passes through arrays (each tested
  // above against TypeScript): V from winogradInputSimd, M_k = U_k · V_k by gemm, Y from
  // winogradOutputSimd. 69 of 74 filters (two 64-row blocks of the kernel, not a multiple of 4) from row 4
  // of the second group's blocks, an odd tile count (the phantom), with U resident in the arena and
  // copied per product, bias and ReLU.
  // that case (11 tiles of two images, Cg = 5): the passes through arrays (want) and a call of
  // winogradTilesSimd (run)
  const tilesCase = (seed: number, kept: boolean) => {
    const rng = new Rng(seed);
    const images = 2, Cg = 5, Hp = 10, Wp = 14, count = 11, F = 74, row0 = 4, Fp = 69, groups = 2, gi = 1;
    const size = images * Cg * Hp * Wp, quads = Math.ceil(count / 4), tbP = 16, tbE = 4 * quads;
    const source = Float32Array.from({ length: size }, () => rng.next() * 2 - 1);
    const corners = Array.from({ length: count }, (_, t) => t % images * Cg * Hp * Wp + Math.floor(rng.next() * (Hp - 5)) * Wp + Math.floor(rng.next() * (Wp - 5)));
    const inTiles = new Int32Array(5 * quads);
    for (let q = 0; q < quads; q++) inTiles.set([0, 1, 2, 3].map((i) => corners[Math.min(4 * q + i, count - 1)]).concat((4 * q >> 3) * Cg * 8 + (4 * q & 7)), 5 * q);
    const src = {
      size, tiles: inTiles, channels: Cg, planeStride: Hp * Wp, rowStride: Wp,
      vFloats: 36 * Cg * tbP, kStride: Cg * tbP, channelStride: 8,
      load(mem: Float32Array, at: number) {
        mem.set(source, at); // already padded
      },
    };
    const U = Float32Array.from({ length: groups * 36 * F * Cg }, () => rng.next() * 2 - 1);
    const prepared = prepareFilters(U, groups * 36, F, Cg, kept);
    const cols = 4 * count + 4, planeStride = 4 * cols;
    const corner = (t: number) => (t < count ? 4 * t : 4 * count);
    const outTiles = new Int32Array(5 * quads);
    for (let q = 0; q < quads; q++) outTiles.set([4 * q, corner(4 * q), corner(4 * q + 1), corner(4 * q + 2), corner(4 * q + 3)], 5 * q);
    const bias = Float32Array.from({ length: F + 3 }, () => rng.next() - 0.5);
    const output = (into: Float32Array) => ({
      channels: Fp, tiles: outTiles, outFloats: Fp * planeStride, planeStride, rowStride: cols, bias, biasOffset: 3 + row0, relu: true,
      staging: 0, store: (mem: Float32Array, at: number) => into.set(mem.subarray(at, at + into.length)),
    });
    // the passes through arrays
    const want = new Float32Array(Fp * planeStride), V = new Float32Array(src.vFloats), M = new Float32Array(36 * Fp * tbE);
    winogradInputSimd(src, V, 0);
    for (let k = 0; k < 36; k++) {
      gemm(Fp, count, Cg, { data: U, offset: ((gi * 36 + k) * F + row0) * Cg, ld: Cg, trans: false }, bPanels(V, k * Cg * tbP, Cg),
        M, k * Fp * tbE, tbE, false, filterRows(prepared, gi * 36 + k, row0));
    }
    winogradOutputSimd({ ...output(want), M, mOffset: 0, rowLength: tbE });
    // every real tile's outputs (the phantom's spare columns, 4·count on, are never stored into y)
    const real = (a: Float32Array) => Array.from(new Int32Array(a.buffer)).filter((_, i) => i % cols < 4 * count);
    const run = () => {
      const got = new Float32Array(want.length).fill(7);
      winogradTilesSimd(src, filterRows(prepared, 0), gi * 36, row0, output(got));
      return real(got);
    };
    return { want, real: real(want), run, prepared };
  };

  it.each([true, false])('stores what the passes through arrays store (filters kept resident: %s)', (kept) => {
    setBackend('wasm');
    setThreads(1);
    const c = tilesCase(kept ? 31 : 32, kept);
    // in the kernel's memory, twice (a second call finds kept filters resident)
    for (let call = 0; call < 2; call++) expect(c.run(), `call ${call}`).toEqual(c.real);
    expect(c.want.some((v) => v > 0) && c.want.some((v) => v === 0)).toBe(true); // ReLU had both sides to work on
    setThreads(2);
  });

  // touchLines before each next block of kept filters (69 rows: two blocks of MC = 64 for each of the 36
  // k, every one but the first touched ahead: 71 touches a call) where pinned on, never where pinned off;
  // in the trial, every other call of a loop, from its second, each timed but the first; the trial
  // decides once the loops still kept have run 2·48 calls and one per loop (a loop whose filters were
  // released counts for nothing). The same bits every way.
  it('touches ahead where pinned or on the trial\'s turns, decides once the kept loops have run, stores the same bits', () => {
    setBackend('wasm');
    setThreads(1);
    const inst = getInstance(), touch = inst.touchLines;
    let touched = 0;
    inst.touchLines = (a, b) => { touched++; return touch(a, b); };
    const touches = (c: ReturnType<typeof tilesCase>) => {
      touched = 0;
      expect(c.run()).toEqual(c.real);
      return touched;
    };
    try {
      const c = tilesCase(33, true), other = tilesCase(34, true);
      setTouchAhead(true);
      expect([touches(c), touches(c)]).toEqual([71, 71]);
      setTouchAhead(false);
      expect([touches(c), touches(c)]).toEqual([0, 0]);
      setTouchAhead('auto');
      touches(other); // untimed: the filters were just copied in
      expect(touchTrialTimes()).toEqual([[Infinity, Infinity]]);
      touches(other); // timed with
      const [[without, withTouch]] = touchTrialTimes();
      expect(without === Infinity && withTouch > 0 && withTouch < Infinity).toBe(true);
      touches(other); // and without
      expect(touchTrialTimes()[0].every((t) => t > 0 && t < Infinity)).toBe(true);
      for (let i = 3; i < 60; i++) expect(touches(other), `other loop's call ${i}`).toBe(i % 2 === 1 ? 71 : 0);
      releasePanels(other.prepared.panels);
      for (let i = 0; i < 96; i++) expect(touches(c), `call ${i}`).toBe(i % 2 === 1 ? 71 : 0);
      expect(touchAhead()).toBeUndefined();
      touches(c); // the 97th: 2·48 + 1
      const chosen = touchAhead();
      expect(typeof chosen).toBe('boolean');
      expect([touches(c), touches(c)]).toEqual(chosen === true ? [71, 71] : [0, 0]);
    } finally {
      inst.touchLines = touch;
      setTouchAhead('auto');
      setThreads(2);
    }
  });

  // The verdict: the sums of each way's fastest calls over the loops timed both ways; a tie does not touch.
  it('touches when the loops timed both ways sum lower with it', () => {
    expect(touchWins([[1, 2], [3, 1]])).toBe(true); // 4 against 3
    expect(touchWins([[1, 2], [2, 1]])).toBe(false); // a tie
    expect(touchWins([[1, Infinity], [3, 2]])).toBe(true); // the first never timed with it: 3 against 2
    expect(touchWins([[Infinity, 1], [2, 3]])).toBe(false); // the first never timed without: 2 against 3
    expect(touchWins([])).toBe(false);
  });
});

describe('packing filters for the SIMD GEMM', () => {
  // The PackedA layout by its definition (gemm_simd.ts): for the KC-deep block at column pc, strips
  // of 4 rows, Ap[offset + pc·rowsPadded + ⌊r/4⌋·kc·4 + k·4 + r mod 4] = A(r, pc + k), zero in the
  // padding rows. 70 rows (past one 64-row chunk, not a multiple of 4) × 300 columns (two blocks).
  it('writes every element where the layout says, for rows past the first chunk and columns past the first block', () => {
    setBackend('wasm');
    const rows = 70, K = 300, KC = 256, rowsPadded = 72, offset = 5;
    const A = Float32Array.from({ length: rows * K }, (_, i) => i + 1); // every value distinct and exact
    const out = new Float32Array(offset + rowsPadded * K).fill(-1);
    packPanels(rows, K, { data: A, offset: 0, ld: K, trans: false }, out, offset);
    let wrong = 0;
    for (let pc = 0; pc < K; pc += KC) {
      const kc = Math.min(KC, K - pc);
      for (let r = 0; r < rowsPadded; r++) {
        for (let k = 0; k < kc; k++) {
          const at = offset + pc * rowsPadded + Math.floor(r / 4) * kc * 4 + k * 4 + (r % 4);
          if (out[at] !== (r < rows ? A[r * K + pc + k] : 0)) wrong++;
        }
      }
    }
    expect(wrong).toBe(0);
    expect(out.subarray(0, offset).every((v) => v === -1)).toBe(true); // nothing before the offset
  });
});

describe('the SIMD SGD update', () => {
  // It does the TypeScript loop's operations in its order (d = [μ·v +] (∇ + λ·θ), θ − η·d) in float32,
  // as torch.optim.SGD does, where the loop computes in float64 and rounds once per store. With
  // u = 2⁻²⁴ (float32's unit roundoff) and Z = |μ·v| + |∇| + |λ·θ|, to first order:
  //  - v = d: the roundings of μ and λ, of the two products and of the two sums each err by u of at
  //    most Z, the reference's store by u of |d| ≤ Z: 7u·Z; 8u.
  //  - θ: η's rounding and the product's each u of |η·d|, d's own error η·6u·Z, the store's and the
  //    reference's u of |θ| + |η·d|: 2u·|θ| + 10u·|η|·Z; 3u and 11u.
  //  - 2⁻¹⁴⁶ covers subnormal results (2⁻¹⁵⁰ a rounding).
  // In each of the three cases, for arrays of 1 to 9001 elements (the four-at-a-time loop, the
  // one-at-a-time rest, chunks of 4096 through kernel memory), a range that starts and ends mid-array
  // (a pool part), values over 12 orders of magnitude with ±0, ±∞, NaN and a subnormal among them
  // (non-finite values must be the loop's); nothing outside the range touched.
  it('stores what the TypeScript loop stores, within the bound of float32\'s roundings', () => {
    const rng = new Rng(41);
    const u = 2 ** -24, tiny = 2 ** -146, [lr, mu, wd] = [0.1, 0.9, 1e-3];
    const values = (n: number) => {
      const a = Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * 10 ** Math.floor(rng.next() * 12 - 6));
      const special = [-0, Infinity, NaN, 0, -Infinity, 1e-42].slice(0, n);
      a.set(special, Math.floor((n - special.length) / 2));
      return a;
    };
    let compared = 0, rounded = 0;
    const within = (want: number, have: number, bound: number, what: string) => {
      compared++;
      if (!Number.isFinite(want) || !Number.isFinite(bound)) {
        if (!Object.is(want, have)) expect.fail(`${what}: ${have} against ${want}`);
        return;
      }
      if (have !== want) rounded++;
      if (!(Math.abs(have - want) <= bound)) expect.fail(`${what}: ${have} against ${want}, bound ${bound}`);
    };
    for (const n of [1, 3, 4, 7, 4096, 4099, 9001]) {
      for (const [withV, first] of [[false, false], [true, true], [true, false]]) {
        const theta = values(n), grad = values(n), vel = withV ? values(n) : null;
        const [lo, hi] = n > 8 ? [3, n - 2] : [0, n];
        const copies = () => ({ theta: theta.slice(), grad: grad.slice(), velocity: vel === null ? null : vel.slice() });
        // the TypeScript loop over elements lo … hi − 1 (an element's update reads only its own values)
        setBackend('js');
        const want = copies();
        const part = (a: Float32Array | null) => (a === null ? null : a.subarray(lo, hi));
        sgdUpdate([{ theta: part(want.theta)!, grad: part(want.grad)!, velocity: part(want.velocity), first }], lr, mu, wd);
        // the kernel over the same range, as a pool's part calls it
        setBackend('wasm');
        const got = copies();
        expect(sgdOnKernel(got.theta, got.grad, got.velocity, first, lo, hi, lr, mu, wd)).toBe(true);
        for (let i = 0; i < n; i++) {
          const inside = i >= lo && i < hi;
          const Z = (vel !== null && !first ? Math.abs(mu * vel[i]) : 0) + Math.abs(grad[i]) + Math.abs(wd * theta[i]);
          within(want.theta[i], got.theta[i], inside ? 3 * u * Math.abs(theta[i]) + 11 * u * lr * Z + tiny : 0, `θ[${i}], n ${n}, v ${withV}, first ${first}`);
          if (vel !== null) within(want.velocity![i], got.velocity![i], inside ? 8 * u * Z + tiny : 0, `v[${i}], n ${n}, first ${first}`);
        }
      }
    }
    expect(compared).toBeGreaterThan(80000);
    expect(rounded).toBeGreaterThan(1000); // the float32 update does round differently: the bound is what is tested
    setBackend('wasm');
  });
});

describe('the SIMD BatchNorm passes', () => {
  // The statistics do the TypeScript passes' float64 operations in the same order (each channel's
  // sums in (n, i) order, four channels per loop in f64x2 lanes): mean, invStd, the running
  // statistics, dγ and dβ must be the same bits on 'wasm' as on 'js', in training and eval mode. The
  // element-wise passes run in float32 (PyTorch's precision) where the TypeScript ones compute in
  // float64 and round once; u = 2⁻²⁴, float32's unit roundoff, each float32 rounding's relative error:
  //  - y = (x·S) + T with S = fl(s), T = fl(t) (s = γ·invStd, t = β − μ·s): the roundings of S, T,
  //    the product and the sum each err by u of at most |x·s| + |t| (to first order), the
  //    reference's one by u of |y| ≤ |x·s| + |t|: 5u·(|x·s| + |t|); 6u leaves room for the
  //    second-order terms and float64's own roundings (2⁻⁵³ each).
  //  - dx = K·((dy − A) − (x − Mu)·B) with K, A, Mu, B the float32 roundings of k = γ·invStd,
  //    a = Σdy/M, μ, β = invStd·(Σdy·x̂/M): ten roundings (four constants, five operations, the
  //    reference's), each by u of at most |k|·Z, Z = |dy| + |a| + |β|·(|x| + |μ|): 10u·|k|·Z; 11u.
  //  - 2⁻¹⁴⁶ covers the absolute error of subnormal results (2⁻¹⁵⁰ a rounding).
  // Non-finite reference values (a channel with ±∞ or NaN) must be the same values. Channel counts
  // around multiples of four (the last quad reads past the last channel), planes of 1 to 49 floats
  // (four at a time, then one at a time), one image; values over 16 orders of magnitude, so that
  // float64 sums of the float32 inputs round and another order of terms would show; ±0, ±∞ and
  // NaN in one channel.
  it('write the TypeScript passes\' statistics bit for bit, and their outputs within the bound of float32\'s roundings', () => {
    const rng = new Rng(21);
    const u = 2 ** -24, tiny = 2 ** -146;
    const wide = () => (rng.next() * 2 - 1) * 10 ** Math.floor(rng.next() * 16 - 8);
    let compared = 0, mismatches = 0, bounded = 0, rounded = 0;
    for (const [N, C, H, W] of [[1, 1, 1, 2], [3, 5, 1, 3], [2, 4, 2, 2], [4, 9, 7, 7], [2, 7, 5, 1], [5, 12, 1, 1], [2, 3, 3, 5]] as const) {
      const size = N * C * H * W, P = H * W, M = N * P;
      const x = new Tensor(Float32Array.from({ length: size }, wide), [N, C, H, W]);
      const dy = new Tensor(Float32Array.from({ length: size }, wide), [N, C, H, W]);
      if (C >= 3) x.data.set([-0, Infinity, NaN], 2 * H * W); // channel 2 of image 0
      const params = () => ({
        weight: new Tensor(Float32Array.from({ length: C }, (_, c) => 0.5 + c / C), [C]), bias: new Tensor(Float32Array.from({ length: C }, (_, c) => c - 2), [C]),
        runningMean: new Tensor(Float32Array.from({ length: C }, (_, c) => c / 3), [C]), runningVar: new Tensor(Float32Array.from({ length: C }, (_, c) => 1 + c), [C]),
      });
      for (const training of [true, false]) {
        const run = (backend: 'js' | 'wasm') => {
          setBackend(backend);
          const p = params();
          const out = batchNorm2d(x, p, { training });
          const g = batchNorm2dBackward(dy, x, p.weight, out, training);
          return { y: out.y.data, dx: g.dx.data, mean: out.mean, invStd: out.invStd, stats: [out.mean, out.invStd, p.runningMean.data, p.runningVar.data, g.dweight!.data, g.dbias!.data] };
        };
        const ref = run('js'), got = run('wasm');
        ref.stats.forEach((r, k) => { for (let i = 0; i < r.length; i++, compared++) if (!Object.is(got.stats[k][i], r[i])) mismatches++; });
        const within = (want: number, have: number, bound: number) => {
          bounded++;
          if (!Number.isFinite(want) || !Number.isFinite(bound)) return Object.is(want, have);
          if (have !== want) rounded++;
          return Math.abs(have - want) <= bound;
        };
        const w = params().weight.data, b = params().bias.data;
        for (let c = 0; c < C; c++) {
          const mu = ref.mean[c], is = ref.invStd[c], sc = w[c] * is, sh = b[c] - mu * sc;
          let sumDy = 0, sumDyXhat = 0;
          for (let n = 0; n < N; n++) for (let i = (n * C + c) * P; i < (n * C + c + 1) * P; i++) {
            sumDy += dy.data[i];
            sumDyXhat += dy.data[i] * (x.data[i] - mu) * is;
          }
          const k = sc, a = sumDy / M, beta = is * (sumDyXhat / M);
          for (let n = 0; n < N; n++) for (let i = (n * C + c) * P; i < (n * C + c + 1) * P; i++) {
            const xi = x.data[i];
            if (!within(ref.y[i], got.y[i], 6 * u * (Math.abs(xi * sc) + Math.abs(sh)) + tiny)) expect.fail(`y[${i}] (${N}×${C}×${H}×${W}, training ${training}): ${got.y[i]} against ${ref.y[i]}`);
            const dxBound = training ? 11 * u * Math.abs(k) * (Math.abs(dy.data[i]) + Math.abs(a) + Math.abs(beta) * (Math.abs(xi) + Math.abs(mu))) + tiny : 0; // eval: the TypeScript pass on both
            if (!within(ref.dx[i], got.dx[i], dxBound)) expect.fail(`dx[${i}] (${N}×${C}×${H}×${W}, training ${training}): ${got.dx[i]} against ${ref.dx[i]}`);
          }
        }
      }
    }
    setBackend('wasm');
    expect(compared).toBeGreaterThan(300);
    expect(mismatches).toBe(0);
    expect(bounded).toBeGreaterThan(5000);
    expect(rounded).toBeGreaterThan(100); // the float32 passes do round differently: the bound is what is tested
  });
});

// The dx of a stride-1 conv runs as a conv with W'[gi·C/g + c, f, k] = W[gi·F/g + f, c, T − 1 − k]
// (src/ops/conv2d.ts): the kernel only moves floats, so W' is checked element by element against
// that definition, written out here. 1000 filters of 9 taps take the copy out in chunks of 29 rows.
describe('the flipped filters on the SIMD kernel', () => {
  it.each([
    ['3×3, one group', 1, 5, 7, 9, 0, 5],
    ['3×3, three groups, rows from the middle of one to the middle of another', 3, 4, 2, 9, 2, 11],
    ['5×5, two groups', 2, 3, 3, 25, 0, 6],
    ['1×2 taps', 1, 6, 4, 2, 1, 6],
    ['1000 filters: several chunks', 1, 64, 1000, 9, 0, 64],
  ] as const)('%s: every float of W\' where its definition puts it', (_, groups, Cg, Fg, T, r0, r1) => {
    const w = Float32Array.from({ length: groups * Fg * Cg * T }, (_, i) => i + 0.5);
    const wT = new Float32Array(groups * Cg * Fg * T).fill(-1);
    flippedFiltersSimd(w, wT, Cg, Fg, T, r0, r1);
    for (let r = 0; r < groups * Cg; r++) {
      const gi = Math.floor(r / Cg), c = r % Cg;
      for (let f = 0; f < Fg; f++) {
        for (let k = 0; k < T; k++) {
          const got = wT[(r * Fg + f) * T + k];
          if (r >= r0 && r < r1) {
            if (got !== w[((gi * Fg + f) * Cg + c) * T + T - 1 - k]) expect.fail(`W'[${r}, ${f}, ${k}] = ${got}`);
          } else if (got !== -1) expect.fail(`row ${r} outside ${r0}…${r1} was written`);
        }
      }
    }
  });

  it('refuses rows past W or W\' before the kernel runs', () => {
    const w = new Float32Array(2 * 3 * 9), wT = new Float32Array(2 * 3 * 9);
    expect(() => flippedFiltersSimd(w, wT, 2, 3, 9, 0, 3)).toThrow("flipped filters: rows 0…3 of 2-channel groups of 3 filters of 9 taps would leave W (54) or W' (54)");
    expect(() => flippedFiltersSimd(w, wT.subarray(1), 2, 3, 9, 0, 2)).toThrow(/would leave W \(54\) or W' \(53\)/);
    expect(() => flippedFiltersSimd(w, wT, 2, 3, 9, 0, 2)).not.toThrow();
  });
});
