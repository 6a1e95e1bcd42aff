// Winograd F(4×4, 3×3)'s input transform and output pass on WebAssembly SIMD, four tiles at a time in
// the lanes of an f32x4: the float32 operations of inputTransformF4 / outputTransformF4 in
// src/ops/conv2d_winograd.ts (their `float32` rounding) in the same order, so V and Y are bit for bit
// what the TypeScript writes. (Float32 lanes, not float64 ones rounded once: half the arithmetic and
// a whole vector per store; the transforms' share of A0's deploy forward 10.7 → 6.8%, the forward
// 1.04–1.06× on one thread.)
//
// winogradInputF4(v, src, tiles, quads, channels, planeBytes, rowBytes, kBytes, channelBytes):
//   for each quad of tiles (five i32 per quad at `tiles`: the byte offsets of the four corners in src
//   and of the quad's place in V) and each channel c (planes planeBytes apart): d = the 6×6 window of
//   each tile (rows rowBytes apart), then V = Bᵀ d B, V_k (k = 6·i + j) stored at
//   v + place + k·kBytes + c·channelBytes, the quad's four values side by side (one 16-byte store).
//   The caller's places lay V out as plain rows or as the SIMD GEMM's packed B panels.

import { Code, I32, V128, type FunctionDef } from './emit.js';
import { WINOGRAD_F4 } from '../winograd_matrices.js';

// t = Bᵀ d on a column d0..d5 (and V = t B on a row): the rows of Bᵀ for F(4×4), as in the
// TypeScript transform, each a tree of operations evaluated in JavaScript's order.
type Expr = number | ['add' | 'sub', Expr, Expr] | ['mul', number, Expr];
const BT: (d: number[]) => Expr[] = ([d0, d1, d2, d3, d4, d5]) => [
  ['add', ['sub', ['mul', 4, d0], ['mul', 5, d2]], d4], //  4·d0 − 5·d2 + d4
  ['add', ['add', ['mul', -4, ['add', d1, d2]], d3], d4], // −4·(d1 + d2) + d3 + d4
  ['add', ['sub', ['mul', 4, ['sub', d1, d2]], d3], d4], //  4·(d1 − d2) − d3 + d4
  ['add', ['sub', ['mul', -2, ['sub', d1, d3]], d2], d4], // −2·(d1 − d3) − d2 + d4
  ['add', ['sub', ['mul', 2, ['sub', d1, d3]], d2], d4], //  2·(d1 − d3) − d2 + d4
  ['add', ['sub', ['mul', 4, d1], ['mul', 5, d3]], d5], //  4·d1 − 5·d3 + d5
];
const CONSTANTS: readonly number[] = [4, 5, -4, -2, 2];

// An expression tree on f32x4 (or f64x2) values held in locals, in its order of operations; 'mul'
// multiplies by a constant splatted once into its own local (konst: constant → local).
function emitter(x: Code, konst: Map<number, number>, f32 = false): (e: Expr) => void {
  const emit = (e: Expr): void => {
    if (typeof e === 'number') x.get(e);
    else if (e[0] === 'mul') { x.get(konst.get(e[1])!); emit(e[2]); if (f32) x.f32x4Mul(); else x.f64x2Mul(); }
    else { emit(e[1]); emit(e[2]); if (e[0] === 'add') { if (f32) x.f32x4Add(); else x.f64x2Add(); } else if (f32) x.f32x4Sub(); else x.f64x2Sub(); }
  };
  return emit;
}

function splatConstants(x: Code, konst: Map<number, number>, f32 = false): void {
  for (const [k, local] of konst) {
    if (f32) x.f32Const(k).f32x4Splat().set(local);
    else x.f64Const(k).f64x2Splat().set(local);
  }
}

export function winogradInputF4Def(): FunctionDef {
  const [v, src, tiles, quads, channels, planeBytes, rowBytes, kBytes, channelBytes] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  let n = 9;
  const [p, c, vOut, q] = [n++, n++, n++, n++];
  const a = Array.from({ length: 4 }, () => n++);
  const r = Array.from({ length: 24 }, () => n++); // r[6t + i]: row i of tile t
  const nI32 = n - 9;
  const konst = new Map(CONSTANTS.map((k) => [k, n++]));
  const col = Array.from({ length: 6 }, () => n++);
  const t = Array.from({ length: 36 }, () => n++); // t[6k + j]
  const nV128 = n - 9 - nI32;
  const x = new Code();
  const emit = emitter(x, konst, true);
  splatConstants(x, konst, true);
  x.i32(0).set(p);
  x.loop(); // over quads of tiles
  for (let i = 0; i < 4; i++) x.get(tiles).i32Load(4 * i).get(src).i32Add().set(a[i]);
  x.get(tiles).i32Load(16).get(v).i32Add().set(vOut);
  x.get(channels).set(c);
  x.loop(); // over channels
  for (let tt = 0; tt < 4; tt++) for (let i = 0; i < 6; i++) x.get(a[tt]).get(rowBytes).i32(i).i32Mul().i32Add().set(r[6 * tt + i]);
  // columns: t = Bᵀ d, d_ij of the four tiles gathered into the lanes
  for (let j = 0; j < 6; j++) {
    for (let i = 0; i < 6; i++) {
      x.get(r[i]).v128Load32Zero(4 * j).set(col[i]);
      for (let tt = 1; tt < 4; tt++) x.get(r[6 * tt + i]).get(col[i]).v128Load32Lane(tt, 4 * j).set(col[i]);
    }
    BT(col).forEach((e, k) => { emit(e); x.set(t[6 * k + j]); });
  }
  // rows: V = t B; the quad's four values of each V_k in one 16-byte store, V_k stepped to in order
  x.get(vOut).set(q);
  for (let i = 0; i < 6; i++) {
    BT(t.slice(6 * i, 6 * i + 6)).forEach((e, l) => {
      x.get(q);
      emit(e);
      x.v128Store(0);
      if (6 * i + l < 35) x.get(q).get(kBytes).i32Add().set(q);
    });
  }
  for (let i = 0; i < 4; i++) x.get(a[i]).get(planeBytes).i32Add().set(a[i]);
  x.get(vOut).get(channelBytes).i32Add().set(vOut);
  x.get(c).i32(1).i32Sub().tee(c).brIf(0);
  x.end();
  x.get(tiles).i32(20).i32Add().set(tiles);
  x.get(p).i32(1).i32Add().tee(p).get(quads).i32LtU().brIf(0);
  x.end();
  return {
    name: 'winogradInputF4', params: new Array<number>(9).fill(I32),
    locals: [...new Array<number>(nI32).fill(I32), ...new Array<number>(nV128).fill(V128)], body: x,
  };
}

// winogradOutputF{4,4Relu}(m, tiles, quads, channels, kBytes, mRowBytes, bias, y, yChannelBytes, yRowBytes):
//   for each quad of tiles (five i32 per quad at `tiles`: the quad's byte offset in a row of M and
//   the byte offsets of the four tiles' corners in y) and each output channel f (rows of M mRowBytes
//   apart, planes of y yChannelBytes apart): m_k (k = 6·i + j) at m + k·kBytes, Y = Aᵀ m A (4×4),
//   then Y + bias[f] (and ReLU as f32x4.pmax(v, 0), which keeps NaN and −0), each row of the four
//   tiles turned from lanes of tiles into each tile's four values (a 4×4 transpose) and stored:
//   outputTransformF4 and the store of conv2dWinograd, operation for operation.

// t = Aᵀ m on a column m0..m5 (and Y = t A on a row), with the shared sums as the TypeScript has them
const AT = (m: number[], sums: [number, number, number, number]): Expr[] => {
  const [a, s, p, q] = sums;
  return [
    ['add', ['add', m[0], a], p], // m0 + a + p
    ['add', s, ['mul', 2, q]], //     s + 2q
    ['add', a, ['mul', 4, p]], //     a + 4p
    ['add', ['add', s, ['mul', 8, q]], m[5]], // s + 8q + m5
  ];
};

export function winogradOutputF4Def(relu: boolean): FunctionDef {
  const [m, tiles, quads, channels, kBytes, mRowBytes, bias, y, yChannelBytes, yRowBytes] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  let n = 10;
  const [p, f, mp, bp, q] = [n++, n++, n++, n++, n++];
  const d = Array.from({ length: 4 }, () => n++);
  const r = Array.from({ length: 4 }, () => n++);
  const nI32 = n - 10;
  const konst = new Map([2, 4, 8].map((k) => [k, n++]));
  const mv = Array.from({ length: 36 }, () => n++);
  const t = Array.from({ length: 24 }, () => n++); // t[6i + j], i < 4
  const [sa, ss, sp, sq, vb, zero] = [n++, n++, n++, n++, n++, n++];
  const yv = Array.from({ length: 4 }, () => n++); // a row of Y, Y_ij of the four tiles in the lanes
  const [u0, u1] = [n++, n++];
  const nV128 = n - 10 - nI32;
  const x = new Code();
  const emit = emitter(x, konst, true);
  // a = v1 + v2, s = v1 − v2, p = v3 + v4, q = v3 − v4
  const sums = (v: number[]) => {
    x.get(v[1]).get(v[2]).f32x4Add().set(sa);
    x.get(v[1]).get(v[2]).f32x4Sub().set(ss);
    x.get(v[3]).get(v[4]).f32x4Add().set(sp);
    x.get(v[3]).get(v[4]).f32x4Sub().set(sq);
  };
  splatConstants(x, konst, true);
  x.v128Zero().set(zero);
  x.i32(0).set(p);
  x.loop(); // over quads of tiles
  x.get(tiles).i32Load(0).get(m).i32Add().set(mp);
  for (let i = 0; i < 4; i++) x.get(tiles).i32Load(4 + 4 * i).get(y).i32Add().set(d[i]);
  x.get(bias).set(bp);
  x.i32(0).set(f);
  x.loop(); // over output channels
  // m_k at mp + k·kBytes, stepped to rather than multiplied out
  x.get(mp).set(q);
  for (let k = 0; k < 36; k++) {
    x.get(q).v128Load(0).set(mv[k]);
    if (k < 35) x.get(q).get(kBytes).i32Add().set(q);
  }
  x.get(bp).v128Load32Splat(0).set(vb);
  // columns: t = Aᵀ m (4×6)
  for (let j = 0; j < 6; j++) {
    const col = [0, 1, 2, 3, 4, 5].map((i) => mv[6 * i + j]);
    sums(col);
    AT(col, [sa, ss, sp, sq]).forEach((e, i) => { emit(e); x.set(t[6 * i + j]); });
  }
  // rows: Y = t A (4×4), + bias, (ReLU), each row stored for the four tiles (row i of tile t at
  // r[t]: its start, stepped on by yRowBytes)
  for (let i = 0; i < 4; i++) x.get(d[i]).set(r[i]);
  for (let i = 0; i < 4; i++) {
    const row = t.slice(6 * i, 6 * i + 6);
    sums(row);
    AT(row, [sa, ss, sp, sq]).forEach((e, j) => {
      emit(e);
      x.get(vb).f32x4Add();
      if (relu) x.get(zero).f32x4Pmax();
      x.set(yv[j]);
    });
    // the 4×4 transpose: from Y_ij in tile lanes (yv[j]) to each tile's row (Y_i0 … Y_i3)
    x.get(yv[0]).get(yv[1]).f32x4Shuffle([0, 4, 1, 5]).set(u0);
    x.get(yv[2]).get(yv[3]).f32x4Shuffle([0, 4, 1, 5]).set(u1);
    x.get(r[0]).get(u0).get(u1).f32x4Shuffle([0, 1, 4, 5]).v128Store(0);
    x.get(r[1]).get(u0).get(u1).f32x4Shuffle([2, 3, 6, 7]).v128Store(0);
    x.get(yv[0]).get(yv[1]).f32x4Shuffle([2, 6, 3, 7]).set(u0);
    x.get(yv[2]).get(yv[3]).f32x4Shuffle([2, 6, 3, 7]).set(u1);
    x.get(r[2]).get(u0).get(u1).f32x4Shuffle([0, 1, 4, 5]).v128Store(0);
    x.get(r[3]).get(u0).get(u1).f32x4Shuffle([2, 3, 6, 7]).v128Store(0);
    if (i < 3) for (let tt = 0; tt < 4; tt++) x.get(r[tt]).get(yRowBytes).i32Add().set(r[tt]);
  }
  x.get(mp).get(mRowBytes).i32Add().set(mp);
  for (let i = 0; i < 4; i++) x.get(d[i]).get(yChannelBytes).i32Add().set(d[i]);
  x.get(bp).i32(4).i32Add().set(bp);
  x.get(f).i32(1).i32Add().tee(f).get(channels).i32LtU().brIf(0);
  x.end();
  x.get(tiles).i32(20).i32Add().set(tiles);
  x.get(p).i32(1).i32Add().tee(p).get(quads).i32LtU().brIf(0);
  x.end();
  return {
    name: relu ? 'winogradOutputF4Relu' : 'winogradOutputF4', params: new Array<number>(10).fill(I32),
    locals: [...new Array<number>(nI32).fill(I32), ...new Array<number>(nV128).fill(V128)], body: x,
  };
}

// F(4×4, 3×3)'s filter transform U = G g Gᵀ, two input channels at a time in f64x2 lanes: the float64
// operations of winogradWeights in src/ops/conv2d_winograd.ts in their order (zero coefficients
// included: 0·w keeps its sign), then one rounding to float32 per value.
//
// winogradFiltersF4(w, u, count, channels, kBytes): for `count` filters of channels × 3×3 weights at
// w (row-major), U_k (k = 6ξ + η) of filter r and channel c at u + k·kBytes + (r·channels + c)·4.
const G4 = WINOGRAD_F4.G;

export function winogradFiltersF4Def(): FunctionDef {
  const [w, u, count, channels, kBytes] = [0, 1, 2, 3, 4];
  let n = 5;
  const [r, c, pw, pu] = [n++, n++, n++, n++];
  const nI32 = n - 5;
  const konst = new Map([...new Set(G4.flat())].map((k) => [k, n++]));
  const g = Array.from({ length: 9 }, () => n++);
  const gg = Array.from({ length: 18 }, () => n++); // (G·g)[ξ][q] at 3ξ + q
  const tmp = n++;
  const nV128 = n - 5 - nI32;
  const x = new Code();
  const emit = emitter(x, konst);
  splatConstants(x, konst);
  // a·b + c·d + e·f evaluated as JavaScript does: ((a·b + c·d) + e·f)
  const dot3 = (k: readonly number[], v: readonly number[]): Expr => ['add', ['add', ['mul', k[0], v[0]], ['mul', k[1], v[1]]], ['mul', k[2], v[2]]];
  // the channels at pw (and pw + 36 bytes, or the same one again when single) → U at pu
  const body = (single: boolean) => {
    for (let k = 0; k < 9; k++) {
      x.get(pw).v128Zero().v128Load32Lane(0, 4 * k).set(tmp);
      x.get(pw).get(tmp).v128Load32Lane(1, single ? 4 * k : 36 + 4 * k).f64x2PromoteLowF32x4().set(g[k]);
    }
    // Gg[ξ][q] = G[ξ][0]·g[q] + G[ξ][1]·g[3 + q] + G[ξ][2]·g[6 + q]
    for (let xi = 0; xi < 6; xi++) for (let q = 0; q < 3; q++) { emit(dot3(G4[xi], [g[q], g[3 + q], g[6 + q]])); x.set(gg[3 * xi + q]); }
    // U_ξη = Gg[ξ][0]·G[η][0] + Gg[ξ][1]·G[η][1] + Gg[ξ][2]·G[η][2] (the products with the constant second, as written there)
    for (let xi = 0; xi < 6; xi++) {
      for (let eta = 0; eta < 6; eta++) {
        x.get(pu).get(kBytes).i32(6 * xi + eta).i32Mul().i32Add();
        const t = (i: number): Expr => ['mul', G4[eta][i], gg[3 * xi + i]];
        emit(['add', ['add', t(0), t(1)], t(2)]);
        x.f32x4DemoteF64x2Zero();
        if (single) x.v128Store32Lane(0); else x.v128Store64Lane(0);
      }
    }
  };
  x.i32(0).set(r);
  x.get(w).set(pw);
  x.get(u).set(pu);
  x.block();
  x.get(count).i32Eqz().brIf(0);
  x.loop(); // over filters
  x.i32(0).set(c);
  x.block();
  x.loop(); // over pairs of channels
  x.get(c).i32(1).i32Add().get(channels).i32LtU().i32Eqz().brIf(1);
  body(false);
  x.get(pw).i32(72).i32Add().set(pw);
  x.get(pu).i32(8).i32Add().set(pu);
  x.get(c).i32(2).i32Add().set(c);
  x.br(0);
  x.end();
  x.end();
  x.block(); // an odd last channel
  x.get(c).get(channels).i32LtU().i32Eqz().brIf(0);
  body(true);
  x.get(pw).i32(36).i32Add().set(pw);
  x.get(pu).i32(4).i32Add().set(pu);
  x.end();
  x.get(r).i32(1).i32Add().tee(r).get(count).i32LtU().brIf(0);
  x.end();
  x.end();
  return {
    name: 'winogradFiltersF4', params: new Array<number>(5).fill(I32),
    locals: [...new Array<number>(nI32).fill(I32), ...new Array<number>(nV128).fill(V128)], body: x,
  };
}
