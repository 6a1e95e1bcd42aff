// im2col + GEMM convolution. Per group, the receptive fields of a run of output positions are
// unrolled into a (C/g·kH·kW) × L matrix `col`, and y_g = W_g · col. Output positions are numbered
// q = n·P + p over the whole batch (P = Ho·Wo), so a run may span images: small feature maps are
// batched so that the GEMM is wide enough to amortise packing the weights. A 1×1 conv with stride 1
// and no padding is already a GEMM over the input (col = x_g), so it needs no copy.
//
// Backward: dW = dy·colᵀ reads colᵀ gathered from x (never stored); dx of a stride-1 conv is the
// forward conv of dy with the rotated kernel (src/ops/conv2d.ts), of a strided one W_gᵀ·dy then col2im.
// Threads (src/backend/threads.ts): forward splits the output positions (or, on small maps, the
// output channels); backward splits dW by output channel and dx by input channel. Neither split touches a sum, so every thread count gives the
// same bits.

import { type FloatArray, copyRows } from '../tensor/tensor.js';
import { workspaceInt32, workspaceLike } from '../tensor/workspace.js';
import { collectOutput, defineKernel, isShared, parallel, partRange, partsFor, scratch, shareInput, shareOutput, stripRange } from '../backend/threads.js';
import { type GatherSource, type MatRef, type PanelSource, type PreparedFilters, type ScatterTarget, PANEL_STRIP, filterRows, forEachImage, gatherImageRows, gemm, gemmScatter, paddedPlanes, prepareFilters, scattersInKernel, storesImageColumns, takesPreparedFilters } from '../backend/gemm.js';
import type { ConvGeometry } from './conv2d_geometry.js';
import { biasGradient } from './conv2d_direct.js';
import { halfStart } from './batch_shards.js';
import { addOnto } from '../backend/add.js';

function isPointwise(g: ConvGeometry): boolean {
  return g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pb === 0 && g.pl === 0 && g.pr === 0;
}

// First and one-past-last output index o with 0 ≤ o·s − p + t < L (t = tap offset).
// Both lie in [0, O] (a tap that never lands inside the input gives an empty range at O).
function validRange(L: number, s: number, p: number, t: number, O: number): [number, number] {
  const lo = Math.min(O, Math.max(0, Math.ceil((p - t) / s)));
  const hi = Math.min(O, Math.floor((L - 1 + p - t) / s) + 1);
  return [lo, Math.max(lo, hi)];
}

// col (rows r = (c, i, j), columns colOff + (p − p0), row stride ld) for c in [c0, c1) → dx image n,
// group gi (+=). What does not depend on the channel is found once: each tap's valid output rows and
// columns (validRange) and the output rows that [p0, p1) spans (oh, and its columns ow0 … ow1).
function col2im(
  g: ConvGeometry, col: FloatArray, colOff: number, ld: number, n: number, gi: number,
  p0: number, p1: number, c0: number, c1: number, dx: FloatArray,
): void {
  const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  const rowLo = workspaceInt32('col2im.rows', 2 * KH), colLo = workspaceInt32('col2im.cols', 2 * KW);
  for (let i = 0; i < KH; i++) [rowLo[2 * i], rowLo[2 * i + 1]] = validRange(H, sh, pt, i * dh, Ho);
  for (let j = 0; j < KW; j++) [colLo[2 * j], colLo[2 * j + 1]] = validRange(W, sw, pl, j * dw, Wo);
  const spans = workspaceInt32('col2im.spans', 3 * (Math.ceil((p1 - p0) / Wo) + 1));
  let S = 0;
  for (let p = p0; p < p1; S++) {
    const oh = Math.floor(p / Wo);
    const ow0 = p - oh * Wo, ow1 = Math.min(Wo, ow0 + p1 - p);
    spans[3 * S] = oh;
    spans[3 * S + 1] = ow0;
    spans[3 * S + 2] = ow1;
    p += ow1 - ow0;
  }
  for (let c = c0; c < c1; c++) {
    const xc = (n * C + gi * Cg + c) * H * W;
    for (let i = 0; i < KH; i++) {
      const ohLo = rowLo[2 * i], ohHi = rowLo[2 * i + 1];
      for (let j = 0; j < KW; j++) {
        const owLo = colLo[2 * j], owHi = colLo[2 * j + 1];
        const base = ((c * KH + i) * KW + j) * ld + colOff - p0;
        for (let t = 0; t < S; t++) {
          const oh = spans[3 * t];
          if (oh < ohLo || oh >= ohHi) continue;
          const src = base + oh * Wo;
          const dst = xc + (oh * sh - pt + i * dh) * W - pl + j * dw;
          const hi = Math.min(owHi, spans[3 * t + 2]);
          for (let ow = Math.max(spans[3 * t + 1], owLo); ow < hi; ow++) dx[dst + ow * sw] += col[src + ow];
        }
      }
    }
  }
}

// The col matrix of image positions [qa, qa + L) (possibly spanning images) and group gi, never
// stored: B(t, q) = x[n, gi·Cg + c, oh·sh − pt + i·dh, ow·sw − pl + j·dw] for tap t = (c, i, j) and
// position qa + q = (n, oh, ow), 0 in the padding, packed straight into the GEMM's strips (the
// layout of packB in src/backend/gemm_pack.ts): one pass over the input instead of im2col's write, then packB's
// read and write. Transposed, it is colᵀ, what dW = dy·colᵀ reads: B(q, t), rows the positions.
class Im2colPanels implements PanelSource {
  /** per tap t: x offset of (c, i·dh, j·dw) from the position's corner, and i·dh, j·dw */
  private readonly tapOff: Int32Array;
  private readonly tapDi: Int32Array;
  private readonly tapDj: Int32Array;

  // transposed: colᵀ (positions × taps) from its tap (column) col0 on
  constructor(
    private readonly g: ConvGeometry, private readonly x: FloatArray, private readonly gi: number, private readonly qa: number, private readonly qb: number,
    private readonly transposed = false, private readonly col0 = 0,
  ) {
    const { H, W, KH, KW, Cg, dh, dw } = g;
    const K = Cg * KH * KW;
    this.tapOff = workspaceInt32('im2col.tapOff', K);
    this.tapDi = workspaceInt32('im2col.tapDi', K);
    this.tapDj = workspaceInt32('im2col.tapDj', K);
    for (let c = 0, t = 0; c < Cg; c++) {
      for (let i = 0; i < KH; i++) {
        for (let j = 0; j < KW; j++, t++) {
          this.tapDi[t] = i * dh;
          this.tapDj[t] = j * dw;
          this.tapOff[t] = c * H * W + i * dh * W + j * dw;
        }
      }
    }
  }

  packB(pc: number, jc: number, kc: number, nc: number, out: FloatArray, w: number, NR: number): void {
    if (this.transposed) {
      this.packTransposed(pc, jc, kc, nc, out, w, NR);
      return;
    }
    const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pl, Ho, Wo } = this.g;
    const { x, tapOff, tapDi, tapDj } = this;
    const P = Ho * Wo;
    const spanH = (KH - 1) * dh, spanW = (KW - 1) * dw;
    // per column: the x offset of its corner (n, gi·Cg, iy, ix), iy, ix; a strip is interior when
    // every tap of every column lands inside the image
    const base = this.cols(nc, 0), iy = this.cols(nc, 1), ix = this.cols(nc, 2);
    const strips = Math.ceil(nc / NR);
    const interior = this.strips(strips);
    for (let s = 0; s < strips; s++) interior[s] = 1;
    for (let c = 0; c < nc; c++) {
      const q = this.qa + jc + c;
      const n = Math.floor(q / P), p = q - n * P;
      const oh = Math.floor(p / Wo);
      const y0 = oh * sh - pt, x0 = (p - oh * Wo) * sw - pl;
      iy[c] = y0;
      ix[c] = x0;
      base[c] = ((n * C + this.gi * Cg) * H + y0) * W + x0;
      if (y0 < 0 || y0 + spanH >= H || x0 < 0 || x0 + spanW >= W) interior[Math.floor(c / NR)] = 0;
    }
    // blocks of 8 taps, strip by strip: a strip's rows of a block are 8 consecutive rows of its
    // panel (contiguous writes), and the block's taps read neighbouring parts of the input (tap by
    // tap and strip by strip measured no faster; on 'wasm' the gather below replaces all of this)
    for (let k0 = pc; k0 < pc + kc; k0 += 8) {
      const k1 = Math.min(k0 + 8, pc + kc);
      for (let s = 0, c0 = 0; s < strips; s++, c0 += NR) {
        const nr = Math.min(NR, nc - c0);
        let o = w + s * kc * NR + (k0 - pc) * NR;
        for (let k = k0; k < k1; k++, o += NR) {
          const to = tapOff[k];
          if (interior[s] === 1) {
            for (let r = 0; r < nr; r++) out[o + r] = x[base[c0 + r] + to];
          } else {
            const di = tapDi[k], dj = tapDj[k];
            for (let r = 0; r < nr; r++) {
              const c = c0 + r;
              out[o + r] = (iy[c] + di) >>> 0 < H && (ix[c] + dj) >>> 0 < W ? x[base[c] + to] : 0;
            }
          }
          for (let r = nr; r < NR; r++) out[o + r] = 0;
        }
      }
    }
  }

  // colᵀ rows pc … pc + kc (positions), columns jc … jc + nc (taps), position by position: a row of
  // a strip is NR taps of one receptive field.
  private packTransposed(pc: number, jc: number, kc: number, nc: number, out: FloatArray, w: number, NR: number): void {
    const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pl, Ho, Wo } = this.g;
    const { x, tapOff, tapDi, tapDj } = this;
    const P = Ho * Wo;
    const spanH = (KH - 1) * dh, spanW = (KW - 1) * dw;
    const strips = Math.ceil(nc / NR);
    for (let k = 0; k < kc; k++) {
      const q = this.qa + pc + k;
      const n = Math.floor(q / P), p = q - n * P;
      const oh = Math.floor(p / Wo);
      const y0 = oh * sh - pt, x0 = (p - oh * Wo) * sw - pl;
      const base = ((n * C + this.gi * Cg) * H + y0) * W + x0;
      const interior = y0 >= 0 && y0 + spanH < H && x0 >= 0 && x0 + spanW < W;
      for (let s = 0; s < strips; s++) {
        const t0 = this.col0 + jc + s * NR, nr = Math.min(NR, nc - s * NR);
        const o = w + s * kc * NR + k * NR;
        if (interior) {
          for (let r = 0; r < nr; r++) out[o + r] = x[base + tapOff[t0 + r]];
        } else {
          for (let r = 0; r < nr; r++) {
            const t = t0 + r;
            out[o + r] = (y0 + tapDi[t]) >>> 0 < H && (x0 + tapDj[t]) >>> 0 < W ? x[base + tapOff[t]] : 0;
          }
        }
        for (let r = nr; r < NR; r++) out[o + r] = 0;
      }
    }
  }

  // On WebAssembly the kernels gather the panels themselves from a zero-padded copy of the images
  // the positions lie in (this group's channels): no bounds to check, 8 loads and stores per row
  // of a strip. src[((n − n0)·Cg + c)·Hp·Wp + (iy + pt)·Wp + ix + pl] = x[n, gi·Cg + c, iy, ix].
  // The gather reads src[row offset + column offset]: a sum, so colᵀ is the same gather with the
  // positions' offsets as rows and the taps' as columns.
  get gather(): GatherSource {
    const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pb, pl, pr, Ho, Wo } = this.g;
    const P = Ho * Wo, Hp = H + pt + pb, Wp = W + pl + pr;
    const n0 = Math.floor(this.qa / P), n1 = Math.floor((this.qb - 1) / P);
    const K = Cg * KH * KW;
    const tapOffsets = workspaceInt32('im2col.taps', K);
    for (let c = 0, t = 0; c < Cg; c++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++, t++) tapOffsets[t] = (c * Hp + i * dh) * Wp + j * dw;
    const { x, gi, qa } = this;
    // offsets of the positions qa + jc … into out
    const positions = (jc: number, n: number, out: Int32Array): void => positionOffsets(qa + jc, n, Ho, Wo, n0, Cg * Hp * Wp, sh * Wp, sw, out);
    let rows = tapOffsets, cols = positions;
    if (this.transposed) {
      rows = workspaceInt32('im2col.positions', this.qb - qa);
      positions(0, this.qb - qa, rows);
      const col0 = this.col0;
      cols = (jc, n, out) => out.set(tapOffsets.subarray(col0 + jc, col0 + jc + n));
    }
    const planes = paddedPlanes(x, C, H, W, gi * Cg, Cg, n0, n1, Hp, Wp, pt, pl);
    return { size: planes.size, load: planes.load, taps: rows, cols };
  }

  // per-column scratch (three rows of a workspace) and per-strip flags
  private cols(nc: number, row: number): Int32Array {
    return workspaceInt32('im2col.cols', 3 * nc).subarray(row * nc, (row + 1) * nc);
  }
  private strips(n: number): Int32Array {
    return workspaceInt32('im2col.strips', n);
  }
}

// col2im inside the SIMD kernel (gemmScatter): dcol is never stored. The product's rows (c, i, j) for
// c in [c0, c1) and columns the chunk's positions are added into zero-padded planes of the chunk's
// images (n0 … n1, the part's channels), row (c, i, j) and position (n, oh, ow) meeting at
//   (n − n0)·S + (c − c0)·Hp·Wp + (oh·sh + i·dh)·Wp + ow·sw + j·dw
// (a row offset plus a column offset, as the gather reads x), then the planes' interiors go to dx:
// stored when the chunk is the whole batch and dx holds nothing to keep (`store`), else added to
// what dx holds (in kernel memory: copyPlanesAdd, the f32 adds of dx[k] += v). An image takes
// S = (c1 − c0)·Hp·Wp + 16 floats: on 1×1 maps a row of the product adds into one element per image,
// and at a stride of a power of two (4 KiB for 64 planes of 4×4) those all fall in one set of the
// L1 cache, ~10 ns an addition; a cache line more per image spreads them (4× faster there).
function col2imTarget(g: ConvGeometry, qa: number, qb: number, gi: number, c0: number, c1: number, dx: FloatArray, store: boolean): ScatterTarget {
  const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pb, pl, pr, Ho, Wo } = g;
  const P = Ho * Wo, Hp = H + pt + pb, Wp = W + pl + pr, cs = c1 - c0, S = cs * Hp * Wp + 16;
  const n0 = Math.floor(qa / P), n1 = Math.floor((qb - 1) / P);
  const rows = workspaceInt32('col2im.rows', cs * KH * KW);
  for (let c = 0, r = 0; c < cs; c++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++, r++) rows[r] = (c * Hp + i * dh) * Wp + j * dw;
  // every channel of each image (one group, not split): the images' dx lie back to back, so they go
  // in (to be added to) and out with one set for the chunk, not one per image
  const n = cs * H * W, whole = cs === C, images = n1 - n0 + 1;
  return {
    size: images * S,
    rows,
    staging: whole ? images * n : n,
    cols(jc, count, out) {
      positionOffsets(qa + jc, count, Ho, Wo, n0, S, sh * Wp, sw, out);
    },
    blockEnd(jc, most) {
      const end = Math.min(qb, qa + jc + most), start = Math.floor(end / P) * P;
      return (start > qa + jc && start < end ? start : end) - qa;
    },
    store(mem, at, stage, take, takeAdd) {
      const place = (i: number, to: number) => (store ? take : takeAdd)(to, at + (i - n0) * S + pt * Wp + pl, cs, H, W, Wp, Hp * Wp);
      if (whole) {
        const d = n0 * n;
        if (!store) mem.set(dx.subarray(d, d + images * n), stage);
        for (let i = n0; i <= n1; i++) place(i, stage + (i - n0) * n);
        dx.set(mem.subarray(stage, stage + images * n), d);
        return;
      }
      for (let i = n0; i <= n1; i++) {
        const d = (i * C + gi * Cg + c0) * H * W;
        if (!store) mem.set(dx.subarray(d, d + n), stage);
        place(i, stage);
        dx.set(mem.subarray(stage, stage + n), d);
      }
    },
  };
}

// out[j] = (n − n0)·S + oh·rowStep + ow·colStep for the output positions q0 + j = (n, oh, ow), j < count:
// a gather's or a scatter's column offsets (S: an image's stride there), found by counting rows and
// images instead of two divisions a position (the demo's stem, one input channel: ~1/4 of its time).
function positionOffsets(q0: number, count: number, Ho: number, Wo: number, n0: number, S: number, rowStep: number, colStep: number, out: Int32Array): void {
  const n = Math.floor(q0 / (Ho * Wo)), p = q0 - n * Ho * Wo;
  let oh = Math.floor(p / Wo), ow = p - oh * Wo;
  let row = (n - n0) * S + oh * rowStep;
  for (let j = 0; j < count; j++) {
    out[j] = row + ow * colStep;
    if (++ow === Wo) {
      ow = 0;
      row += rowStep;
      if (++oh === Ho) {
        oh = 0;
        row += S - Ho * rowStep;
      }
    }
  }
}

/** Elements of the col matrix per chunk (8 MiB as float32). */
const COL_LIMIT = 1 << 21;
// Columns of col a chunk holds for K rows: at most COL_LIMIT/K, at least 64.
const chunkPositions = (K: number): number => Math.max(64, Math.floor(COL_LIMIT / K));

// A chunk of output positions starting at qa: at most chunkPositions(K) of them, and
// a chunk that would end inside a later image ends at that image's start instead.
function chunkEnd(qa: number, q1: number, K: number, P: number): number {
  const qb = Math.min(q1, qa + chunkPositions(K));
  const boundary = Math.floor(qb / P) * P;
  return boundary > qa && boundary < qb ? boundary : qb;
}

// The start of the backward's chunk (chunkEnd's, from 0) that holds position q < q1.
function chunkStartOf(q: number, q1: number, K: number, P: number): number {
  let qa = 0;
  for (let qb = chunkEnd(qa, q1, K, P); qb <= q; qb = chunkEnd(qa, q1, K, P)) qa = qb;
  return qa;
}

// The forward's chunks: where one image's map is wide enough to fill the GEMM's column blocks, a
// chunk stays inside one image, so that the GEMM writes y's rows in place; on the reference kernel a
// chunk across images would be computed into a buffer as large as y and copied out (the stem of a
// batch of 224×224 images: 9.6 MB more memory touched and a copy; the SIMD kernel stores each
// image's columns in place either way). The forward's bits do not depend on its chunks
// (each output sums over K in the same blocks); the backward's dW does, so it keeps chunkEnd.
const WIDE_MAP = 1024;
function forwardChunkEnd(qa: number, q1: number, K: number, P: number): number {
  const qb = chunkEnd(qa, q1, K, P);
  return P >= WIDE_MAP ? Math.min(qb, (Math.floor(qa / P) + 1) * P) : qb;
}

// A 1×1 stride-1 unpadded conv reads its input in place when the map is large enough to fill a GEMM.
function readsInPlace(g: ConvGeometry, P: number): boolean {
  return isPointwise(g) && P >= 256;
}

interface ForwardArgs {
  g: ConvGeometry; x: FloatArray; w: FloatArray; b: FloatArray | null; y: FloatArray; relu: boolean;
  /** w prepared for the GEMM (im2colFilters), when the caller has it */
  panels?: PreparedFilters;
  /** parts split the output channels (else the output positions): see splitsChannels */
  byChannel: boolean;
}

// Threads split a forward's output positions, so each part packs all of W_g (F/g × K) and gathers
// its share of col (K × positions), or its output channels, so each packs its share of W_g and
// gathers all of col. Without prepared filters (training: the weights change every call) the first
// duplicates more when F/g > 2·positions (a gathered element costs about two packed ones): A0's
// 192→1280 on a batch of 8 2×2 maps packed 2.2M weights in each part to compute 8 positions (4.2 →
// 2.8 ms on two threads split by channel), while 192→192 on 8 4×4 maps (F/g = 192, 128 positions)
// ran 1.16× slower split by channel. With prepared filters nothing is packed: positions.
function splitsChannels(g: ConvGeometry, panels: PreparedFilters | undefined): boolean {
  return panels === undefined && g.Fg > 2 * g.N * g.Ho * g.Wo;
}

// y[n, f, p0..p1) for the output positions q in [q0, q1) and the channels f0 ≤ f − gi·F/g < f1 of
// every group gi (see conv2dIm2col)
function forwardBlock(a: ForwardArgs, q0: number, q1: number, f0: number, f1: number): void {
  const { g, x, w, b, y, relu, panels } = a;
  const { C, H, W, F, KH, KW, groups, Cg, Fg, Ho, Wo } = g;
  const K = Cg * KH * KW;
  const P = Ho * Wo, M = f1 - f0;
  const packed = (gi: number) => (panels === undefined ? undefined : filterRows(panels, gi, f0));
  if (readsInPlace(g, P)) {
    forEachImage(q0, q1, P, (n, p0, p1) => {
      for (let gi = 0; gi < groups; gi++) {
        gemm(M, p1 - p0, K, { data: w, offset: (gi * Fg + f0) * K, ld: K, trans: false },
          { data: x, offset: (n * C + gi * Cg) * H * W + p0, ld: P, trans: false }, y, (n * F + gi * Fg + f0) * P + p0, P, false,
          packed(gi), { bias: b, biasOff: gi * Fg + f0, relu });
      }
    });
    return;
  }
  for (let qa = q0; qa < q1;) {
    const qb = forwardChunkEnd(qa, q1, K, P);
    const L = qb - qa;
    const n0 = Math.floor(qa / P);
    const oneImage = Math.floor((qb - 1) / P) === n0;
    const perImage = !oneImage && storesImageColumns(y);
    const yb = oneImage || perImage ? y : workspaceLike('im2col.y', M * L, x);
    for (let gi = 0; gi < groups; gi++) {
      // one image: the GEMM writes y's rows in place (row stride P); several: the SIMD kernel stores
      // each image's share of the columns in place, the reference writes a buffer, then scattered.
      // Bias and ReLU are the GEMM's epilogue (the same bits as a separate pass over y).
      const wRef = { data: w, offset: (gi * Fg + f0) * K, ld: K, trans: false };
      const colRef = new Im2colPanels(g, x, gi, qa, qb);
      const epi = { bias: b, biasOff: gi * Fg + f0, relu };
      if (oneImage) gemm(M, L, K, wRef, colRef, y, (n0 * F + gi * Fg + f0) * P + qa - n0 * P, P, false, packed(gi), epi);
      else if (perImage) gemm(M, L, K, wRef, colRef, y, (gi * Fg + f0) * P, P, false, packed(gi), epi, { P, q0: qa, imageStride: F * P });
      else {
        gemm(M, L, K, wRef, colRef, yb, 0, L, false, packed(gi), epi);
        forEachImage(qa, qb, P, (n, p0, p1, off) => copyRows(yb, off, L, y, (n * F + gi * Fg + f0) * P + p0, P, M, p1 - p0));
      }
    }
    qa = qb;
  }
}

const forwardKernel = defineKernel('im2col.forward', (a: ForwardArgs, part: number, parts: number) => {
  const Q = a.g.N * a.g.Ho * a.g.Wo;
  if (a.byChannel) {
    const [f0, f1] = stripRange(a.g.Fg, part, parts);
    forwardBlock(a, 0, Q, f0, f1);
  } else {
    const [q0, q1] = partRange(Q, part, parts);
    forwardBlock(a, q0, q1, 0, a.g.Fg);
  }
});

// x: (N, C, H, W), w: (F, C/g, kH, kW), b: (F) | null → y: (N, F, Ho, Wo)
// Per chunk of output positions and group: Y_g (F/g × L) = W_g (F/g × K) · col (K × L).
// relu: apply ReLU in the bias pass (the deploy epilogue: one pass over the output instead of two)
// packed: the weights prepared for the GEMM (im2colFilters; used where the kernel takes them)
export function conv2dIm2col(g: ConvGeometry, x: FloatArray, w: FloatArray, b: FloatArray | null, y: FloatArray, relu = false, packed?: PreparedFilters): void {
  const Q = g.N * g.Ho * g.Wo;
  const panels = takesPreparedFilters(x) ? packed : undefined;
  const byChannel = splitsChannels(g, panels);
  const parts = partsFor(Q * g.F * g.Cg * g.KH * g.KW, byChannel ? Math.ceil(g.Fg / 4) : Q);
  if (parts === 1) {
    forwardBlock({ g, x, w, b, y, relu, panels, byChannel }, 0, Q, 0, g.Fg);
    return;
  }
  const ys = shareOutput('conv.y', y);
  parallel(forwardKernel, {
    g, x: shareInput('conv.x', x), w: shareInput('conv.w', w), b: b === null ? null : shareInput('conv.b', b), y: ys, relu,
    panels: panels !== undefined && isShared(panels.panels.data) ? panels : undefined, // workers see shared memory only
    byChannel,
  }, parts);
  collectOutput(ys, y);
}

// w: (F, C/g, kH, kW) → each group's W_g (F/g × K) prepared for the GEMM (takesPreparedFilters), once
// per weight version (the Conv2d module caches it, as it caches Winograd filters): a GEMM then
// copies its blocks in one piece instead of gathering them, and a layer with large weights
// (A0's 192→1280, 2.2M of them) stops re-packing them on every call.
// kept: a module's cache, used call after call (see prepareFilters)
export function im2colFilters(g: ConvGeometry, w: Float32Array, kept: boolean): PreparedFilters {
  return prepareFilters(w, g.groups, g.Fg, g.Cg * g.KH * g.KW, kept);
}

interface BackwardArgs {
  g: ConvGeometry; x: FloatArray; w: FloatArray; dy: FloatArray;
  dx: FloatArray | null; dW: FloatArray | null;
  /** the second half of the batch's dW (its positions from hQ on), added to dW at the end (batch_shards.ts) */
  dW1: FloatArray | null; hQ: number;
  /** the chunk [qa, qb) of output positions and the group */
  qa: number; qb: number; gi: number;
  /** col2im stores dx (one chunk, the whole batch, nothing in dx to add to), else adds into it */
  storesDx: boolean;
  /** dyb holds the chunk's dy gathered (it spans images and dx is wanted); else dW reads dy in place */
  gathered: boolean;
  dyb: FloatArray; dcol: FloatArray;
}

// Phase 1 of a chunk that spans images, where dx is wanted: dyb (F/g × L) = dy gathered from them,
// read by dx's GEMM and dW's (without dx, dW's GEMM reads dy across the images itself); each part
// takes a run of positions.
const backwardGather = defineKernel('im2col.backward.gather', (a: BackwardArgs, part: number, parts: number) => {
  const { g, dy, qa, qb, gi, dyb } = a;
  const { F, Fg, Ho, Wo } = g;
  const P = Ho * Wo, L = qb - qa;
  const [s0, s1] = partRange(L, part, parts);
  gatherImageRows(dy, gi * Fg * P, F * P, P, Fg, P, qa + s0, qa + s1, dyb, s0, L);
});

// Phase 2: dW's columns of this part (+)= dy_g · colᵀ, colᵀ gathered from x straight into the GEMM's
// panels (Im2colPanels, transposed), and for this part's input channels dcol = W_gᵀ · dy_g, added
// into dx by col2im. dW is split by its columns (taps), not its rows: each part then gathers only
// its share of colᵀ (F/g × K from K × L positions, the larger operand) and packs all of dy_g (F/g × L);
// a row split gathered all of colᵀ in every part (A0's 192→192 @4×4, batch 8: two threads 1.16× one).
// Either way an element of dW sums its positions in the same order: the same bits.
const backwardProducts = defineKernel('im2col.backward.products', (a: BackwardArgs, part: number, parts: number) => {
  const { g, x, w, dy, dx, dW, qa, qb, gi, dyb, dcol } = a;
  const { F, KH, KW, Cg, Fg, Ho, Wo } = g;
  const P = Ho * Wo, L = qb - qa, KK = KH * KW, K = Cg * KK;
  const n0 = Math.floor(qa / P);
  const multi = Math.floor((qb - 1) / P) !== n0;
  // dy_g for the chunk's positions from q on: in place (one image, row stride P), gathered (row stride
  // L) or, for dW where nothing gathered it, in place across images (the GEMM lays its rows out)
  const dyRef = (f0: number, q = qa): MatRef => !multi
    ? { data: dy, offset: (n0 * F + gi * Fg + f0) * P + q - n0 * P, ld: P, trans: false }
    : a.gathered ? { data: dyb, offset: f0 * L + q - qa, ld: L, trans: false }
    : { data: dy, offset: (gi * Fg + f0) * P, ld: P, trans: false, images: { P, q0: q, imageStride: F * P } };
  if (dW !== null) {
    const [s0, s1] = partRange(Math.ceil(K / PANEL_STRIP), part, parts); // whole strips of the GEMM's panels
    const k0 = Math.min(K, s0 * PANEL_STRIP), k1 = Math.min(K, s1 * PANEL_STRIP);
    // the batch's halves sum on their own (batch_shards.ts): positions before hQ into dW; from hQ on,
    // where this chunk holds all of them (dW1 null), in the same GEMM, whose sum of them it adds to
    // the first half's as it stores dW (splitK, or 'plus' where the chunk starts at hQ); else into dW1
    const { hQ } = a, off = gi * Fg * K + k0;
    if (k1 > k0 && a.dW1 === null) {
      const acc = qa === hQ ? 'plus' : qa > 0;
      gemm(Fg, k1 - k0, qb - qa, dyRef(0), new Im2colPanels(g, x, gi, qa, qb, true, k0), dW, off, K, acc, undefined, undefined, undefined, qa < hQ ? hQ - qa : 0);
    } else if (k1 > k0) {
      if (qa < hQ) {
        const qe = Math.min(qb, hQ);
        gemm(Fg, k1 - k0, qe - qa, dyRef(0), new Im2colPanels(g, x, gi, qa, qe, true, k0), dW, off, K, qa > 0);
      }
      if (qb > hQ) {
        const qs = Math.max(qa, hQ);
        gemm(Fg, k1 - k0, qb - qs, dyRef(0, qs), new Im2colPanels(g, x, gi, qs, qb, true, k0), a.dW1!, off, K, qs > hQ);
      }
    }
  }
  if (dx !== null) {
    const [c0, c1] = partRange(Cg, part, parts);
    const wT = { data: w, offset: gi * Fg * K + c0 * KK, ld: K, trans: true };
    if (scattersInKernel(dcol)) {
      gemmScatter((c1 - c0) * KK, L, Fg, wT, dyRef(0), col2imTarget(g, qa, qb, gi, c0, c1, dx, a.storesDx));
    } else {
      gemm((c1 - c0) * KK, L, Fg, wT, dyRef(0), dcol, c0 * KK * L, L, false);
      forEachImage(qa, qb, P, (n, p0, p1, off) => col2im(g, dcol, off, L, n, gi, p0, p1, c0, c1, dx));
    }
  }
});

// The pointwise in-place case, all images at once: dW rows f (+)= Σ_n dy_n · x_nᵀ; dx rows c = W_gᵀ · dy_n.
const backwardPointwise = defineKernel('im2col.backward.pointwise', (a: BackwardArgs, part: number, parts: number) => {
  const { g, x, w, dy, dx, dW } = a;
  const { N, C, H, W, F, groups, Cg, Fg, Ho, Wo } = g;
  const P = Ho * Wo, K = Cg, h = a.hQ / P;
  const [f0, f1] = partRange(Fg, part, parts);
  const [c0, c1] = partRange(Cg, part, parts);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < groups; gi++) {
      const xOff = (n * C + gi * Cg) * H * W;
      if (dW !== null) { // the second half of the batch into dW1 (batch_shards.ts)
        const acc = n < h ? n > 0 : a.dW1 === null ? 'plus' : n > h; // dW1 null: the second half is one image
        gemm(f1 - f0, K, P, { data: dy, offset: (n * F + gi * Fg + f0) * P, ld: P, trans: false },
          { data: x, offset: xOff, ld: P, trans: true }, n < h ? dW : a.dW1 ?? dW, (gi * Fg + f0) * K, K, acc);
      }
      if (dx !== null) {
        gemm(c1 - c0, P, Fg, { data: w, offset: gi * Fg * K + c0, ld: K, trans: true },
          { data: dy, offset: (n * F + gi * Fg) * P, ld: P, trans: false }, dx, xOff + c0 * P, P, false);
      }
    }
  }
});

// The positions of the backward's first chunk (chunkEnd's, from 0): one chunk is the batch when this is all of it.
const backwardChunk = (g: ConvGeometry): number => Math.min(g.N * g.Ho * g.Wo, chunkPositions(g.Cg * g.KH * g.KW));

/** Whether im2col's backward can add dx to what dx holds in the kernel's col2im (conv2dBackwardIm2col's
 * addDx): the SIMD kernel, one chunk for the whole batch, not a 1×1 read in place. */
export function im2colAddsDx(g: ConvGeometry, x: FloatArray): boolean {
  return !readsInPlace(g, g.Ho * g.Wo) && backwardChunk(g) === g.N * g.Ho * g.Wo && scattersInKernel(x);
}

// dy: (N, F, Ho, Wo) → dx: (N, C, H, W) = col2im(W_gᵀ·dy_g), dw: (F, C/g, kH, kW) = Σ dy_g·colᵀ, db: (F)
// dW sums over output positions chunk by chunk; the chunks do not depend on the thread count.
// addDx: dx is added to what dx holds (dx[i] += its value, one f32 add an element: a branch's dx onto
// the block's) by the kernel's col2im, where im2colAddsDx.
export function conv2dBackwardIm2col(
  g: ConvGeometry, x: FloatArray, w: FloatArray, dy: FloatArray,
  dx: FloatArray | null, dW: FloatArray | null, db: FloatArray | null, addDx = false,
): void {
  const { N, F, KH, KW, groups, Cg, Fg, Ho, Wo } = g;
  const K = Cg * KH * KW;
  const P = Ho * Wo, Q = N * P;
  if (db !== null) biasGradient(g, dy, db);
  if (dx === null && dW === null) return;
  const cols = backwardChunk(g);
  // col2im in the kernel on one chunk stores dx whole (or adds it where asked); anything else adds
  // into a dx that starts at 0
  const oneScatter = im2colAddsDx(g, x);
  if (addDx && dx !== null && !oneScatter) throw new Error('conv2d backward: im2col adds dx only in its kernel\'s col2im over one chunk');
  const parts = partsFor(2 * Q * F * K, Math.max(Fg, Cg));
  const share = parts > 1;
  const xs = share ? shareInput('conv.x', x) : x;
  const ws = share ? shareInput('conv.w', w) : w;
  const dys = share ? shareInput('conv.dy', dy) : dy;
  const dxs = dx !== null && share ? (addDx ? shareInput('conv.dx', dx) : shareOutput('conv.dx', dx)) : dx;
  const dWs = dW !== null && share ? shareOutput('conv.dW', dW) : dW;
  // dW by the batch's halves (batch_shards.ts): the positions from hQ on sum on their own, added onto
  // the first half's by the GEMM where one GEMM holds them all, else into dW1, added at the end
  const hQ = halfStart(N) * P;
  const secondWhole = hQ < Q && (readsInPlace(g, P) ? N - hQ / P === 1 : chunkEnd(chunkStartOf(hQ, Q, K, P), Q, K, P) === Q);
  const dW1 = dW !== null && hQ < Q && !secondWhole ? scratch('im2col.dW1', dW.length, dW, parts).subarray(0, dW.length) : null;
  // the kernels' arguments, each one literal of one shape (object spreads are slow to build in V8)
  const args = (qa: number, qb: number, gi: number, dyb: FloatArray, dcol: FloatArray, gathered: boolean): BackwardArgs => (
    { g, x: xs, w: ws, dy: dys, dx: dxs, dW: dWs, dW1, hQ, storesDx: oneScatter && !addDx, qa, qb, gi, gathered, dyb, dcol });
  if (readsInPlace(g, P)) {
    parallel(backwardPointwise, args(0, Q, 0, x, x, false), parts);
  } else {
    // without dx, nothing gathers dy (dW reads it in place) and there is no dcol: x stands in for both
    const dyb = dx === null ? xs : scratch('im2col.dy', Fg * cols, x, parts);
    const dcol = dx === null ? xs : scratch('im2col.dcol', K * cols, x, parts);
    if (dxs !== null && !oneScatter) dxs.fill(0);
    for (let qa = 0; qa < Q;) {
      const qb = chunkEnd(qa, Q, K, P);
      const multi = Math.floor((qb - 1) / P) !== Math.floor(qa / P);
      // dy gathered where dx's GEMM takes it (dW reads it in place otherwise)
      const gathered = multi && dx !== null;
      for (let gi = 0; gi < groups; gi++) {
        const a = args(qa, qb, gi, dyb, dcol, gathered);
        if (gathered) parallel(backwardGather, a, parts);
        parallel(backwardProducts, a, parts);
      }
      qa = qb;
    }
  }
  if (dx !== null) collectOutput(dxs!, dx);
  if (dW !== null) {
    if (dW1 !== null) addOnto(dWs!, dW1);
    collectOutput(dWs!, dW);
  }
}
