// Seeded RNG: xoshiro128** seeded through splitmix32. Only 32-bit integer ops (Math.imul, shifts)
// and exact float scaling are used, so a seed gives the same bits on every JavaScript engine.
// No transcendental functions (Math.log, Math.cos are not correctly rounded across engines),
// hence uniform draws only: PyTorch's default Conv2d/Linear init is uniform too.

import { type DType, type FloatArray, Tensor, allocArray, shapeSize } from './tensor.js';

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`Rng: seed must be an integer, got ${seed}`);
    let x = seed >>> 0;
    const next = (): number => {
      // splitmix32
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle(a: Int32Array | number[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A tensor of independent U(lo, hi) draws. */
export function uniform(shape: readonly number[], rng: Rng, lo = 0, hi = 1, dtype: DType = 'float32'): Tensor {
  return new Tensor(fillUniform(allocArray(dtype, shapeSize(shape)), rng, lo, hi), shape);
}

/** data filled with independent U(lo, hi) draws, in order (the draws uniform makes). */
export function fillUniform(data: FloatArray, rng: Rng, lo: number, hi: number): FloatArray {
  const span = hi - lo;
  for (let i = 0; i < data.length; i++) data[i] = lo + span * rng.next();
  return data;
}
