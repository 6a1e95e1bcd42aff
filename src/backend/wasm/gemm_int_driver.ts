// The integer GEMM on its SIMD kernels (gemm_int_simd.ts): A packed once per operand (kept on it), B
// staged and packed, or gathered, in this thread's WebAssembly memory above the arena, the product
// copied out.
import type { Int16Gather, Int16Rows } from '../gemm_contract.js';
import { type Instance, getInstance, scratchAbove } from './instance.js';

const up = (n: number, m: number) => Math.ceil(n / m) * m;

// A's row i, term k at strip i >> 2, pair-step k >> 1, lane 2·(i & 3) + (k & 1) (zeros past M and K)
function packA(A: Int16Rows): Int16Array {
  const { data, offset, M, K } = A, kp = up(K, 2) / 2;
  const out = new Int16Array(up(M, 4) * kp * 2);
  for (let i = 0; i < M; i++) {
    const row = offset + i * K, strip = (i >> 2) * kp * 8 + 2 * (i & 3);
    for (let k = 0; k < K; k++) out[strip + (k >> 1) * 8 + (k & 1)] = data[row + k];
  }
  return out;
}

/** C[cOff + i·ldc + j] = Σ_k A(i, k)·B(k, j) for i < M, j < N, exactly (gemmInt16 in ../gemm.ts). K ≥ 1. */
export function gemmInt16Simd(A: Int16Rows, N: number, B: Int16Array | Int16Gather, bOff: number, ldb: number, C: Float64Array, cOff: number, ldc: number): void {
  const inst = getInstance();
  const { M, K } = A;
  const mStrips = up(M, 4) / 4, nStrips = up(N, 8) / 8, kp = up(K, 2) / 2, ncp = 8 * nStrips;
  const packed = A.packed ??= packA(A);
  const gathered = !(B instanceof Int16Array);
  // memory above the arena: packed A | B's source (its rows staged, 2·kp rows ncp apart; or the
  // gathered planes, then their tap and column offsets in bytes) | packed B | C (int32, Mp × ncp)
  const srcBytes = gathered ? up(2 * B.src.length, 16) + 4 * (2 * kp + ncp) : 2 * 2 * kp * ncp;
  const aBytes = 2 * packed.length, bBytes = nStrips * kp * 32, cBytes = 4 * 4 * mStrips * ncp;
  scratchAbove((aBytes + srcBytes + bBytes + cBytes) / 4);
  const aAt = 4 * inst.arenaEnd, srcAt = aAt + aBytes, bAt = srcAt + srcBytes, cAt = bAt + bBytes;
  const mem16 = new Int16Array(inst.memory.buffer);
  mem16.set(packed, aAt / 2);
  if (gathered) gatherB(inst, B, K, N, kp, ncp, srcAt, bAt);
  else {
    // B's rows staged ncp apart; what lies past them is never zeroed: a row past an odd K meets A's
    // zero lane, and a column past N lands in C's padding, which is not copied out
    const stage = srcAt / 2;
    if (N === ncp && ldb === N) mem16.set(B.subarray(bOff, bOff + K * N), stage);
    else for (let k = 0; k < K; k++) mem16.set(B.subarray(bOff + k * ldb, bOff + k * ldb + N), stage + k * ncp);
    inst.packInt16B(bAt, srcAt, 2 * ncp, kp, nStrips);
  }
  inst.gemmInt16(aAt, bAt, cAt, mStrips, nStrips, kp, 4 * ncp, 0);
  const c = new Int32Array(inst.memory.buffer, cAt, 4 * mStrips * ncp);
  for (let i = 0; i < M; i++) C.set(c.subarray(i * ncp, i * ncp + N), cOff + i * ldc);
}

// B packed straight from the gathered planes (whose offsets gemmInt16 checked): the planes in once,
// the offsets as bytes (a last odd tap and the padding columns repeat a real one: A's zero lane and
// C's padding drop what they read)
function gatherB(inst: Instance, B: Int16Gather, K: number, N: number, kp: number, ncp: number, srcAt: number, bAt: number): void {
  const { src, taps, cols } = B;
  new Int16Array(inst.memory.buffer, srcAt, src.length).set(src);
  const tapsAt = srcAt + up(2 * src.length, 16), colsAt = tapsAt + 4 * 2 * kp;
  const t = new Int32Array(inst.memory.buffer, tapsAt, 2 * kp), c = new Int32Array(inst.memory.buffer, colsAt, ncp);
  for (let k = 0; k < 2 * kp; k++) t[k] = 2 * taps[Math.min(k, K - 1)];
  for (let j = 0; j < ncp; j++) c[j] = 2 * cols[Math.min(j, N - 1)];
  inst.gatherInt16B(bAt, srcAt, tapsAt, colsAt, kp, ncp / 8);
}
