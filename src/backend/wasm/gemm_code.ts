// The WebAssembly module of the SIMD kernels, generated in code: the GEMM's block kernels (one per
// epilogue), the im2col gather, the plane padder, packA/packB, and Winograd's F(4×4) transforms
// (winograd_simd.ts). Built once; instance.ts compiles and instantiates it.

import { Code, I32, V128, wasmModule } from './emit.js';
import { winogradFiltersF4Def, winogradInputF4Def, winogradOutputF4Def } from './winograd_simd.js';
import { bnAccumulateDef, bnGradInputDef, bnGradSumsDef, bnNormalizeDef, bnSumsDef, reluGradDef } from './batchnorm_simd.js';
import { sgdDef } from './sgd_simd.js';
import { gatherInt16BDef, packInt16BDef } from './gemm_int_simd.js';

// block(a, b, c, mStrips, nStrips, kc, ldcBytes, bias): for every 4-row strip of the packed A block
// at a and 8-column strip of the packed B panel at b, the C tile (at c, row stride ldcBytes) gets
// A strip · B strip: added to it (load) or stored (the first panel, so C needs no zeroing); on the
// last panel, then + bias[row] (bias: the block's row 0) and ReLU, in that order, the epilogue of a
// conv's output pass done while the tile is in registers. Each option is a separate function, so
// the loop carries no branches. step: what each k does to acc, float32 'multiply-add' (two roundings)
// or 'fused' (one relaxed_madd: one rounding where the hardware fuses it), or 'int16': the integer
// GEMM's (gemm_int_simd.ts), whose panels hold 16-bit pairs of consecutive k where the float ones
// hold a float32 each (the same bytes a step), acc + i32x4.dot_i16x8_s(a pair, b pairs), exact.
// halves = 1: the half kernel, the same for strips of which only the first four columns are read
// (C's last four columns of each tile are not written): a last strip of two to four real columns.
type BlockStep = 'multiply-add' | 'fused' | 'int16';
function blockKernel(load: boolean, bias: boolean, relu: boolean, step: BlockStep, halves: 1 | 2 = 2): Code {
  const [a, b, c, mStrips, nStrips, kc, ldc, biasP] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [jr, ir, k, pa, pb, p] = [8, 9, 10, 11, 12, 13];
  const acc = (i: number) => 14 + i; // 8 accumulators: row r, half h at 2r + h
  const [b0, b1, s, bv] = [22, 23, 24, 25];
  const x = new Code();
  x.i32(0).set(jr);
  x.loop(); // over 8-column strips
  x.i32(0).set(ir);
  x.loop(); // over 4-row strips
  for (let i = 0; i < 8; i++) x.v128Zero().set(acc(i));
  // pa = a + ir·kc·16, pb = b + jr·kc·32 (bytes)
  x.get(a).get(ir).get(kc).i32Mul().i32(16).i32Mul().i32Add().set(pa);
  x.get(b).get(jr).get(kc).i32Mul().i32(32).i32Mul().i32Add().set(pb);
  x.get(kc).set(k);
  x.loop(); // over k: acc[r][h] += a[k][r] · b[k][4h..4h+3]
  x.get(pb).v128Load(0).set(b0);
  if (halves === 2) x.get(pb).v128Load(16).set(b1);
  for (let r = 0; r < 4; r++) {
    x.get(pa).v128Load32Splat(4 * r).set(s);
    for (let h = 0; h < halves; h++) {
      if (step === 'fused') x.get(s).get(h === 0 ? b0 : b1).get(acc(2 * r + h)).f32x4RelaxedMadd().set(acc(2 * r + h));
      else if (step === 'int16') x.get(acc(2 * r + h)).get(s).get(h === 0 ? b0 : b1).i32x4DotI16x8S().i32x4Add().set(acc(2 * r + h));
      else x.get(acc(2 * r + h)).get(s).get(h === 0 ? b0 : b1).f32x4Mul().f32x4Add().set(acc(2 * r + h));
    }
  }
  x.get(pa).i32(16).i32Add().set(pa);
  x.get(pb).i32(32).i32Add().set(pb);
  x.get(k).i32(1).i32Sub().tee(k).brIf(0);
  x.end();
  // C tile (+)= acc, then + bias, then ReLU: p = c + ir·4·ldc + jr·32
  x.get(c).get(ir).i32(4).i32Mul().get(ldc).i32Mul().i32Add().get(jr).i32(32).i32Mul().i32Add().set(p);
  for (let r = 0; r < 4; r++) {
    if (bias) x.get(biasP).get(ir).i32(16).i32Mul().i32Add().v128Load32Splat(4 * r).set(bv);
    for (let h = 0; h < halves; h++) {
      x.get(p);
      if (load) x.get(p).v128Load(16 * h).get(acc(2 * r + h)).f32x4Add();
      else x.get(acc(2 * r + h));
      if (bias) x.get(bv).f32x4Add();
      if (relu) x.v128Zero().f32x4Pmax();
      x.v128Store(16 * h);
    }
    if (r < 3) x.get(p).get(ldc).i32Add().set(p);
  }
  x.get(ir).i32(1).i32Add().tee(ir).get(mStrips).i32LtU().brIf(0);
  x.end();
  x.get(jr).i32(1).i32Add().tee(jr).get(nStrips).i32LtU().brIf(0);
  x.end();
  return x;
}

// column(a, b, c, mStrips, nStrips, kc, ldc, bias): the block kernel's contract for a B panel of one
// real column (nStrips = 1; its strip's other 7 columns are padding, whose products the block kernel
// computes and drops: 8× the multiply-adds a matrix-vector product needs). Each f32x4 holds four rows
// of that column, acc[r] + a[k][r]·b[k][0] for k in order, the block kernel's operations on the
// values it keeps (a·b = b·a exactly, fused or not), so C's column 0 gets the same bits; four strips
// at a time for four independent chains of adds. C's other columns are not written.
function columnKernel(load: boolean, bias: boolean, relu: boolean, fused: boolean): Code {
  const [a, b, c, mStrips, , kc, ldc, biasP] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [ir, k, pb, p] = [8, 9, 10, 11];
  const pa = (s: number) => 12 + s;
  const acc = (s: number) => 16 + s;
  const [xs, v] = [20, 21];
  const x = new Code();
  // strips ir … ir + n − 1
  const strips = (n: number) => {
    for (let s = 0; s < n; s++) {
      x.get(a).get(ir).i32(s).i32Add().get(kc).i32Mul().i32(16).i32Mul().i32Add().set(pa(s));
      x.v128Zero().set(acc(s));
    }
    x.get(b).set(pb);
    x.get(kc).set(k);
    x.loop(); // over k: acc[s] += a_s[k] · b[k][0]
    x.get(pb).v128Load32Splat(0).set(xs);
    for (let s = 0; s < n; s++) {
      if (fused) x.get(pa(s)).v128Load(0).get(xs).get(acc(s)).f32x4RelaxedMadd().set(acc(s));
      else x.get(acc(s)).get(pa(s)).v128Load(0).get(xs).f32x4Mul().f32x4Add().set(acc(s));
      x.get(pa(s)).i32(16).i32Add().set(pa(s));
    }
    x.get(pb).i32(32).i32Add().set(pb);
    x.get(k).i32(1).i32Sub().tee(k).brIf(0);
    x.end();
    // C's column 0, rows 4·strip …: (C +) acc (+ bias) (ReLU), lane r at p + r·ldc
    for (let s = 0; s < n; s++) {
      x.get(c).get(ir).i32(s).i32Add().i32(4).i32Mul().get(ldc).i32Mul().i32Add().set(p);
      if (load) {
        x.v128Zero().set(v);
        for (let r = 0; r < 4; r++) x.get(p).get(ldc).i32(r).i32Mul().i32Add().get(v).v128Load32Lane(r).set(v);
        x.get(v).get(acc(s)).f32x4Add().set(v);
      } else x.get(acc(s)).set(v);
      if (bias) x.get(v).get(biasP).get(ir).i32(s).i32Add().i32(16).i32Mul().i32Add().v128Load(0).f32x4Add().set(v);
      if (relu) x.get(v).v128Zero().f32x4Pmax().set(v);
      for (let r = 0; r < 4; r++) x.get(p).get(ldc).i32(r).i32Mul().i32Add().get(v).v128Store32Lane(r);
    }
  };
  x.i32(0).set(ir);
  x.block(); // four strips at a time while four are left
  x.loop();
  x.get(ir).i32(4).i32Add().get(mStrips).i32LeU().i32Eqz().brIf(1);
  strips(4);
  x.get(ir).i32(4).i32Add().set(ir);
  x.br(0);
  x.end();
  x.end();
  x.block(); // then one at a time
  x.loop();
  x.get(ir).get(mStrips).i32LtU().i32Eqz().brIf(1);
  strips(1);
  x.get(ir).i32(1).i32Add().set(ir);
  x.br(0);
  x.end();
  x.end();
  return x;
}

// gather(out, src, cols, taps, kc, strips): packs a B panel whose elements are read from memory
// through two offset tables, B(k, j) = f32 at src + cols[j] + taps[k] (bytes): im2col's col matrix
// from a zero-padded copy of the input, cols the positions' corners and taps the kernel's offsets,
// so the matrix is never stored and no bounds are checked. The strips of 8 columns are written as
// packB writes them: out[(j/8)·kc·8 + k·8 + j mod 8]. A strip whose two halves (4 columns each) each
// lie in one output row reads each half's row of the panel as 4 consecutive floats (stride 1: one
// vector load) or every second of 8 (stride 2: two loads, a shuffle; the 8th float, one past the
// half's last, is read and dropped), instead of 8 scalar loads: a strip within a row, and on maps
// 4 wide (the demo's 4×4) a strip of two rows; any other strip (one whose half crosses a row, the
// last strip's padding, dW's strips of taps) builds each half's vector from four loads into its lanes
// and stores it whole (eight stores of one float each took the demo's gathers 398 → 364 µs a step).
function gatherKernel(): Code {
  const [out, src, cols, taps, kc, strips] = [0, 1, 2, 3, 4, 5];
  const [s, k, tp, t] = [6, 7, 8, 9];
  const base = (r: number) => 10 + r; // the strip's 8 column offsets, + src
  // d: the step from a half's first column to its second; even: 1 when in both halves every column
  // is d from the one before; half: from the first half's first column to the second half's
  const [d, even, half, vec] = [18, 19, 20, 21]; // vec: a v128
  const x = new Code();
  // the panel's rows of one strip, `row` emitting one row's loads and stores (t: its tap, + base(0) when atBase)
  const rows = (atBase: boolean, row: () => void) => {
    x.loop();
    x.get(tp).i32Load(0);
    if (atBase) x.get(base(0)).i32Add();
    x.set(t);
    row();
    x.get(out).i32(32).i32Add().set(out);
    x.get(tp).i32(4).i32Add().set(tp);
    x.get(k).i32(1).i32Sub().tee(k).brIf(0);
    x.end();
  };
  x.i32(0).set(s);
  x.loop(); // over strips
  for (let r = 0; r < 8; r++) x.get(cols).i32Load(4 * r).get(src).i32Add().set(base(r));
  x.get(taps).set(tp);
  x.get(kc).set(k);
  x.get(base(1)).get(base(0)).i32Sub().set(d);
  x.get(base(4)).get(base(0)).i32Sub().set(half);
  x.get(base(5)).get(base(4)).i32Sub().get(d).i32Eq();
  for (const h of [0, 4]) for (let r = 2; r < 4; r++) x.get(base(h + r)).get(base(h)).get(d).i32(r).i32Mul().i32Add().i32Eq().i32And();
  x.set(even);
  x.block(); // the strip's rows, by one of three loops
  x.get(even).get(d).i32(4).i32Eq().i32And().if(); // consecutive floats in each half
  rows(true, () => {
    x.get(out).get(t).v128Load(0).v128Store(0);
    x.get(out).get(t).get(half).i32Add().v128Load(0).v128Store(16);
  });
  x.br(1);
  x.end();
  x.get(even).get(d).i32(8).i32Eq().i32And().if(); // every second float in each half
  rows(true, () => {
    x.get(out).get(t).v128Load(0).get(t).v128Load(16).f32x4Evens().v128Store(0);
    x.get(t).get(half).i32Add().set(t);
    x.get(out).get(t).v128Load(0).get(t).v128Load(16).f32x4Evens().v128Store(16);
  });
  x.br(1);
  x.end();
  rows(false, () => {
    for (const h of [0, 4]) {
      x.get(out);
      x.get(base(h)).get(t).i32Add().v128Load32Zero(0);
      for (let r = 1; r < 4; r++) {
        x.set(vec);
        x.get(base(h + r)).get(t).i32Add().get(vec).v128Load32Lane(r);
      }
      x.v128Store(4 * h);
    }
  });
  x.end();
  x.get(cols).i32(32).i32Add().set(cols);
  x.get(s).i32(1).i32Add().tee(s).get(strips).i32LtU().brIf(0);
  x.end();
  return x;
}

// Emits a loop over the count in local `n` (counted down to 0): `four` while four are left, then
// `one` for each of the rest (each moves its own addresses on).
function byQuads(x: Code, n: number, four: () => void, one: () => void): void {
  x.block();
  x.get(n).i32(4).i32LtU().brIf(0);
  x.loop();
  four();
  x.get(n).i32(4).i32Sub().tee(n).i32(4).i32LtU().i32Eqz().brIf(0);
  x.end();
  x.end();
  x.block();
  x.get(n).i32Eqz().brIf(0);
  x.loop();
  one();
  x.get(n).i32(1).i32Sub().tee(n).brIf(0);
  x.end();
  x.end();
}

// Emits a run of `count` floats (a local) written at the address in local `to`, four at a time while
// four are left, then one at a time (`n`: the local it counts in), `to` advanced past them: 'copy'
// takes them from the address in local `from` (advanced too), 'add' adds them to what `to` holds
// (f32 adds, JavaScript's t[k] += f[k] on a Float32Array bit for bit), 'zero' writes zeros.
type RunKind = 'copy' | 'add' | 'zero';
function floatRun(x: Code, kind: RunKind, to: number, from: number, count: number, n: number): void {
  const step = (bytes: number) => {
    if (kind !== 'zero') x.get(from).i32(bytes).i32Add().set(from);
    x.get(to).i32(bytes).i32Add().set(to);
  };
  x.get(count).set(n);
  byQuads(x, n, () => {
    if (kind === 'add') x.get(to).get(to).v128Load(0).get(from).v128Load(0).f32x4Add().v128Store(0);
    else if (kind === 'copy') x.get(to).get(from).v128Load(0).v128Store(0);
    else x.get(to).v128Zero().v128Store(0);
    step(16);
  }, () => {
    if (kind === 'add') x.get(to).get(to).f32Load(0).get(from).f32Load(0).f32Add().f32Store(0);
    else if (kind === 'copy') x.get(to).get(from).f32Load(0).f32Store(0);
    else x.get(to).v128Zero().v128Store32Lane(0, 0);
    step(4);
  });
}

// Emits a copy of `count` floats (a local, ≥ 1) from the address in local `from` to the address in
// local `to`, both advanced past them, for places that do not overlap: whole vectors while more than
// four are left, then the last four floats as one vector, which writes again up to three the vector
// before wrote (the same values, read from a source no store reaches); fewer than four, a pair and a
// float. A row of a small map is a few floats, and floatRun's loops cost more than its copies there
// (the demo's 2×2 planes: ~12 ns a row). `n`: a local it counts in.
function disjointRun(x: Code, to: number, from: number, count: number, n: number): void {
  const advance = (bytes: () => void) => {
    x.get(from);
    bytes();
    x.i32Add().set(from);
    x.get(to);
    bytes();
    x.i32Add().set(to);
  };
  x.get(count).i32(4).i32LtU().if(); // one to three floats
  x.get(count).i32(2).i32And().if();
  x.get(to).get(from).v128Load64Zero(0).v128Store64Lane(0, 0);
  advance(() => x.i32(8));
  x.end();
  x.get(count).i32(1).i32And().if();
  x.get(to).get(from).f32Load(0).f32Store(0);
  advance(() => x.i32(4));
  x.end();
  x.else();
  x.get(count).set(n);
  x.block().loop(); // whole vectors while more than four floats are left
  x.get(n).i32(4).i32LeU().brIf(1);
  x.get(to).get(from).v128Load(0).v128Store(0);
  advance(() => x.i32(16));
  x.get(n).i32(4).i32Sub().set(n);
  x.br(0);
  x.end().end();
  x.get(n).i32(2).i32Shl().set(n); // the last 1 … 4 floats, in bytes: the vector ending there
  x.get(to).get(n).i32Add().i32(16).i32Sub();
  x.get(from).get(n).i32Add().i32(16).i32Sub().v128Load(0);
  x.v128Store(0);
  advance(() => x.get(n));
  x.end();
}

// padPlanes(dst, src, planes, H, W, top, mid, bottom, zeroed): the zero-padded copy of `planes` H×W
// planes stored one after another at src, written in one ascending pass from dst: per plane `top`
// zeros (pt rows and the first row's pl), then each row's W floats followed by `mid` zeros (pr + pl)
// or, after the last row, `bottom` (pr + pb rows). The planes may lie in the region itself: at its
// end (the last planes·H·W floats of planes·Hp·Wp), every float is read before anything is written
// over it, since the distance from a row's source to its place, (planes − p)(HpWp − HW) − pt·Wp −
// pl − r(pl + pr) for row r of plane p, is at least pr + pb·Wp ≥ 0 (p = planes − 1, r = H − 1),
// and a run of zeros ends where the next row goes. The first `zeroed` planes' places hold zeros
// already (the caller's memset, where a place ends before its source begins): their zeros are
// skipped, only their rows written, by disjointRun (such a place cannot overlap any source still to
// be read; in place, a row may lie within three floats of its source, and floatRun copies it in
// order). Sizes in floats, addresses in bytes; H, W ≥ 1.
function padPlanesKernel(): Code {
  const [dst, src, planes, H, W, top, mid, bottom, zeroed] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [i, n] = [9, 10];
  const x = new Code();
  // one plane, its zeros written (gap: `count` zeros) or stepped over (gap: dst moved past them); a
  // row goes from src to dst, and dst ≤ src, so each vector is loaded before a store can reach it
  const plane = (gap: (count: number) => void, row: () => void) => {
    gap(top);
    x.get(H).set(i);
    x.block();
    x.loop(); // over rows
    row();
    x.get(i).i32(1).i32Sub().tee(i).i32Eqz().brIf(1);
    gap(mid);
    x.br(0);
    x.end();
    x.end();
    gap(bottom);
  };
  x.loop(); // over planes
  x.get(zeroed).if(); // zero already: the rows alone
  x.get(zeroed).i32(1).i32Sub().set(zeroed);
  plane((count) => x.get(dst).get(count).i32(4).i32Mul().i32Add().set(dst), () => disjointRun(x, dst, src, W, n));
  x.else(); // rows and zeros in turn
  plane((count) => floatRun(x, 'zero', dst, src, count, n), () => floatRun(x, 'copy', dst, src, W, n));
  x.end();
  x.get(planes).i32(1).i32Sub().tee(planes).brIf(0);
  x.end();
  return x;
}

// copyPlanes(dst, src, planes, H, W, dstRowBytes, srcRowBytes, srcPlaneBytes): `planes` planes of H
// rows of W floats (planes, H, W ≥ 1), from src (rows srcRowBytes apart, planes srcPlaneBytes
// apart) to dst (rows dstRowBytes apart, each plane's rows after the last one's), four floats to a
// vector load; the two regions never overlap. Its callers: the interior of zero-padded planes laid
// out back to back (dstRowBytes = 4W; gather.ts's taker), which JavaScript then takes with one
// memcpy per image where a copy per short row would cost more than its floats; C's images as y holds
// them; a batch's per-image rows side by side (one plane, dy gathered for dW). copyPlanesAdd: the same, each float added to what dst holds (f32
// adds: JavaScript's dst[k] += v on a Float32Array, bit for bit), so that col2im adds into a dx
// without a loop of its own.
function copyPlanesKernel(kind: 'copy' | 'add'): Code {
  const [dst, src, planes, H, W, dstRow, srcRow, srcPlane] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [row, i, to, from, n] = [8, 9, 10, 11, 12];
  const x = new Code();
  x.loop(); // over planes
  x.get(src).set(row);
  x.get(H).set(i);
  x.loop(); // over rows
  x.get(dst).set(to);
  x.get(row).set(from);
  if (kind === 'copy') disjointRun(x, to, from, W, n);
  else floatRun(x, kind, to, from, W, n);
  x.get(dst).get(dstRow).i32Add().set(dst);
  x.get(row).get(srcRow).i32Add().set(row);
  x.get(i).i32(1).i32Sub().tee(i).brIf(0);
  x.end();
  x.get(src).get(srcPlane).i32Add().set(src);
  x.get(planes).i32(1).i32Sub().tee(planes).brIf(0);
  x.end();
  return x;
}

// flipTaps(dst, src, rows, Fg, tBytes, fBytes): rows of a stride-1 conv's flipped filters W' from W
// (flipRows in src/ops/conv2d.ts): for each of `rows` input channels c (from src, their taps tBytes
// apart in a filter) and each of Fg filters f (fBytes apart), the filter's T = tBytes / 4 taps in
// reverse order, dst's rows one after another (row c: Fg·T floats). Copies only.
function flipTapsKernel(): Code {
  const [dst, src, rows, Fg, tBytes, fBytes] = [0, 1, 2, 3, 4, 5];
  const [f, from, k] = [6, 7, 8];
  const x = new Code();
  x.loop(); // over rows (input channels)
  x.get(src).get(tBytes).i32Add().set(from); // one past the channel's taps in filter 0
  x.get(Fg).set(f);
  x.loop(); // over filters
  x.get(tBytes).set(k);
  x.loop(); // over taps, last first
  x.get(from).i32(4).i32Sub().set(from);
  x.get(dst).get(from).f32Load(0).f32Store(0);
  x.get(dst).i32(4).i32Add().set(dst);
  x.get(k).i32(4).i32Sub().tee(k).brIf(0);
  x.end();
  x.get(from).get(fBytes).i32Add().get(tBytes).i32Add().set(from); // the next filter's, one past its taps
  x.get(f).i32(1).i32Sub().tee(f).brIf(0);
  x.end();
  x.get(src).get(tBytes).i32Add().set(src);
  x.get(rows).i32(1).i32Sub().tee(rows).brIf(0);
  x.end();
  return x;
}

// offsetBytes(dst, src, n, limit) → the largest of n ≥ 1 int32 offsets at src (floats), or −1 when
// one is negative or not below limit (then nothing is written); else dst[i] = 4·src[i] (bytes; dst
// may be src). Two passes, four offsets at a time while four are left: the caller checks a whole
// table against its region at once, and names the offender itself where the check fails.
function offsetBytesKernel(): Code {
  const [dst, src, n, limit] = [0, 1, 2, 3];
  const [lo, hi, v, o, a, b, p, k] = [4, 5, 6, 7, 8, 9, 10, 11]; // lo, hi, v: v128; the rest i32
  const x = new Code();
  // runs `four` over the quads at p, then `one` over the rest (k counting)
  const passes = (four: () => void, one: () => void) => {
    x.get(src).set(p);
    x.get(n).set(k);
    byQuads(x, k, () => {
      four();
      x.get(p).i32(16).i32Add().set(p);
    }, () => {
      one();
      x.get(p).i32(4).i32Add().set(p);
    });
  };
  const min = (l: number) => x.tee(o).get(l).get(o).get(l).i32LtS().select().set(l);
  const max = (l: number) => x.tee(o).get(l).get(o).get(l).i32GtS().select().set(l);
  // pass 1: the extremes (a, b start at 0, as the largest is taken at least 0), the quads' lanes at the end
  x.get(src).i32Load(0).i32x4Splat().tee(lo).set(hi);
  passes(() => {
    x.get(p).v128Load(0).set(v);
    x.get(lo).get(v).i32x4MinS().set(lo);
    x.get(hi).get(v).i32x4MaxS().set(hi);
  }, () => {
    x.get(p).i32Load(0);
    min(a);
    x.get(p).i32Load(0);
    max(b);
  });
  for (let l = 0; l < 4; l++) {
    x.get(lo).i32x4ExtractLane(l);
    min(a);
    x.get(hi).i32x4ExtractLane(l);
    max(b);
  }
  x.block();
  x.get(a).i32(0).i32LtS().get(b).get(limit).i32LtS().i32Eqz().i32Or().i32Eqz().brIf(0);
  x.i32(-1).return();
  x.end();
  // pass 2: to bytes (dst keeps pace with p)
  x.get(dst).get(src).i32Sub().set(o);
  passes(() => {
    x.get(p).get(o).i32Add().get(p).v128Load(0).i32(2).i32x4Shl().v128Store(0);
  }, () => {
    x.get(p).get(o).i32Add().get(p).i32Load(0).i32(2).i32Shl().i32Store(0);
  });
  x.get(b);
  return x;
}

// scatterAdd(target, c, rows, cols, M, nc, ldcBytes): the transpose of gather, col2im's scatter:
// for each row i < M of the C block at c (rows ldcBytes apart) and column j < nc,
// target[rows[i] + cols[j]] += C(i, j) (offsets in bytes), rows in order, columns in order.
function scatterAddKernel(): Code {
  const [target, c, rows, cols, M, nc, ldc] = [0, 1, 2, 3, 4, 5, 6];
  const [t, cp, colp, j, a] = [7, 8, 9, 10, 11];
  const x = new Code();
  x.loop(); // over rows
  x.get(rows).i32Load(0).get(target).i32Add().set(t);
  x.get(c).set(cp);
  x.get(cols).set(colp);
  x.get(nc).set(j);
  x.loop(); // over the row's columns
  x.get(colp).i32Load(0).get(t).i32Add().tee(a);
  x.get(a).f32Load(0).get(cp).f32Load(0).f32Add().f32Store(0);
  x.get(cp).i32(4).i32Add().set(cp);
  x.get(colp).i32(4).i32Add().set(colp);
  x.get(j).i32(1).i32Sub().tee(j).brIf(0);
  x.end();
  x.get(c).get(ldc).i32Add().set(c);
  x.get(rows).i32(4).i32Add().set(rows);
  x.get(M).i32(1).i32Sub().tee(M).brIf(0);
  x.end();
  return x;
}

// touchLines(addr, bytes) → i32: one 4-byte load from each 64-byte line of [addr, addr + bytes),
// their bits xored into what it returns (so that no load is dead). Run on the next A block
// before the products of this one, where A streams from memory (a large model's prepared filters at
// batch 1): its loads are independent and many are in flight at once, where the block kernel reads
// A a line at a time between its multiply-adds. Stage 3 of A0 (64 × 16 × 192 products, 48 KiB of A
// each, streamed): 15.1 → 10.8 µs a block.
function touchLinesKernel(): Code {
  const [addr, bytes, p, acc] = [0, 1, 2, 3];
  const x = new Code();
  x.i32(0).set(acc).i32(0).set(p);
  x.block().loop();
  x.get(p).get(bytes).i32LtU().i32Eqz().brIf(1);
  x.get(acc).get(addr).get(p).i32Add().i32Load(0).i32Xor().set(acc);
  x.get(p).i32(64).i32Add().set(p);
  x.br(0);
  x.end().end();
  x.get(acc);
  return x;
}

// packA(out, src, ldBytes, strips, kc): the A operand's 4-row strips from rows staged at src (row
// stride ldBytes, the rows past the block's end zeroed by the caller) in the kernels' layout,
// out[(s·kc + k)·4 + r] = src[(4s + r)·ld + k]: the same floats packA in gemm_pack.ts writes.
function packAKernel(): Code {
  const [out, src, ld, strips, kc] = [0, 1, 2, 3, 4];
  const [r0, k] = [5, 6];
  const v = [7, 8, 9, 10]; // v128: the strip's four rows at k … k + 3, then their interleaves
  const x = new Code();
  const rowAt = (r: number) => {
    x.get(r0);
    for (let i = 0; i < r; i++) x.get(ld).i32Add();
  };
  x.loop(); // over strips
  x.get(src).set(r0);
  x.get(kc).set(k);
  // four k at a time: a vector from each row, transposed by two rounds of interleaves (unpcklps and
  // unpckhps, then the 64-bit halves joined) into the four k's strips of 4; a float from each row
  // per k took the demo's dW 122 µs a step
  x.block().loop();
  x.get(k).i32(4).i32LtU().brIf(1);
  for (let r = 0; r < 4; r++) {
    rowAt(r);
    x.v128Load(0).set(v[r]);
  }
  // (r0 r1 interleaved, low and high; r2 r3 likewise), then each k's (r0 r1 | r2 r3) halves joined
  x.get(v[0]).get(v[1]).f32x4Shuffle([0, 4, 1, 5]).get(v[0]).get(v[1]).f32x4Shuffle([2, 6, 3, 7]).set(v[1]).set(v[0]);
  x.get(v[2]).get(v[3]).f32x4Shuffle([0, 4, 1, 5]).get(v[2]).get(v[3]).f32x4Shuffle([2, 6, 3, 7]).set(v[3]).set(v[2]);
  for (const [lo, hi, at] of [[v[0], v[2], 0], [v[1], v[3], 32]]) {
    x.get(out).get(lo).get(hi).f32x4Shuffle([0, 1, 4, 5]).v128Store(at);
    x.get(out).get(lo).get(hi).f32x4Shuffle([2, 3, 6, 7]).v128Store(at + 16);
  }
  x.get(out).i32(64).i32Add().set(out);
  x.get(r0).i32(16).i32Add().set(r0);
  x.get(k).i32(4).i32Sub().set(k);
  x.br(0);
  x.end().end();
  x.block().loop(); // the rest: one float from each of the strip's 4 rows per k
  x.get(k).i32Eqz().brIf(1);
  for (let r = 0; r < 4; r++) {
    x.get(out);
    rowAt(r);
    x.f32Load(0).f32Store(4 * r);
  }
  x.get(out).i32(16).i32Add().set(out);
  x.get(r0).i32(4).i32Add().set(r0);
  x.get(k).i32(1).i32Sub().set(k);
  x.br(0);
  x.end().end();
  x.get(src).get(ld).i32(4).i32Mul().i32Add().set(src);
  x.get(strips).i32(1).i32Sub().tee(strips).brIf(0);
  x.end();
  return x;
}

// packB(out, src, ldBytes, strips, kc): B's 8-column strips from rows staged at src (row stride
// ldBytes, whole strips) in the kernels' layout, out[(s·kc + k)·8 + c] = src[k·ld + 8s + c]: two
// v128 copies per row of a strip. packAT, the same with 4 columns: a transposed A (stored K × M,
// as dx = Wᵀ·dy reads W) staged that way is already its 4-row strips, one v128 copy per k.
function stripsKernel(width: 4 | 8): Code {
  const [out, src, ld, strips, kc] = [0, 1, 2, 3, 4];
  const [r, k] = [5, 6];
  const x = new Code();
  x.loop(); // over strips
  x.get(src).set(r);
  x.get(kc).set(k);
  x.loop(); // over the strip's rows
  for (let v = 0; v < width / 4; v++) x.get(out).get(r).v128Load(16 * v).v128Store(16 * v);
  x.get(out).i32(4 * width).i32Add().set(out);
  x.get(r).get(ld).i32Add().set(r);
  x.get(k).i32(1).i32Sub().tee(k).brIf(0);
  x.end();
  x.get(src).i32(4 * width).i32Add().set(src);
  x.get(strips).i32(1).i32Sub().tee(strips).brIf(0);
  x.end();
  return x;
}

// The block kernels, indexed by load·4 + bias·2 + relu: whether C is added to (every panel after the
// first) and the epilogue of the last panel (bias, ReLU).
export const BLOCK_KERNELS = [0, 1, 2, 3, 4, 5, 6, 7].map((v) => ({ load: (v & 4) !== 0, bias: (v & 2) !== 0, relu: (v & 1) !== 0 }));

const moduleBytes: (Uint8Array | null)[] = [null, null];

// the block kernel's parameters (a, b, c, mStrips, nStrips, kc, ldc, bias) and locals (jr, ir, k, pa,
// pb, p; 8 accumulators, b0, b1, s, bv)
const BLOCK_PARAMS = new Array<number>(8).fill(I32);
const BLOCK_LOCALS = [...new Array<number>(6).fill(I32), ...new Array<number>(12).fill(V128)];

/** The module's bytes, built once per kind of block kernel: separate multiply and add (what
 * `wasmAvailable` validates: WebAssembly SIMD), or relaxed SIMD's fused multiply-add. */
export function gemmModuleBytes(fused = false): Uint8Array {
  return moduleBytes[fused ? 1 : 0] ??= wasmModule([
    ...BLOCK_KERNELS.map((v, i) => ({
      name: `block${i}`,
      params: BLOCK_PARAMS,
      locals: BLOCK_LOCALS,
      body: blockKernel(v.load, v.bias, v.relu, fused ? 'fused' : 'multiply-add'),
    })),
    ...BLOCK_KERNELS.map((v, i) => ({
      name: `half${i}`,
      params: BLOCK_PARAMS,
      locals: BLOCK_LOCALS,
      body: blockKernel(v.load, v.bias, v.relu, fused ? 'fused' : 'multiply-add', 1),
    })),
    ...BLOCK_KERNELS.map((v, i) => ({
      name: `column${i}`,
      params: [I32, I32, I32, I32, I32, I32, I32, I32],
      locals: [I32, I32, I32, I32, I32, I32, I32, I32, V128, V128, V128, V128, V128, V128],
      body: columnKernel(v.load, v.bias, v.relu, fused),
    })),
    { name: 'gather', params: [I32, I32, I32, I32, I32, I32], locals: [...new Array<number>(15).fill(I32), V128], body: gatherKernel() },
    { name: 'padPlanes', params: new Array<number>(9).fill(I32), locals: [I32, I32], body: padPlanesKernel() },
    { name: 'copyPlanes', params: new Array<number>(8).fill(I32), locals: new Array<number>(5).fill(I32), body: copyPlanesKernel('copy') },
    { name: 'copyPlanesAdd', params: new Array<number>(8).fill(I32), locals: new Array<number>(5).fill(I32), body: copyPlanesKernel('add') },
    { name: 'flipTaps', params: new Array<number>(6).fill(I32), locals: new Array<number>(3).fill(I32), body: flipTapsKernel() },
    { name: 'scatterAdd', params: new Array<number>(7).fill(I32), locals: new Array<number>(5).fill(I32), body: scatterAddKernel() },
    { name: 'offsetBytes', params: [I32, I32, I32, I32], results: [I32], locals: [V128, V128, V128, I32, I32, I32, I32, I32], body: offsetBytesKernel() },
    winogradInputF4Def(),
    winogradOutputF4Def(false),
    winogradOutputF4Def(true),
    winogradFiltersF4Def(),
    bnSumsDef(false),
    bnSumsDef(true),
    bnNormalizeDef(),
    bnGradSumsDef(),
    bnGradInputDef(),
    bnAccumulateDef(true, false),
    bnAccumulateDef(true, true),
    bnAccumulateDef(false, false),
    bnAccumulateDef(false, true),
    reluGradDef(),
    { name: 'packA', params: new Array<number>(5).fill(I32), locals: [I32, I32, V128, V128, V128, V128], body: packAKernel() },
    { name: 'touchLines', params: [I32, I32], results: [I32], locals: [I32, I32], body: touchLinesKernel() },
    { name: 'packB', params: new Array<number>(5).fill(I32), locals: [I32, I32], body: stripsKernel(8) },
    { name: 'packAT', params: new Array<number>(5).fill(I32), locals: [I32, I32], body: stripsKernel(4) },
    sgdDef('plain'),
    sgdDef('first'),
    sgdDef('momentum'),
    // the integer GEMM's block kernel: the float one's loops and panel geometry, C stored as int32
    { name: 'gemmInt16', params: BLOCK_PARAMS, locals: BLOCK_LOCALS, body: blockKernel(false, false, false, 'int16') },
    packInt16BDef(),
    gatherInt16BDef(),
  ]);
}

// maddProbe(p): f32x4 at p ← relaxed_madd(f32x4 at p, f32x4 at p + 16, f32x4 at p + 32).
function maddProbeCode(): Code {
  const x = new Code();
  x.get(0).get(0).v128Load(0).get(0).v128Load(16).get(0).v128Load(32).f32x4RelaxedMadd().v128Store(0);
  return x;
}

/** A module with relaxed_madd alone: it validates where the engine has relaxed SIMD, and running it
 * tells whether the machine fuses (a·b + c rounded once). */
export function maddProbeBytes(): Uint8Array {
  return wasmModule([{ name: 'maddProbe', params: [I32], locals: [], body: maddProbeCode() }]);
}
