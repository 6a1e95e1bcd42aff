// The V8 ceiling for our GEMM's code shape: a 4×4 register tile of float64 accumulators updated by
// outer products over a 256-long packed panel that stays in L1 (2 × 256 × 4 × 8 B = 16 KiB).
// FLOPs per call: 2·16·256. Nothing else (no packing, no stores in the loop).

function panel(a: Float64Array, b: Float64Array, kc: number, c: Float64Array): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let k = 0, p = 0; k < kc; k++, p += 4) {
    const a0 = a[p], a1 = a[p + 1], a2 = a[p + 2], a3 = a[p + 3];
    const b0 = b[p], b1 = b[p + 1], b2 = b[p + 2], b3 = b[p + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  c[0] += c00 + c01 + c02 + c03 + c10 + c11 + c12 + c13 + c20 + c21 + c22 + c23 + c30 + c31 + c32 + c33;
}

/** GFLOP/s of the micro-kernel: the median of `rounds` timed runs of `reps` panels each. */
export function v8CeilingGflops(rounds = 7, reps = 20000): number {
  const kc = 256;
  const a = Float64Array.from({ length: 4 * kc }, (_, i) => 1 + (i % 7) * 1e-3);
  const b = Float64Array.from({ length: 4 * kc }, (_, i) => 1 - (i % 5) * 1e-3);
  const c = new Float64Array(1);
  for (let i = 0; i < reps; i++) panel(a, b, kc, c); // warm up, let the JIT optimise
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    for (let i = 0; i < reps; i++) panel(a, b, kc, c);
    times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  if (!(c[0] > 0)) throw new Error('ceiling kernel produced nothing');
  return (2 * 16 * kc * reps) / (times[rounds >> 1] * 1e6);
}
