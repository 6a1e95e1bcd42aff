import { describe, expect, it } from 'vitest';
import { Tensor, full, zeros } from '../../src/tensor/tensor.js';
import { Rng, uniform } from '../../src/tensor/rng.js';

describe('Tensor', () => {
  it('holds float32 or float64 data with a matching shape', () => {
    const t = new Tensor(new Float32Array(6), [2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.size).toBe(6);
    expect(new Tensor(new Float64Array(0), [0, 4]).dtype).toBe('float64');
    expect(new Tensor(new Float32Array(1), []).rank).toBe(0);
  });
  it('keeps its shape frozen: a caller\'s array is copied (changing it later changes nothing), a frozen one shared', () => {
    const mine = [2, 3];
    const t = new Tensor(new Float32Array(6), mine);
    mine[0] = 3;
    expect(t.shape).toEqual([2, 3]);
    expect(Object.isFrozen(t.shape)).toBe(true);
    expect(() => (t.shape as number[]).push(1)).toThrow();
    expect(new Tensor(new Float32Array(6), t.shape).shape).toBe(t.shape);
    expect(t.reshape([3, 2]).shape).toEqual([3, 2]);
  });
  it('rejects a shape that disagrees with the data, or is not made of non-negative integers', () => {
    expect(() => new Tensor(new Float32Array(5), [2, 3])).toThrow('shape [2, 3] holds 6 elements but data has 5');
    expect(() => new Tensor(new Float32Array(2), [-1, -2])).toThrow('invalid dimension -1 at index 0');
    expect(() => new Tensor(new Float32Array(2), [2.5])).toThrow('invalid dimension 2.5');
    expect(() => new Tensor([1, 2] as never, [2])).toThrow('Float32Array or a Float64Array');
    expect(() => new Tensor(new Int32Array(2) as never, [2])).toThrow('Float32Array or a Float64Array');
  });
  it('zeros, full, to, reshape', () => {
    expect(Array.from(full([2], 3.5).data)).toEqual([3.5, 3.5]);
    expect(zeros([2, 2], 'float64').data).toBeInstanceOf(Float64Array);
    const t = new Tensor(new Float64Array([1 / 3, 2]), [2]);
    expect(t.to('float32').data[0]).toBe(Math.fround(1 / 3));
    expect(t.reshape([1, 2]).shape).toEqual([1, 2]);
    expect(() => t.reshape([3])).toThrow('holds 3 elements');
  });
});

describe('Rng', () => {
  it('gives the same bits for the same seed (xoshiro128** via splitmix32, integer ops only)', () => {
    const r = new Rng(42);
    // Golden values: any engine must reproduce these exact integers.
    expect([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()]).toEqual(GOLDEN_U32_SEED42);
    expect(new Rng(42).next()).toBe(GOLDEN_FLOAT_SEED42);
  });
  it('uniform draws lie in [lo, hi) and differ between seeds', () => {
    const a = uniform([1000], new Rng(1), -2, 3);
    for (const v of a.data) {
      expect(v).toBeGreaterThanOrEqual(-2);
      expect(v).toBeLessThan(3);
    }
    let mean = 0;
    for (const v of a.data) mean += v / 1000;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.25); // σ of the mean = 5/√12/√1000 ≈ 0.046; 0.25 ≈ 5σ
    expect(uniform([4], new Rng(2)).data).not.toEqual(uniform([4], new Rng(3)).data);
  });
  it('shuffle is a permutation', () => {
    const a = Int32Array.from({ length: 50 }, (_, i) => i);
    new Rng(5).shuffle(a);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
  it('shuffle draws each of the 3! orders of 3 items equally often (Fisher–Yates, not Sattolo, which never leaves one in place)', () => {
    const r = new Rng(11), counts = new Map<string, number>();
    for (let t = 0; t < 60000; t++) {
      const a = [0, 1, 2];
      r.shuffle(a);
      counts.set(a.join(''), (counts.get(a.join('')) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    // each count ~ Binomial(60000, 1/6): mean 10000, σ = √(60000·(1/6)·(5/6)) ≈ 91; ±550 ≈ 6σ
    for (const n of counts.values()) expect(Math.abs(n - 10000)).toBeLessThan(550);
  });
});

const GOLDEN_U32_SEED42 = [2837322924, 544945897, 479756282, 3500138142];
const GOLDEN_FLOAT_SEED42 = 0.6606157208001621;
