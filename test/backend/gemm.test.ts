import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gemm, gemmScatter } from '../../src/backend/gemm.js';
import { Rng } from '../../src/tensor/rng.js';
import { type Backend, getBackend, setBackend } from '../../src/backend/backend.js';
import { signedZeros } from '../helpers.js';

const U32 = 2 ** -24;
const gamma = (n: number) => (n * U32) / (1 - n * U32);

// The float32 error bound of each backend, for a sum of K products with Σ|a·b| = S. C is rounded
// once per 256-deep panel on both (⌈K/256⌉·u·S). 'js' accumulates a panel in float64 (≤ 1e-13·S);
// 'wasm' in float32: a panel's kc ≤ 256 products and their sum carry γ₂₅₇ (Higham, eq. 3.4).
function float32Bound(backend: Backend, K: number, S: number): number {
  return Math.ceil(K / 256) * U32 * S + (backend === 'js' ? 1e-13 * S : gamma(257) * S);
}

function withBackend(b: Backend, f: () => void): void {
  const before = getBackend();
  setBackend(b);
  try {
    f();
  } finally {
    setBackend(before);
  }
}

describe('gemm', () => {
  // float64 operands; the naive triple loop and the blocked kernel differ only in summation order:
  // |Δ| ≤ 2·K·u₆₄·Σ|a·b| ≤ 2K·2⁻⁵³·K (entries in [−1, 1]); we test 1e-13·K², above that for K ≤ 600.
  it('equals the naive product for every transpose combination, edge sizes and accumulate', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 300 }),
      fc.boolean(), fc.boolean(), fc.boolean(), fc.integer(),
      (M, N, K, ta, tb, acc, seed) => {
        const rng = new Rng(seed);
        const rand = (n: number) => Float64Array.from({ length: n }, () => rng.next() * 2 - 1);
        const a = rand(M * K), b = rand(K * N), c0 = rand(M * N);
        const c = c0.slice();
        gemm(M, N, K, { data: a, offset: 0, ld: ta ? M : K, trans: ta }, { data: b, offset: 0, ld: tb ? K : N, trans: tb }, c, 0, N, acc);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let s = acc ? c0[i * N + j] : 0;
            for (let k = 0; k < K; k++) s += (ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
            expect(Math.abs(c[i * N + j] - s)).toBeLessThanOrEqual(1e-13 * (K * K + 1));
          }
        }
      }), { numRuns: 60 });
  });

  it.each(['js', 'wasm'] as const)('float32 on %s equals the naive product within its bound, every transpose, edges, accumulate', (backend) => {
    withBackend(backend, () => fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 600 }),
      fc.boolean(), fc.boolean(), fc.boolean(), fc.integer(),
      (M, N, K, ta, tb, acc, seed) => {
        const rng = new Rng(seed);
        const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
        const a = rand(M * K), b = rand(K * N), c0 = rand(M * N);
        const c = c0.slice();
        gemm(M, N, K, { data: a, offset: 0, ld: ta ? M : K, trans: ta }, { data: b, offset: 0, ld: tb ? K : N, trans: tb }, c, 0, N, acc);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let s = acc ? c0[i * N + j] : 0, S = Math.abs(s);
            for (let k = 0; k < K; k++) { const p = (ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]); s += p; S += Math.abs(p); }
            expect(Math.abs(c[i * N + j] - s)).toBeLessThanOrEqual(float32Bound(backend, K, S) + U32 * S);
          }
        }
      }), { numRuns: 40 }));
  });

  // Past every blocking boundary of the reference kernel (src/backend/gemm_ref.ts) and the SIMD kernel (MC = 64 rows, NC = 1024
  // columns, KC = 256 depth, 4×4 and 4×8 register tiles with ragged edges), on views (offsets,
  // ld ≠ K, ldc ≠ N). Reference: the naive sum in float64. float64: as above. float32: float32Bound.
  for (const [dtype, backend] of [['float64', 'js'], ['float32', 'js'], ['float32', 'wasm']] as const) {
    it(`crosses every blocking boundary: M = 69, N = 1029, K = 261, views with ld ≠ K (${dtype}, ${backend})`, () => withBackend(backend, () => {
      const M = 69, N = 1029, K = 261, lda = K + 3, ldb = N + 2, ldc = N + 1, aOff = 5, bOff = 2, cOff = 7;
      const rng = new Rng(dtype === 'float32' ? 1 : 2);
      const Arr = dtype === 'float32' ? Float32Array : Float64Array;
      const rand = (n: number) => { const a = new Arr(n); for (let i = 0; i < n; i++) a[i] = rng.next() * 2 - 1; return a; };
      for (const trans of [false, true]) {
        // trans: A stored K×M (ld = M + 3) and B stored N×K (ld = K + 2)
        const la = trans ? M + 3 : lda, lb = trans ? K + 2 : ldb;
        const a = rand(aOff + (trans ? K : M) * la), b = rand(bOff + (trans ? N : K) * lb);
        const c = new Arr(cOff + M * ldc).fill(7); // must be overwritten (accumulate = false), padding untouched
        gemm(M, N, K, { data: a, offset: aOff, ld: la, trans }, { data: b, offset: bOff, ld: lb, trans }, c, cOff, ldc, false);
        const A = (i: number, k: number) => (trans ? a[aOff + k * la + i] : a[aOff + i * la + k]);
        const B = (k: number, j: number) => (trans ? b[bOff + j * lb + k] : b[bOff + k * lb + j]);
        let worst = 0;
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let s = 0, S = 0;
            for (let k = 0; k < K; k++) { const p = A(i, k) * B(k, j); s += p; S += Math.abs(p); }
            const bound = dtype === 'float32' ? float32Bound(backend, K, S) : 1e-13 * (K * K + 1);
            worst = Math.max(worst, Math.abs(c[cOff + i * ldc + j] - s) / bound);
          }
          if (i < M - 1) expect(c[cOff + i * ldc + N]).toBe(7); // the gap between rows (ldc > N) is not written
        }
        expect(worst, `trans ${trans}`).toBeLessThanOrEqual(1);
      }
    }));
  }

  // A is copied into kernel memory whole when its rows lie close together (its span at most twice
  // M·K), else block by block, a row at a time: a view of every fifth column block of a wider matrix
  // takes the second way, transposed or not, past a 4-row strip's edge (M = 69) and a KC panel (K =
  // 261). Reference and bound as above.
  it('packs an A whose rows lie far apart block by block (ld = 5·width), transposed or not (float32, wasm)', () => withBackend('wasm', () => {
    const M = 69, N = 40, K = 261, rng = new Rng(3);
    for (const trans of [false, true]) {
      const ld = 5 * (trans ? M : K), a = Float32Array.from({ length: (trans ? K : M) * ld }, () => rng.next() * 2 - 1);
      const b = Float32Array.from({ length: K * N }, () => rng.next() * 2 - 1);
      const c = new Float32Array(M * N);
      gemm(M, N, K, { data: a, offset: 3, ld, trans }, { data: b, offset: 0, ld: N, trans: false }, c, 0, N, false);
      let worst = 0;
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0, S = 0;
          for (let k = 0; k < K; k++) { const p = a[3 + (trans ? k * ld + i : i * ld + k)] * b[k * N + j]; s += p; S += Math.abs(p); }
          worst = Math.max(worst, Math.abs(c[i * N + j] - s) / float32Bound('wasm', K, S));
        }
      }
      expect(worst, `trans ${trans}`).toBeLessThanOrEqual(1);
    }
  }));

  // The epilogue (a conv's output pass: + bias per row, then ReLU) must give exactly the bits of the
  // same GEMM followed by a separate float32 pass written here, across KC = 256 panels (it belongs
  // after the last one), with and without accumulation, bias and ReLU; NaN and −0 kept as ReLU
  // `v < 0 ? 0 : v` keeps them.
  it.each(['js', 'wasm'] as const)('the bias + ReLU epilogue equals a separate pass bit for bit on %s', (backend) => {
    withBackend(backend, () => fc.assert(fc.property(
      fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 600 }),
      fc.boolean(), fc.boolean(), fc.boolean(), fc.integer(),
      (M, N, K, acc, withBias, relu, seed) => {
        const rng = new Rng(seed);
        const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
        const a = rand(M * K), b = rand(K * N), c0 = rand(M * N), bias = rand(M + 3);
        if (K > 0) a[0] = NaN; // row 0 of C is NaN
        c0[M * N - 1] = -0;
        const epi = { bias: withBias ? bias : null, biasOff: 3, relu };
        const sep = c0.slice(), fused = c0.slice();
        gemm(M, N, K, { data: a, offset: 0, ld: K, trans: false }, { data: b, offset: 0, ld: N, trans: false }, sep, 0, N, acc);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let v = sep[i * N + j];
            if (withBias) v = Math.fround(v + bias[3 + i]);
            sep[i * N + j] = relu && v < 0 ? 0 : v;
          }
        }
        gemm(M, N, K, { data: a, offset: 0, ld: K, trans: false }, { data: b, offset: 0, ld: N, trans: false }, fused, 0, N, acc, undefined, epi);
        expect(signedZeros(fused)).toEqual(signedZeros(sep));
      }), { numRuns: 60 }));
  });

  // An A whose columns lie per image (dW's dy rows: A(i, k) at offset + n·imageStride + i·ld + p for
  // the position q0 + k = n·P + p) is the A its definition writes out, gathered here element by
  // element: the same bits as gemm on that A, on both backends (the SIMD kernel lays the rows out in
  // its memory, the reference gathers them first; copies either way), stored, accumulated, 'plus'
  // and split at a term as the halves of a batch are; positions that start and end inside images,
  // rows around multiples of 4, several images and several of the kernel's panels (K > 256).
  it('reads an A laid out per image as the A it stands for', () => {
    const rng = new Rng(17);
    let runs = 0;
    for (const backend of ['wasm', 'js'] as const) {
      withBackend(backend, () => {
        for (const [M, N, P, images, q0, K, F, f0] of [[5, 9, 7, 3, 3, 15, 8, 2], [4, 20, 49, 8, 40, 300, 4, 0], [16, 33, 1, 40, 5, 30, 16, 0], [3, 2, 4, 70, 2, 275, 6, 3]] as const) {
          const ld = P, imageStride = F * P, offset = f0 * P;
          const dy = Float32Array.from({ length: images * imageStride }, () => rng.next() * 2 - 1);
          const written = new Float32Array(M * K);
          for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) {
            const n = Math.floor((q0 + k) / P), p = q0 + k - n * P;
            written[i * K + k] = dy[offset + n * imageStride + i * ld + p];
          }
          const b = Float32Array.from({ length: K * N }, () => rng.next() * 2 - 1);
          const B = { data: b, offset: 0, ld: N, trans: false };
          for (const [acc, split] of [[false, 0], [true, 0], ['plus', 0], [false, Math.floor(K / 2)]] as const) {
            const c0 = Float32Array.from({ length: M * N }, () => rng.next() * 2 - 1);
            const want = c0.slice(), got = c0.slice();
            gemm(M, N, K, { data: written, offset: 0, ld: K, trans: false }, B, want, 0, N, acc, undefined, undefined, undefined, split);
            gemm(M, N, K, { data: dy, offset, ld, trans: false, images: { P, q0, imageStride } }, B, got, 0, N, acc, undefined, undefined, undefined, split);
            expect(new Int32Array(got.buffer), `${backend}, ${M}×${K} from ${q0} (images of ${P}), accumulate ${acc}, split ${split}`).toEqual(new Int32Array(want.buffer));
            runs++;
          }
        }
      });
    }
    expect(runs).toBe(32);
  });

  it('setBackend takes js or wasm', () => {
    expect(() => setBackend('gpu' as Backend)).toThrow(/expected 'js' or 'wasm'/);
    expect(getBackend()).toBe('wasm'); // the default where WebAssembly SIMD exists (Node ≥ 20 has it)
  });
});

// col2im inside the SIMD kernel: each C(i, j) is added into target[rows[i] + cols(j)], many (i, j)
// meeting on one element as taps and positions do. Against float64 sums of each element's products:
// each C(i, j) carries the float32 GEMM bound above over its S_ij = Σ_k |a·b|, and an element that
// adds m of them in float32 one more γ_m over their magnitudes (≤ Σ S_ij): so the bound per element
// is (⌈K/256⌉·u + γ₂₅₇ + γ_m)·Σ S_ij. Columns past 1024 (the kernel's column blocks) included.
describe('gemmScatter', () => {
  it('adds each product into its target element within the float32 bound, with colliding offsets and several column blocks', () => {
    withBackend('wasm', () => fc.assert(fc.property(
      fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 2300 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 60 }), fc.boolean(), fc.integer(), fc.integer({ min: 1, max: 1500 }),
      (M, N, K, size, ta, seed, P) => {
        const rng = new Rng(seed);
        const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
        const a = rand(M * K), b = rand(K * N);
        const rowOff = Int32Array.from({ length: M }, () => Math.floor(rng.next() * size / 2));
        const colOff = Int32Array.from({ length: N }, () => Math.floor(rng.next() * (size - size / 2)));
        let got = new Float32Array(0);
        gemmScatter(M, N, K, { data: a, offset: 0, ld: ta ? M : K, trans: ta }, { data: b, offset: 0, ld: N, trans: false }, {
          size, rows: rowOff, staging: 0,
          cols: (jc, n, out) => out.set(colOff.subarray(jc, jc + n)),
          // blocks end where "images" of P columns start, as col2im's do
          blockEnd: (jc, most) => { const end = Math.min(N, jc + most), start = Math.floor(end / P) * P; return start > jc && start < end ? start : end; },
          store: (mem, at) => { got = mem.slice(at, at + size); },
        });
        const want = new Float64Array(size), S = new Float64Array(size), m = new Float64Array(size);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            const t = rowOff[i] + colOff[j];
            for (let k = 0; k < K; k++) {
              const p = (ta ? a[k * M + i] : a[i * K + k]) * b[k * N + j];
              want[t] += p;
              S[t] += Math.abs(p);
            }
            m[t]++;
          }
        }
        expect(got.length).toBe(size);
        for (let t = 0; t < size; t++) expect(Math.abs(got[t] - want[t])).toBeLessThanOrEqual((Math.ceil(K / 256) * U32 + gamma(257) + gamma(m[t])) * S[t]);
      }), { numRuns: 40 }));
  });

  it('refuses offsets that would leave the target, before the kernel runs', () => {
    withBackend('wasm', () => {
      const a = new Float32Array(4), b = new Float32Array(4);
      const run = (rows: number[], cols: number[]) => () => gemmScatter(2, 2, 1, { data: a, offset: 0, ld: 1, trans: false }, { data: b, offset: 0, ld: 2, trans: false }, {
        size: 10, rows: Int32Array.from(rows), staging: 0, cols: (jc, n, out) => out.set(cols.slice(jc, jc + n)), blockEnd: (jc, most) => Math.min(2, jc + most), store: () => undefined,
      });
      expect(run([0, 10], [0, 1])).toThrow(/scattered row 1 at offset 10 lies outside its target of 10 floats/);
      expect(run([0, 6], [0, 4])).toThrow(/scattered column 1 at offset 4 lies outside its target of 10 floats/);
      expect(run([0, 6], [0, 3])).not.toThrow();
    });
  });

  it('reads a gathered B at source[cols[j] + taps[k]], and refuses offsets that would leave the source before the kernel runs', () => {
    withBackend('wasm', () => {
      const src = Float32Array.from({ length: 10 }, (_, i) => i + 1); // 1 … 10
      const a = Float32Array.from([1, 2, 3, 4]); // A = [[1, 2], [3, 4]]
      const run = (taps: number[], cols: number[]) => {
        const c = new Float32Array(4);
        gemm(2, 2, 2, { data: a, offset: 0, ld: 2, trans: false }, {
          packB: () => { throw new Error('packB called'); },
          gather: { size: 10, load: (mem, at) => mem.set(src, at), taps: Int32Array.from(taps), cols: (jc, n, out) => out.set(cols.slice(jc, jc + n)) },
        }, c, 0, 2, false);
        return Array.from(c);
      };
      // B = [[src[0], src[3]], [src[6], src[9]]] = [[1, 4], [7, 10]]: exact small integers
      expect(run([0, 6], [0, 3])).toEqual([1 * 1 + 2 * 7, 1 * 4 + 2 * 10, 3 * 1 + 4 * 7, 3 * 4 + 4 * 10]);
      expect(() => run([0, 10], [0, 1])).toThrow(/gathered row 1 at offset 10 lies outside its source of 10 floats/);
      expect(() => run([0, -1], [0, 1])).toThrow(/gathered row 1 at offset -1 lies outside its source of 10 floats/);
      expect(() => run([0, 6], [0, 4])).toThrow(/gathered column 1 at offset 4 lies outside its source of 10 floats/);
    });
  });
});
