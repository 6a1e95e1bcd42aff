// The integer GEMM's block kernel: C = A·B exactly, for 16-bit signed operands and 32-bit sums (the
// integer convolutions of INT8 graphs: (x − x_zp)·(w − w_zp), each factor within ±255).
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

// gemmInt16(a, b, c, mStrips, nStrips, kp, ldc): byte offsets and counts as above
export function gemmInt16Def(): FunctionDef {
  const [a, b, c, mStrips, nStrips, kp, ldc] = [0, 1, 2, 3, 4, 5, 6];
  const [jr, ir, k, pa, pb, p] = [7, 8, 9, 10, 11, 12];
  const acc = (i: number) => 13 + i; // row r, columns 4h … 4h + 3 at 2r + h
  const [b0, b1, s] = [21, 22, 23];
  const x = new Code();
  x.i32(0).set(jr);
  x.loop(); // over 8-column strips
  x.i32(0).set(ir);
  x.loop(); // over 4-row strips
  for (let i = 0; i < 8; i++) x.v128Zero().set(acc(i));
  x.get(a).get(ir).get(kp).i32Mul().i32(16).i32Mul().i32Add().set(pa);
  x.get(b).get(jr).get(kp).i32Mul().i32(32).i32Mul().i32Add().set(pb);
  x.get(kp).set(k);
  x.loop(); // over pair-steps: acc[r][h] += a[r][2p]·b[2p][j] + a[r][2p+1]·b[2p+1][j]
  x.get(pb).v128Load(0).set(b0);
  x.get(pb).v128Load(16).set(b1);
  for (let r = 0; r < 4; r++) {
    x.get(pa).v128Load32Splat(4 * r).set(s); // row r's pair in every 32-bit lane
    x.get(acc(2 * r)).get(s).get(b0).i32x4DotI16x8S().i32x4Add().set(acc(2 * r));
    x.get(acc(2 * r + 1)).get(s).get(b1).i32x4DotI16x8S().i32x4Add().set(acc(2 * r + 1));
  }
  x.get(pa).i32(16).i32Add().set(pa);
  x.get(pb).i32(32).i32Add().set(pb);
  x.get(k).i32(1).i32Sub().tee(k).brIf(0);
  x.end();
  // p = c + ir·4·ldc + jr·32
  x.get(c).get(ir).i32(4).i32Mul().get(ldc).i32Mul().i32Add().get(jr).i32(32).i32Mul().i32Add().set(p);
  for (let r = 0; r < 4; r++) {
    x.get(p).get(acc(2 * r)).v128Store(0);
    x.get(p).get(acc(2 * r + 1)).v128Store(16);
    if (r < 3) x.get(p).get(ldc).i32Add().set(p);
  }
  x.get(ir).i32(1).i32Add().tee(ir).get(mStrips).i32LtU().brIf(0);
  x.end();
  x.get(jr).i32(1).i32Add().tee(jr).get(nStrips).i32LtU().brIf(0);
  x.end();
  return { name: 'gemmInt16', params: new Array<number>(7).fill(I32), locals: [...new Array<number>(6).fill(I32), ...new Array<number>(11).fill(V128)], body: x };
}

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
