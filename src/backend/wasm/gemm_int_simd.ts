// The integer GEMM's kernels: C = A·B exactly, for 16-bit signed operands and 32-bit sums (the
// integer convolutions of INT8 graphs: (x − x_zp)·(w − w_zp), each factor within ±255). Its block
// kernel is the float GEMM's, with an integer step (gemm_code.ts, blockKernel's 'int16'); here, the
// packing and the gather of B.
//
// i32x4.dot_i16x8_s multiplies eight pairs of 16-bit lanes and adds each two neighbours into a
// 32-bit lane: with the two operands laid out as pairs of consecutive k, one instruction does two
// steps of k for four outputs, exactly (|a·b| ≤ 255² each, and the caller keeps K·255² < 2³¹, so no
// sum wraps). Integer sums are exact in any order: these bits are the reference's by construction.
//
// Layouts (16-bit lanes), kp = ⌈K/2⌉ pair-steps, a missing k or row or column zero:
//   A: strips of 4 rows; per pair-step, 16 bytes: a[r][2p], a[r][2p+1] for r = 0 … 3
//   B: strips of 8 columns; per pair-step, 32 bytes: b[2p][j], b[2p+1][j] for j = 0 … 7
//   C: int32, rows ldc bytes apart, each strip's 8 columns written (padding columns included).
import { Code, type FunctionDef, I32, V128 } from './emit.js';

// packInt16B(dst, src, rowBytes, kp, nStrips): B's layout above from 2·kp rows of 16-bit values
// rowBytes apart at src, each at least 8·nStrips long (a missing row or column zero there): per strip
// and pair-step, rows 2p and 2p + 1's eight values interleaved, four columns to a vector.
export function packInt16BDef(): FunctionDef {
  const [dst, src, rowBytes, kp, nStrips] = [0, 1, 2, 3, 4];
  const [s, p, r0] = [5, 6, 7];
  const [lo, hi] = [8, 9];
  const x = new Code();
  x.i32(0).set(s);
  x.loop(); // over strips
  x.get(src).get(s).i32(16).i32Mul().i32Add().set(r0);
  x.get(kp).set(p);
  x.loop(); // over pair-steps
  x.get(r0).v128Load(0).set(lo);
  x.get(r0).get(rowBytes).i32Add().v128Load(0).set(hi);
  x.get(dst).get(lo).get(hi).i16x8Interleave(false).v128Store(0);
  x.get(dst).get(lo).get(hi).i16x8Interleave(true).v128Store(16);
  x.get(dst).i32(32).i32Add().set(dst);
  x.get(r0).get(rowBytes).i32(2).i32Mul().i32Add().set(r0);
  x.get(p).i32(1).i32Sub().tee(p).brIf(0);
  x.end();
  x.get(s).i32(1).i32Add().tee(s).get(nStrips).i32LtU().brIf(0);
  x.end();
  return { name: 'packInt16B', params: new Array<number>(5).fill(I32), locals: [I32, I32, I32, V128, V128], body: x };
}

// gatherInt16B(dst, src, taps, cols, kp, nStrips): B's layout above gathered from 16-bit values at src:
// b[k][j] = the value at src + taps[k] + cols[j] (byte offsets, 32-bit, at taps and cols: 2·kp of the
// one, 8·nStrips of the other), so that im2col's matrix is never written (the caller's offsets address
// zero-padded planes, and repeat a real tap or column where K or N runs short)
export function gatherInt16BDef(): FunctionDef {
  const [dst, src, taps, cols, kp, nStrips] = [0, 1, 2, 3, 4, 5];
  const [s, p, t0, t1, pt] = [6, 7, 8, 9, 10];
  const c = (j: number) => 11 + j; // the strip's columns, src + cols[8s + j]
  const x = new Code();
  x.i32(0).set(s);
  x.loop(); // over strips
  for (let j = 0; j < 8; j++) x.get(src).get(cols).get(s).i32(32).i32Mul().i32Add().i32Load(4 * j).i32Add().set(c(j));
  x.get(taps).set(pt);
  x.get(kp).set(p);
  x.loop(); // over pair-steps
  x.get(pt).i32Load(0).set(t0);
  x.get(pt).i32Load(4).set(t1);
  for (let j = 0; j < 8; j++) {
    x.get(dst).get(c(j)).get(t0).i32Add().i32Load16S(0).i32Store16(4 * j);
    x.get(dst).get(c(j)).get(t1).i32Add().i32Load16S(0).i32Store16(4 * j + 2);
  }
  x.get(dst).i32(32).i32Add().set(dst);
  x.get(pt).i32(8).i32Add().set(pt);
  x.get(p).i32(1).i32Sub().tee(p).brIf(0);
  x.end();
  x.get(s).i32(1).i32Add().tee(s).get(nStrips).i32LtU().brIf(0);
  x.end();
  return { name: 'gatherInt16B', params: new Array<number>(6).fill(I32), locals: new Array<number>(13).fill(I32), body: x };
}
