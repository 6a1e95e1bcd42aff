import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gemm } from '../../src/ops/gemm.js';
import { Rng } from '../../src/tensor/rng.js';

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
});
