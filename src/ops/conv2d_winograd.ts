// Winograd minimal filtering F(m×m, 3×3) for 3×3 convs with stride 1 and dilation 1 (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016).
//
// 1-D F(m, 3) computes m outputs of a 3-tap correlation y_i = Σ_p d_{i+p}·g_p from α = m + 2 inputs
// with α multiplications: interpret d and g as polynomial coefficients, evaluate at α points
// (0, ±1, ±2, …, and ∞), multiply pointwise, interpolate back (Chinese remainder / Toom-Cook):
//     y = Aᵀ [ (G g) ⊙ (Bᵀ d) ]
// Nesting the 1-D algorithm gives 2-D: Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A, so an m×m output tile
// costs α² multiplies instead of 9m²: 16 vs 36 for F(2×2) (2.25×), 36 vs 144 for F(4×4) (4×).
// Summed over input channels, the ⊙ becomes α² independent GEMMs: M_ξη = U_ξη · V_ξη with
// U_ξη (F/g × C/g) the transformed filters and V_ξη (C/g × tiles) the transformed input tiles.
//
// The transforms amplify magnitudes (entries up to 8 in Aᵀ for F(4×4)), so rounding error grows
// faster than for direct convolution; the tests bound it by the same algorithm run on |·|.

import { type FloatArray, copyRows, sharedArrayLike } from '../tensor/tensor.js';
import { workspace64, workspaceInt32, workspaceLike } from '../tensor/workspace.js';
import type { ConvGeometry } from './conv2d_geometry.js';
import {
  PANEL_ROWS, PANEL_STRIP, type PreparedFilters, type WinogradOutputTiles, type WinogradSource, bPanels, filterRows, gemm, paddedPlanes,
  prepareFilters, takesPreparedFilters, transformsWinogradF4, winogradFiltersF4, winogradInputF4, winogradOutputF4, winogradTilesF4,
} from '../backend/gemm.js';
import { reluBits } from './relu.js';
import { WINOGRAD_F2, WINOGRAD_F4, type WinogradMatrices } from '../backend/winograd_matrices.js';
import { collectOutput, defineKernel, isShared, parallel, partRange, partsFor, shareInput, shareOutput, stripRange } from '../backend/threads.js';

// The matrices live below ops (src/backend/winograd_matrices.ts) so that the SIMD kernels build their
// transforms from the same numbers.
export { WINOGRAD_F2, WINOGRAD_F4, type WinogradMatrices } from '../backend/winograd_matrices.js';

export type WinogradTile = 2 | 4;

function winogradMatrices(tile: WinogradTile): WinogradMatrices {
  return tile === 4 ? WINOGRAD_F4 : WINOGRAD_F2;
}

/** Filters transformed once: U[gi][ξ·α+η][f][c] = (G g_{f,c} Gᵀ)_ξη, the GEMM's A operands. */
export interface WinogradWeights {
  tile: WinogradTile;
  F: number;
  Cg: number;
  groups: number;
  data: FloatArray;
  /** Kept across calls (a module's cache): its prepared filters then stay resident in the kernel's memory. */
  kept?: boolean;
  /** The same filters prepared for the GEMM where the kernel takes them (made on first use): block
   * gi·α² + ξα + η is U_ξη of group gi. */
  panels?: PreparedFilters;
}

// w: (F, C/g, 3, 3) → U: (groups, α², F/g, C/g)
export function winogradWeights(w: FloatArray, F: number, Cg: number, groups: number, tile: WinogradTile): WinogradWeights {
  const { alpha, G } = winogradMatrices(tile);
  const A2 = alpha * alpha;
  const Fg = F / groups;
  // shared memory where it exists, so that the pool's workers read the filters without a copy
  const U = sharedArrayLike(groups * A2 * Fg * Cg, w);
  if (tile === 4 && transformsWinogradF4(w)) {
    winogradFiltersF4(w as Float32Array, F, Cg, groups, U as Float32Array); // the same values, on the kernels
    return { tile, F, Cg, groups, data: U };
  }
  const Gg = new Float64Array(alpha * 3);
  for (let f = 0; f < F; f++) {
    const gi = Math.floor(f / Fg);
    const fl = f - gi * Fg;
    for (let c = 0; c < Cg; c++) {
      const wo = (f * Cg + c) * 9;
      // Gg = G · g (α×3)
      for (let x = 0; x < alpha; x++) {
        for (let q = 0; q < 3; q++) {
          Gg[x * 3 + q] = G[x][0] * w[wo + q] + G[x][1] * w[wo + 3 + q] + G[x][2] * w[wo + 6 + q];
        }
      }
      // U_ξη = Σ_q Gg[ξ][q] · G[η][q]
      for (let x = 0; x < alpha; x++) {
        for (let e = 0; e < alpha; e++) {
          const u = Gg[x * 3] * G[e][0] + Gg[x * 3 + 1] * G[e][1] + Gg[x * 3 + 2] * G[e][2];
          U[((gi * A2 + x * alpha + e) * Fg + fl) * Cg + c] = u;
        }
      }
    }
  }
  return { tile, F, Cg, groups, data: U };
}

const TILE_BLOCK = 256;
const up4 = (n: number): number => Math.ceil(n / 4) * 4;

interface WinogradArgs {
  g: ConvGeometry; x: FloatArray; U: WinogradWeights; b: FloatArray | null; y: FloatArray; relu: boolean;
  /** split the output channels (few tiles: each part transforms every tile) rather than the tiles */
  byChannels: boolean;
}

// Parts take a run of tiles (numbered over the whole batch) or, when the tiles are few, a run of each
// group's output channels. Either way an output's value depends only on its tile's input and its
// filters, through the same operations, so the split leaves the bits alone.
const winogradKernel = defineKernel('winograd.forward', (a: WinogradArgs, part: number, parts: number) => {
  const T = tileCount(a.g, a.U.tile);
  if (a.byChannels) {
    const [f0, f1] = stripRange(a.g.Fg, part, parts);
    winogradTiles(a, 0, T, f0, f1);
  } else {
    const [t0, t1] = partRange(T, part, parts);
    winogradTiles(a, t0, t1, 0, a.g.Fg);
  }
});

function tileCount(g: ConvGeometry, m: number): number {
  return g.N * Math.ceil(g.Ho / m) * Math.ceil(g.Wo / m);
}

/** Below this many tiles per part, parts split the output channels instead of the tiles, unless the
 * images divide among the parts: then each part's tiles are whole images, whose output blocks go
 * into y with one copy each, where a part of an image goes row by row (~40 ns a row). On two threads,
 * the same bits either way, split by tiles against by channels: 192@14 at batch 2 1.12×, at batch 4
 * 1.12×, 96@28 at batch 2 1.05–1.09×; at batch 1 the channels stay (96@28 by tiles 0.85×). */
const MIN_TILES_PER_PART = 64;

/** The time of a multiply-add counted below against an im2col one, which the pool's threshold is
 * counted in: A0's F(4×4) layers at batch 1 (96@28, 192@14, 48@56; α² GEMMs only C/g deep and a
 * few strips wide, the transforms in float64) ran at 60–68 ns per thousand on one thread, im2col's at
 * ~40 (96@28: 16.6M of them, 1.0 ms, kept on one thread; split, 0.76 ms on two). */
const WINOGRAD_MAC_COST = 1.5;

// x: (N, C, H, W), U from winogradWeights, b: (F) | null → y: (N, F, Ho, Wo)
// relu: ReLU in the output transform's store (the deploy epilogue), with a separate pass's bits
export function conv2dWinograd(g: ConvGeometry, x: FloatArray, U: WinogradWeights, b: FloatArray | null, y: FloatArray, relu = false): void {
  const T = tileCount(g, U.tile);
  const alpha = U.tile + 2;
  // multiply-adds: the α² GEMMs, plus the transforms (~ α² per channel and tile, each way), in im2col's
  const macs = WINOGRAD_MAC_COST * T * alpha * alpha * (g.F * g.Cg + g.C + g.F);
  const planned = partsFor(macs, Math.max(T, g.Fg));
  const byChannels = T < MIN_TILES_PER_PART * planned && g.N % planned !== 0;
  const parts = partsFor(macs, byChannels ? Math.ceil(g.Fg / 4) : T);
  if (takesPreparedFilters(x)) prepareWinogradFilters(U);
  if (parts === 1) {
    winogradTiles({ g, x, U, b, y, relu, byChannels: false }, 0, T, 0, g.Fg);
    return;
  }
  const ys = shareOutput('conv.y', y);
  const Us = isShared(U.data) ? U : { ...U, data: shareInput('winograd.U', U.data) };
  if (Us !== U) delete Us.panels; // made for another array
  parallel(winogradKernel, { g, x: shareInput('conv.x', x), U: Us, b: b === null ? null : shareInput('conv.b', b), y: ys, relu, byChannels }, parts);
  collectOutput(ys, y);
}

// The filters prepared for the GEMM, once per WinogradWeights (a model caches those per weight
// version): the GEMMs then copy each panel in one piece instead of gathering it.
function prepareWinogradFilters(U: WinogradWeights): void {
  if (U.panels !== undefined || !(U.data instanceof Float32Array)) return;
  U.panels = prepareFilters(U.data, U.groups * (U.tile + 2) ** 2, U.F / U.groups, U.Cg, U.kept === true);
}

// Tiles [tLo, tHi) and each group's output channels [f0, f1) of conv2dWinograd, in blocks of TILE_BLOCK tiles.
function winogradTiles(a: WinogradArgs, tLo: number, tHi: number, f0: number, f1: number): void {
  const { g, x, U, b, y, relu } = a;
  const { C, H, W, F, groups, Cg, Fg, pt, pl, Ho, Wo } = g;
  const m = U.tile;
  const alpha = m + 2;
  const A2 = alpha * alpha;
  const th = Math.ceil(Ho / m), tw = Math.ceil(Wo / m);
  const tilesPerImage = th * tw;
  const TB = Math.min(TILE_BLOCK, tHi - tLo);
  const Fp = f1 - f0;
  if (TB <= 0 || Fp <= 0) return;
  // F(4×4) where the kernels transform too (float32 on WebAssembly: the same bits as below), with
  // V_k written straight in the GEMM's panel layout when its rows fit one panel (C/g ≤ PANEL_ROWS)
  const simd = m === 4 && transformsWinogradF4(x) && x instanceof Float32Array;
  const packed = simd && Cg <= PANEL_ROWS;
  if (packed && U.panels !== undefined) {
    // and with U prepared, V and M stay in the kernel's memory from transform to transform
    for (let t0 = tLo; t0 < tHi; t0 += TB) {
      const tb = Math.min(TB, tHi - t0);
      for (let gi = 0; gi < groups; gi++) {
        winogradTilesF4(winogradSource(g, x as Float32Array, gi, t0, tb, th, tw, true, V_SKEW), U.panels, gi * A2, f0,
          winogradOutputTiles(g, y as Float32Array, b as Float32Array | null, relu, gi, f0, f1, t0, tb, th, tw));
      }
    }
    return;
  }
  const V = workspaceLike('winograd.V', A2 * Cg * (TB + PANEL_STRIP - 1), x); // rows of tb rounded up to a multiple of 4 (or, packed, to whole strips)
  const M = workspaceLike('winograd.M', A2 * Fp * (TB + 3), x); // rows of tb rounded up to a multiple of 4
  const d = workspace64('winograd.d', 2 * A2);
  // F(4×4) on float32 data in float32 arithmetic (the kernels' lanes), F(2×2) and float64 data in float64
  const round = m === 4 && x instanceof Float32Array ? float32 : exact;
  const inputTransform: typeof inputTransformF4 = m === 4 ? inputTransformF4 : inputTransformF2;
  const yi = relu && y instanceof Float32Array ? new Int32Array(y.buffer, y.byteOffset, y.length) : null;
  const outputTransform: typeof outputTransformF4 = m === 4 ? outputTransformF4 : outputTransformF2;
  for (let t0 = tLo; t0 < tHi; t0 += TB) {
    const tb = Math.min(TB, tHi - t0);
    const tbE = up4(tb); // V's row length: a multiple of 4, for the SIMD transforms' quads of tiles
    const tbP = Math.ceil(tb / PANEL_STRIP) * PANEL_STRIP; // packed: whole strips
    for (let gi = 0; gi < groups; gi++) {
      // V[ξη][c][t] = (Bᵀ d_{c,t} B)_ξη
      if (simd) {
        winogradInputF4(winogradSource(g, x as Float32Array, gi, t0, tb, th, tw, packed), V as Float32Array, 0);
      } else {
        for (let c = 0; c < Cg; c++) {
          for (let t = 0; t < tb; t++) {
            const tile = t0 + t;
            const n = Math.floor(tile / tilesPerImage);
            const r = tile - n * tilesPerImage;
            const ty = Math.floor(r / tw);
            const y0 = ty * m - pt, x0 = (r - ty * tw) * m - pl;
            gatherTile(x, (n * C + gi * Cg + c) * H * W, H, W, y0, x0, alpha, d);
            inputTransform(d, V, c * tbE + t, Cg * tbE, round);
          }
        }
      }
      // M_ξη (rows f0..f1 of F/g × tb) = U_ξη (F/g × C/g) · V_ξη (C/g × tb)
      for (let k = 0; k < A2; k++) {
        const panels = U.panels === undefined ? undefined : filterRows(U.panels, gi * A2 + k, f0);
        gemm(Fp, tb, Cg,
          { data: U.data, offset: ((gi * A2 + k) * Fg + f0) * Cg, ld: Cg, trans: false },
          packed ? bPanels(V as Float32Array, k * Cg * tbP, Cg) : { data: V, offset: k * Cg * tbE, ld: tbE, trans: false },
          M, k * Fp * tbE, tbE, false, panels);
      }
      // Y = Aᵀ M A, cropped at the right and bottom edges, plus bias
      if (simd) {
        winogradOutputF4({ ...winogradOutputTiles(g, y as Float32Array, b as Float32Array | null, relu, gi, f0, f1, t0, tb, th, tw), M: M as Float32Array, mOffset: 0, rowLength: tbE });
        continue;
      }
      for (let fl = f0; fl < f1; fl++) {
        const f = gi * Fg + fl;
        const bias = b === null ? 0 : b[f];
        for (let t = 0; t < tb; t++) {
          const tile = t0 + t;
          const n = Math.floor(tile / tilesPerImage);
          const r = tile - n * tilesPerImage;
          const ty = Math.floor(r / tw);
          const oy = ty * m, ox = (r - ty * tw) * m;
          outputTransform(M, (fl - f0) * tbE + t, Fp * tbE, d, round);
          const yOff = (n * F + f) * Ho * Wo;
          const mh = Math.min(m, Ho - oy), mw = Math.min(m, Wo - ox);
          for (let i = 0; i < mh; i++) {
            const row = yOff + (oy + i) * Wo + ox;
            if (yi !== null) {
              // float32 ReLU on the stored bits, without a branch (relu.ts)
              for (let j = 0; j < mw; j++) {
                y[row + j] = d[i * m + j] + bias;
                yi[row + j] = reluBits(yi[row + j]);
              }
            } else if (relu) {
              for (let j = 0; j < mw; j++) {
                y[row + j] = d[i * m + j] + bias;
                if (y[row + j] < 0) y[row + j] = 0;
              }
            } else for (let j = 0; j < mw; j++) y[row + j] = d[i * m + j] + bias;
          }
        }
      }
    }
  }
}

/** Floats between V_k kept in kernel memory beyond their size: the input transform writes a quad's 36
 * values at one offset in each, and V_k a multiple of 4 KiB long (192 channels of 16 tiles: 12 KiB)
 * would put all 36 in one set of the L1 cache (as M_k's, winogradTilesSimd). */
const V_SKEW = 16;

// The tiles [t0, t0 + tb) of group gi for the SIMD input transform: the images they lie in, this
// group's channels, zero-padded so that every 6×6 window of F(4×4) lies inside (th·4 + 2 rows of
// tw·4 + 2, the image at (pt, pl)); tiles in quads, the last filled up with its last tile. V's layout:
// plain rows (V[k][c][t], rows of tb rounded up to a multiple of 4) or, packed, the GEMM's panels (bPanels:
// V_k[t/S][c][t mod S], strips of S = PANEL_STRIP tiles, C/g rows), V_k `skew` floats further apart
// than their size (V_SKEW where the kernels keep V; 0 in a workspace laid out without it).
function winogradSource(g: ConvGeometry, x: Float32Array, gi: number, t0: number, tb: number, th: number, tw: number, packed: boolean, skew = 0): WinogradSource {
  const { C, H, W, Cg, pt, pl } = g;
  const Hp = th * 4 + 2, Wp = tw * 4 + 2, per = th * tw;
  const n0 = Math.floor(t0 / per), n1 = Math.floor((t0 + tb - 1) / per);
  const S = PANEL_STRIP;
  const tbE = up4(tb), tbP = Math.ceil(tb / S) * S, quads = tbE / 4;
  const tiles = workspaceInt32('winograd.tiles', 5 * quads).subarray(0, 5 * quads); // a workspace may be longer
  const corner = (t: number) => {
    const tile = t0 + Math.min(t, tb - 1);
    const n = Math.floor(tile / per), r = tile - n * per, ty = Math.floor(r / tw);
    return (n - n0) * Cg * Hp * Wp + ty * 4 * Wp + (r - ty * tw) * 4;
  };
  for (let q = 0; q < quads; q++) {
    for (let i = 0; i < 4; i++) tiles[5 * q + i] = corner(4 * q + i);
    tiles[5 * q + 4] = packed ? Math.floor(4 * q / S) * Cg * S + (4 * q % S) : 4 * q;
  }
  const rowsOf = packed ? tbP : tbE;
  return {
    ...paddedPlanes(x, C, H, W, gi * Cg, Cg, n0, n1, Hp, Wp, pt, pl), tiles, channels: Cg, planeStride: Hp * Wp, rowStride: Wp,
    vFloats: 36 * (Cg * rowsOf + skew), kStride: Cg * rowsOf + skew, channelStride: packed ? S : tbE,
  };
}

// The output pass of tiles [t0, t0 + tb), channels f0 … f1 of group gi, for the SIMD output transform:
// a block of the tile rows R0 … R1 they span (R = n·th + ty), each channel a plane of 4 rows per tile
// row and tw·4 + 4 columns (the last 4 take the last quad's phantom tiles), copied into y's rows after:
// an image whose tiles all lie in the block is first laid out as y holds it (take) and copied with one
// set (a set per row cost ~40 ns however short, a loop below 16 floats ~2.5 ns a float: 192 channels
// of 14 rows a layer on A0's 14×14 maps), the rows of the rest one by one.
function winogradOutputTiles(
  g: ConvGeometry, y: Float32Array, b: Float32Array | null, relu: boolean,
  gi: number, f0: number, f1: number, t0: number, tb: number, th: number, tw: number,
): WinogradOutputTiles {
  const { F, Fg, Ho, Wo } = g;
  const quads = up4(tb) / 4, Fp = f1 - f0;
  const R0 = Math.floor(t0 / tw), R1 = Math.floor((t0 + tb - 1) / tw);
  const cols = tw * 4 + 4, planeStride = (R1 - R0 + 1) * 4 * cols;
  const tiles = workspaceInt32('winograd.out', 5 * quads).subarray(0, 5 * quads); // a workspace may be longer
  const corner = (t: number) => {
    if (t >= tb) return tw * 4; // the phantom: its own spare column
    const tile = t0 + t, R = Math.floor(tile / tw);
    return (R - R0) * 4 * cols + (tile - R * tw) * 4;
  };
  for (let q = 0; q < quads; q++) tiles.set([4 * q, corner(4 * q), corner(4 * q + 1), corner(4 * q + 2), corner(4 * q + 3)], 5 * q);
  const per = th * tw, whole = (n: number) => n * per >= t0 && (n + 1) * per <= t0 + tb;
  return {
    channels: Fp, tiles, outFloats: Fp * planeStride, planeStride, rowStride: cols,
    bias: b, biasOffset: gi * Fg + f0, relu,
    staging: whole(Math.ceil(t0 / per)) ? Fp * Ho * Wo : 0,
    store(mem, at, stage, take): void {
      for (let R = R0; R <= R1; R++) {
        const n = Math.floor(R / th), oy = (R - n * th) * 4, mh = Math.min(4, Ho - oy);
        if (whole(n)) { // R is the image's first tile row
          take(stage, at + (R - R0) * 4 * cols, Fp, Ho, Wo, cols, planeStride);
          y.set(mem.subarray(stage, stage + Fp * Ho * Wo), (n * F + gi * Fg + f0) * Ho * Wo);
          R += th - 1;
          continue;
        }
        const a = Math.max(t0, R * tw) - R * tw, e = Math.min(t0 + tb, (R + 1) * tw) - R * tw; // the block's tiles in this row
        const len = Math.min(e * 4, Wo) - a * 4;
        for (let f = 0; f < Fp; f++) {
          copyRows(mem, at + f * planeStride + (R - R0) * 4 * cols + a * 4, cols, y, (n * F + gi * Fg + f0 + f) * Ho * Wo + oy * Wo + a * 4, Wo, mh, len);
        }
      }
    },
  };
}

// d[α×α] = x[c, y0.., x0..] with zeros outside the image (the padding).
function gatherTile(x: FloatArray, xc: number, H: number, W: number, y0: number, x0: number, alpha: number, d: Float64Array): void {
  if (y0 >= 0 && x0 >= 0 && y0 + alpha <= H && x0 + alpha <= W) {
    for (let i = 0; i < alpha; i++) {
      const src = xc + (y0 + i) * W + x0;
      for (let j = 0; j < alpha; j++) d[i * alpha + j] = x[src + j];
    }
    return;
  }
  for (let i = 0; i < alpha; i++) {
    const yy = y0 + i;
    const rowIn = yy >= 0 && yy < H;
    const src = xc + yy * W + x0;
    for (let j = 0; j < alpha; j++) {
      const xx = x0 + j;
      d[i * alpha + j] = rowIn && xx >= 0 && xx < W ? x[src + j] : 0;
    }
  }
}

/** How the F(4×4) transforms round: after every operation to float32 where the data is float32 (what
 * the SIMD kernels' f32x4 lanes compute, in this order), not at all in float64. */
export type Rounding = (v: number) => number;
const exact: Rounding = (v) => v;
export const float32: Rounding = Math.fround;

// Bᵀ v for F(4, 3) on one column of a tile (or one row of Bᵀ d), into out[o + k·s]
function bt4(v0: number, v1: number, v2: number, v3: number, v4: number, v5: number, out: FloatArray, o: number, s: number, r: Rounding): void {
  out[o] = r(r(r(4 * v0) - r(5 * v2)) + v4); //             4·v0 − 5·v2 + v4
  out[o + s] = r(r(r(-4 * r(v1 + v2)) + v3) + v4); //     −4·(v1 + v2) + v3 + v4
  out[o + 2 * s] = r(r(r(4 * r(v1 - v2)) - v3) + v4); //  4·(v1 − v2) − v3 + v4
  out[o + 3 * s] = r(r(r(-2 * r(v1 - v3)) - v2) + v4); // −2·(v1 − v3) − v2 + v4
  out[o + 4 * s] = r(r(r(2 * r(v1 - v3)) - v2) + v4); //  2·(v1 − v3) − v2 + v4
  out[o + 5 * s] = r(r(r(4 * v1) - r(5 * v3)) + v5); //    4·v1 − 5·v3 + v5
}

// V[off + k·stride] = (Bᵀ d B)_k for F(4×4, 3×3); d is 6×6 row-major, d[36..71] scratch.
export function inputTransformF4(d: Float64Array, V: FloatArray, off: number, stride: number, r: Rounding = exact): void {
  // columns: t = Bᵀ d (t[k][j] at d[36 + 6k + j])
  for (let j = 0; j < 6; j++) bt4(d[j], d[6 + j], d[12 + j], d[18 + j], d[24 + j], d[30 + j], d, 36 + j, 6, r);
  // rows: V = t B
  for (let i = 0; i < 6; i++) {
    const s = 36 + i * 6;
    bt4(d[s], d[s + 1], d[s + 2], d[s + 3], d[s + 4], d[s + 5], V, off + i * 6 * stride, stride, r);
  }
}

// Aᵀ v for F(4, 3) on one column of m (or one row of Aᵀ m), into out[o + i·s], with the shared sums
// a = v1 + v2, s = v1 − v2, p = v3 + v4, q = v3 − v4
function at4(v0: number, v1: number, v2: number, v3: number, v4: number, v5: number, out: Float64Array, o: number, s: number, r: Rounding): void {
  const a = r(v1 + v2), d = r(v1 - v2), p = r(v3 + v4), q = r(v3 - v4);
  out[o] = r(r(v0 + a) + p); //              v0 + a + p
  out[o + s] = r(d + r(2 * q)); //           s + 2q
  out[o + 2 * s] = r(a + r(4 * p)); //       a + 4p
  out[o + 3 * s] = r(r(d + r(8 * q)) + v5); // s + 8q + v5
}

// out[0..15] = (Aᵀ m A) for F(4×4, 3×3), m_k = M[off + k·stride]; out[16..39] scratch.
export function outputTransformF4(M: FloatArray, off: number, stride: number, out: Float64Array, r: Rounding = exact): void {
  // columns: t = Aᵀ m (4×6, t[i][j] at out[16 + 6i + j])
  for (let j = 0; j < 6; j++) {
    const o = off + j * stride;
    at4(M[o], M[o + 6 * stride], M[o + 12 * stride], M[o + 18 * stride], M[o + 24 * stride], M[o + 30 * stride], out, 16 + j, 6, r);
  }
  // rows: Y = t A (4×4)
  for (let i = 0; i < 4; i++) {
    const b = 16 + i * 6;
    at4(out[b], out[b + 1], out[b + 2], out[b + 3], out[b + 4], out[b + 5], out, i * 4, 1, r);
  }
}

// V[off + k·stride] = (Bᵀ d B)_k for F(2×2, 3×3); d is 4×4 row-major, d[16..31] scratch.
function inputTransformF2(d: Float64Array, V: FloatArray, off: number, stride: number): void {
  for (let j = 0; j < 4; j++) {
    const d0 = d[j], d1 = d[4 + j], d2 = d[8 + j], d3 = d[12 + j];
    d[16 + j] = d0 - d2;
    d[20 + j] = d1 + d2;
    d[24 + j] = d2 - d1;
    d[28 + j] = d1 - d3;
  }
  for (let i = 0; i < 4; i++) {
    const s = 16 + i * 4;
    const r0 = d[s], r1 = d[s + 1], r2 = d[s + 2], r3 = d[s + 3];
    const o = off + i * 4 * stride;
    V[o] = r0 - r2;
    V[o + stride] = r1 + r2;
    V[o + 2 * stride] = r2 - r1;
    V[o + 3 * stride] = r1 - r3;
  }
}

// out[0..3] = (Aᵀ m A) for F(2×2, 3×3); out[4..11] scratch.
function outputTransformF2(M: FloatArray, off: number, stride: number, out: Float64Array): void {
  for (let j = 0; j < 4; j++) {
    const o = off + j * stride;
    const m0 = M[o], m1 = M[o + 4 * stride], m2 = M[o + 8 * stride], m3 = M[o + 12 * stride];
    out[4 + j] = m0 + m1 + m2;
    out[8 + j] = m1 - m2 - m3;
  }
  for (let i = 0; i < 2; i++) {
    const b = 4 + i * 4;
    const t0 = out[b], t1 = out[b + 1], t2 = out[b + 2], t3 = out[b + 3];
    out[i * 2] = t0 + t1 + t2;
    out[i * 2 + 1] = t1 - t2 - t3;
  }
}
