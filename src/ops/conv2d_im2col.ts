// im2col + GEMM convolution. Per image and group, the receptive fields are unrolled into a
// (C/g·kH·kW) × (Ho·Wo) matrix `col`, and y_g = W_g · col. A 1×1 conv with stride 1 and no padding
// is already a GEMM over the input (col = x_g), so it needs no copy.

import type { FloatArray } from '../tensor/tensor.js';
import { workspaceLike } from '../tensor/workspace.js';
import type { ConvGeometry } from './conv2d_geometry.js';
import { biasGradient } from './conv2d_direct.js';
import { gemm } from './gemm.js';

function isPointwise(g: ConvGeometry): boolean {
  return g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pb === 0 && g.pl === 0 && g.pr === 0;
}

// First and one-past-last output index o with 0 ≤ o·s − p + t < L (t = tap offset).
function validRange(L: number, s: number, p: number, t: number, O: number): [number, number] {
  const lo = Math.max(0, Math.ceil((p - t) / s));
  const hi = Math.min(O, Math.floor((L - 1 + p - t) / s) + 1);
  return [lo, Math.max(lo, hi)];
}

// x: (N, C, H, W) image n, group gi → col: (C/g·kH·kW, Ho·Wo)
function im2col(g: ConvGeometry, x: FloatArray, n: number, gi: number, col: FloatArray): void {
  const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  const P = Ho * Wo;
  let r = 0;
  for (let c = 0; c < Cg; c++) {
    const xc = (n * C + gi * Cg + c) * H * W;
    for (let i = 0; i < KH; i++) {
      const [ohLo, ohHi] = validRange(H, sh, pt, i * dh, Ho);
      for (let j = 0; j < KW; j++, r++) {
        const [owLo, owHi] = validRange(W, sw, pl, j * dw, Wo);
        const row = r * P;
        col.fill(0, row, row + ohLo * Wo);
        for (let oh = ohLo; oh < ohHi; oh++) {
          const dst = row + oh * Wo;
          const src = xc + (oh * sh - pt + i * dh) * W - pl + j * dw;
          for (let ow = 0; ow < owLo; ow++) col[dst + ow] = 0;
          for (let ow = owLo; ow < owHi; ow++) col[dst + ow] = x[src + ow * sw];
          for (let ow = owHi; ow < Wo; ow++) col[dst + ow] = 0;
        }
        col.fill(0, row + ohHi * Wo, row + P);
      }
    }
  }
}

// col: (C/g·kH·kW, Ho·Wo) → dx image n, group gi (+=)
function col2im(g: ConvGeometry, col: FloatArray, n: number, gi: number, dx: FloatArray): void {
  const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  const P = Ho * Wo;
  let r = 0;
  for (let c = 0; c < Cg; c++) {
    const xc = (n * C + gi * Cg + c) * H * W;
    for (let i = 0; i < KH; i++) {
      const [ohLo, ohHi] = validRange(H, sh, pt, i * dh, Ho);
      for (let j = 0; j < KW; j++, r++) {
        const [owLo, owHi] = validRange(W, sw, pl, j * dw, Wo);
        const row = r * P;
        for (let oh = ohLo; oh < ohHi; oh++) {
          const src = row + oh * Wo;
          const dst = xc + (oh * sh - pt + i * dh) * W - pl + j * dw;
          for (let ow = owLo; ow < owHi; ow++) dx[dst + ow * sw] += col[src + ow];
        }
      }
    }
  }
}

// x: (N, C, H, W), w: (F, C/g, kH, kW), b: (F) | null → y: (N, F, Ho, Wo)
export function conv2dIm2col(g: ConvGeometry, x: FloatArray, w: FloatArray, b: FloatArray | null, y: FloatArray): void {
  const { N, C, H, W, F, KH, KW, groups, Cg, Fg, Ho, Wo } = g;
  const K = Cg * KH * KW;
  const P = Ho * Wo;
  const pointwise = isPointwise(g);
  const col = pointwise ? x : workspaceLike('im2col.col', K * P, x);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < groups; gi++) {
      let colOff = 0;
      if (pointwise) colOff = (n * C + gi * Cg) * H * W;
      else im2col(g, x, n, gi, col);
      gemm(Fg, P, K,
        { data: w, offset: gi * Fg * K, ld: K, trans: false },
        { data: col, offset: colOff, ld: P, trans: false },
        y, (n * F + gi * Fg) * P, P, false);
    }
  }
  if (b !== null) addBias(y, b, N, F, P);
}

// y[n, f, :] += b[f]
export function addBias(y: FloatArray, b: FloatArray, N: number, F: number, P: number): void {
  for (let n = 0; n < N; n++) {
    for (let f = 0; f < F; f++) {
      const bf = b[f];
      const off = (n * F + f) * P;
      for (let p = 0; p < P; p++) y[off + p] += bf;
    }
  }
}

// dy: (N, F, Ho, Wo) → dx: (N, C, H, W) = col2im(W_gᵀ·dy_g), dw: (F, C/g, kH, kW) = Σ_n dy_g·colᵀ, db: (F)
export function conv2dBackwardIm2col(
  g: ConvGeometry, x: FloatArray, w: FloatArray, dy: FloatArray,
  dx: FloatArray | null, dW: FloatArray | null, db: FloatArray | null,
): void {
  const { N, C, H, W, F, KH, KW, groups, Cg, Fg, Ho, Wo } = g;
  const K = Cg * KH * KW;
  const P = Ho * Wo;
  const pointwise = isPointwise(g);
  if (db !== null) biasGradient(g, dy, db);
  if (dW !== null) {
    const col = pointwise ? x : workspaceLike('im2col.col', K * P, x);
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < groups; gi++) {
        let colOff = 0;
        if (pointwise) colOff = (n * C + gi * Cg) * H * W;
        else im2col(g, x, n, gi, col);
        gemm(Fg, K, P,
          { data: dy, offset: (n * F + gi * Fg) * P, ld: P, trans: false },
          { data: col, offset: colOff, ld: P, trans: true },
          dW, gi * Fg * K, K, n > 0);
      }
    }
  }
  if (dx !== null) {
    if (!pointwise) dx.fill(0);
    const dcol = pointwise ? dx : workspaceLike('im2col.dcol', K * P, x);
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < groups; gi++) {
        const dcolOff = pointwise ? (n * C + gi * Cg) * H * W : 0;
        gemm(K, P, Fg,
          { data: w, offset: gi * Fg * K, ld: K, trans: true },
          { data: dy, offset: (n * F + gi * Fg) * P, ld: P, trans: false },
          dcol, dcolOff, P, false);
        if (!pointwise) col2im(g, dcol, n, gi, dx);
      }
    }
  }
}
