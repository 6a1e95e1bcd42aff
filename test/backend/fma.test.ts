// The GEMM's two kinds of block kernel on 'wasm': multiply then add (two roundings per term), and
// relaxed SIMD's fused multiply-add (one), the default where the engine has relaxed SIMD and the
// machine fuses. Node 20 has relaxed SIMD behind a V8 flag, which this file sets for its own process
// (vitest runs each file in a process of its own) as the CLI does, so that both kinds are tested on
// every Node ≥ 20.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { maddProbeBytes } from '../../src/backend/wasm/gemm_code.js';
import { allowRelaxedSimd } from '../../src/cli/relaxed_simd.js';
import { fusedMultiplyAddAvailable, getFusedMultiplyAdd, setFusedMultiplyAdd } from '../../src/backend/backend.js';
import { gemm } from '../../src/backend/gemm.js';
import { poolStats, setMinMacsPerPart, setThreads, workersReady } from '../../src/backend/threads.js';
import { conv2d } from '../../src/ops/conv2d.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { fmaF32, signedZeros } from '../helpers.js';

const relaxed = allowRelaxedSimd();

const U32 = 2 ** -24;
const gamma = (n: number) => (n * U32) / (1 - n * U32);

function withFused<T>(on: boolean, f: () => T): T {
  const before = getFusedMultiplyAdd();
  setFusedMultiplyAdd(on);
  try {
    return f();
  } finally {
    setFusedMultiplyAdd(before);
  }
}

// The rounding contract of the SIMD GEMM, emulated: per 256-deep panel of K, acc ← acc ⊕ a·b from
// acc = 0 in k order (fused: fl(acc + a·b); else fl(acc + fl(a·b))), then C ← acc on the first panel
// without accumulate, else fl(C + acc).
function emulate(M: number, N: number, K: number, a: Float32Array, b: Float32Array, c0: Float32Array, accumulate: boolean, fused: boolean): Float32Array {
  const c = c0.slice();
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      for (let pc = 0; pc < K; pc += 256) {
        let acc = 0;
        for (let k = pc; k < Math.min(K, pc + 256); k++) {
          const x = a[i * K + k], y = b[k * N + j];
          acc = fused ? fmaF32(x, y, acc) : Math.fround(acc + Math.fround(x * y));
        }
        c[i * N + j] = accumulate || pc > 0 ? Math.fround(c[i * N + j] + acc) : acc;
      }
    }
  }
  return c;
}

describe('fused multiply-add in the SIMD GEMM', () => {
  it('is found here (relaxed SIMD, turned on as the CLI does, and a CPU that fuses) and is the default', () => {
    expect(relaxed, 'this Node has no relaxed SIMD, by default or behind V8\'s flag').toBe(true);
    expect(fusedMultiplyAddAvailable(), 'this engine or CPU has no fused relaxed_madd: the fused kernel cannot be tested here').toBe(true);
    expect(getFusedMultiplyAdd()).toBe(true);
    expect(() => setFusedMultiplyAdd('yes' as unknown as boolean)).toThrow('setFusedMultiplyAdd: expected true or false, got "yes"');
  });

  it('the emulation of one rounding agrees with the machine\'s relaxed_madd (random float32 triples, and products that cancel c)', () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const probe = new WebAssembly.Instance(new WebAssembly.Module(maddProbeBytes() as BufferSource), { env: { memory } }).exports.maddProbe as (p: number) => void;
    const f = new Float32Array(memory.buffer, 0, 12);
    const rng = new Rng(7);
    const r = () => Math.fround((rng.next() * 2 - 1) * 2 ** Math.floor(rng.next() * 40 - 20));
    for (let t = 0; t < 4000; t++) {
      const a = r(), b = r();
      // every other triple: c ≈ −a·b, where the low bits of the product decide the result
      const c = t % 2 === 0 ? r() : Math.fround(-a * b * (1 + (rng.next() - 0.5) * 2 ** -20));
      f.set([a, a, a, a, b, b, b, b, c, c, c, c]);
      probe(0);
      expect(f[0], `fma(${a}, ${b}, ${c})`).toBe(fmaF32(a, b, c));
    }
  });

  // Each kind equals its rounding contract bit for bit (which also puts it within the bound the
  // unfused kernel is held to: one rounding per term instead of two, the same γ₂₅₇ per panel, as
  // test/backend/gemm.test.ts states), and the two kinds differ.
  it.each([true, false])('fused %s: C equals the emulated rounding of each term, across panels, with and without accumulate', (fused) => {
    withFused(fused, () => fc.assert(fc.property(
      fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 600 }), fc.boolean(), fc.integer(),
      (M, N, K, accumulate, seed) => {
        const rng = new Rng(seed);
        const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
        const a = rand(M * K), b = rand(K * N), c0 = rand(M * N);
        const c = c0.slice();
        gemm(M, N, K, { data: a, offset: 0, ld: K, trans: false }, { data: b, offset: 0, ld: N, trans: false }, c, 0, N, accumulate);
        expect(Array.from(c)).toEqual(Array.from(emulate(M, N, K, a, b, c0, accumulate, fused)));
        for (let i = 0; i < M * N; i++) {
          let s = accumulate ? c0[i] : 0, S = Math.abs(s);
          for (let k = 0; k < K; k++) {
            const p = a[Math.floor(i / N) * K + k] * b[k * N + (i % N)];
            s += p;
            S += Math.abs(p);
          }
          expect(Math.abs(c[i] - s)).toBeLessThanOrEqual(Math.ceil(K / 256) * U32 * S + gamma(257) * S);
        }
      }), { numRuns: 40 }));
  });

  // A last strip of B with one real column (a Linear at batch 1, a 7×7 map's 49th position) runs on
  // the column kernel and one of two to four on the half kernel, not the block kernel with padding
  // columns: the same contract, then + bias and ReLU (v < 0 ? 0 : v, NaN and −0 kept) as the epilogue
  // test of test/backend/gemm.test.ts has them. M = 1 … 23 takes the column kernel's four-strip groups
  // and the single strips after them; N = 9 … 12 a whole strip before the tail, 13 a tail of five (the block kernel); K = 300 two panels.
  it.each([true, false])('fused %s: a B whose last strip holds one to four columns gives the emulated bits, with bias, ReLU and accumulate', (fused) => {
    withFused(fused, () => {
      const rng = new Rng(11);
      const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
      for (const N of [1, 2, 3, 4, 9, 12, 13]) {
        for (let M = 1; M <= 23; M += N === 1 ? 1 : 5) {
          for (const K of [1, 7, 300]) {
            for (const [accumulate, withBias, relu] of [[false, false, false], [true, false, false], [false, true, true], [true, true, true], [false, false, true]]) {
              const a = rand(M * K), b = rand(K * N), c0 = rand(M * N), bias = rand(M + 2);
              a[(M - 1) * K] = NaN; // the last row is NaN
              if (M > 1) c0[0] = -0;
              const c = c0.slice();
              gemm(M, N, K, { data: a, offset: 0, ld: K, trans: false }, { data: b, offset: 0, ld: N, trans: false }, c, 0, N, accumulate, undefined, { bias: withBias ? bias : null, biasOff: 2, relu });
              const want = emulate(M, N, K, a, b, c0, accumulate, fused).map((v, i) => {
                const w = withBias ? Math.fround(v + bias[2 + Math.floor(i / N)]) : v;
                return relu && w < 0 ? 0 : w;
              });
              expect(signedZeros(c), `M ${M}, N ${N}, K ${K}, accumulate ${accumulate}, bias ${withBias}, ReLU ${relu}`).toEqual(signedZeros(want));
            }
          }
        }
      }
    });
  });

  it('the two kinds give different bits where one rounding matters: (1 + 2⁻²³)(1 − 2⁻²³) − 1', () => {
    const e = 2 ** -23;
    const a = new Float32Array([1, 1 + e]), b = new Float32Array([-1, 1 - e]);
    const run = (fused: boolean) => withFused(fused, () => {
      const c = new Float32Array(1);
      gemm(1, 1, 2, { data: a, offset: 0, ld: 2, trans: false }, { data: b, offset: 0, ld: 1, trans: false }, c, 0, 1, false);
      return c[0];
    });
    expect([run(true), run(false)]).toEqual([-(2 ** -46), 0]);
  });

  it('the pool\'s workers run the caller\'s kind: the same bits on 1 and 2 threads, fused and not', async () => {
    const x = uniform([2, 24, 13, 11], new Rng(3), -1, 1), w = uniform([20, 24, 3, 3], new Rng(4), -1, 1);
    const old = setMinMacsPerPart('wasm', 1 << 10);
    try {
      const out: Record<string, number[]> = {};
      for (const fused of [true, false]) {
        for (const threads of [1, 2]) {
          setThreads(threads);
          if (threads > 1) await workersReady();
          for (const algorithm of ['im2col', 'winograd'] as const) {
            const parts = poolStats.workerParts;
            out[`${fused} ${threads} ${algorithm}`] = Array.from(withFused(fused, () => conv2d(x, w, null, { padding: 1, algorithm }).data));
            expect(poolStats.workerParts > parts, `${algorithm} on ${threads} threads ran parts on workers`).toBe(threads > 1);
          }
        }
      }
      for (const algorithm of ['im2col', 'winograd']) {
        expect(out[`true 2 ${algorithm}`]).toEqual(out[`true 1 ${algorithm}`]);
        expect(out[`false 2 ${algorithm}`]).toEqual(out[`false 1 ${algorithm}`]);
        expect(out[`true 1 ${algorithm}`]).not.toEqual(out[`false 1 ${algorithm}`]);
      }
    } finally {
      setMinMacsPerPart('wasm', old);
      setThreads(1);
    }
  });
});
