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
// Both lie in [0, O] (a tap that never lands inside the input gives an empty range at O).
function validRange(L: number, s: number, p: number, t: number, O: number): [number, number] {
  const lo = Math.min(O, Math.max(0, Math.ceil((p - t) / s)));
  const hi = Math.min(O, Math.floor((L - 1 + p - t) / s) + 1);
  return [lo, Math.max(lo, hi)];
}

// x: (N, C, H, W) image n, group gi → col rows r = (c, i, j), columns colOff + (oh·Wo + ow), row stride ld
function im2col(g: ConvGeometry, x: FloatArray, n: number, gi: number, col: FloatArray, colOff: number, ld: number): void {
  const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  const P = Ho * Wo;
  let r = 0;
  for (let c = 0; c < Cg; c++) {
    const xc = (n * C + gi * Cg + c) * H * W;
    for (let i = 0; i < KH; i++) {
      const [ohLo, ohHi] = validRange(H, sh, pt, i * dh, Ho);
      for (let j = 0; j < KW; j++, r++) {
        const [owLo, owHi] = validRange(W, sw, pl, j * dw, Wo);
        const row = r * ld + colOff;
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

// col (rows r = (c, i, j), columns colOff + p, row stride ld) → dx image n, group gi (+=)
function col2im(g: ConvGeometry, col: FloatArray, colOff: number, ld: number, n: number, gi: number, dx: FloatArray): void {
  const { C, H, W, KH, KW, Cg, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  let r = 0;
  for (let c = 0; c < Cg; c++) {
    const xc = (n * C + gi * Cg + c) * H * W;
    for (let i = 0; i < KH; i++) {
      const [ohLo, ohHi] = validRange(H, sh, pt, i * dh, Ho);
      for (let j = 0; j < KW; j++, r++) {
        const [owLo, owHi] = validRange(W, sw, pl, j * dw, Wo);
        const row = r * ld + colOff;
        for (let oh = ohLo; oh < ohHi; oh++) {
          const src = row + oh * Wo;
          const dst = xc + (oh * sh - pt + i * dh) * W - pl + j * dw;
          for (let ow = owLo; ow < owHi; ow++) dx[dst + ow * sw] += col[src + ow];
        }
      }
    }
  }
}

/** Elements of the batched col matrix per chunk: small feature maps are batched over images so the
 * GEMM is wide enough to amortise packing the weights; large ones go one image at a time. */
const COL_LIMIT = 1 << 21;

function imagesPerChunk(g: ConvGeometry, K: number, P: number): number {
  return Math.max(1, Math.min(g.N, Math.floor(COL_LIMIT / (K * P))));
}

// A 1×1 stride-1 unpadded conv reads its input in place when the map is large enough to fill a GEMM.
function readsInPlace(g: ConvGeometry, P: number): boolean {
  return isPointwise(g) && P >= 256;
}

// x: (N, C, H, W), w: (F, C/g, kH, kW), b: (F) | null → y: (N, F, Ho, Wo)
// Per chunk of nb images and group: Y_g (F/g × nb·P) = W_g (F/g × K) · col (K × nb·P).
// relu: apply ReLU in the bias pass (the deploy epilogue: one pass over the output instead of two)
export function conv2dIm2col(g: ConvGeometry, x: FloatArray, w: FloatArray, b: FloatArray | null, y: FloatArray, relu = false): void {
  const { N, C, H, W, F, KH, KW, groups, Cg, Fg, Ho, Wo } = g;
  const K = Cg * KH * KW;
  const P = Ho * Wo;
  if (readsInPlace(g, P)) {
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < groups; gi++) {
        gemm(Fg, P, K, { data: w, offset: gi * Fg * K, ld: K, trans: false },
          { data: x, offset: (n * C + gi * Cg) * H * W, ld: P, trans: false }, y, (n * F + gi * Fg) * P, P, false);
      }
    }
  } else {
    const chunk = imagesPerChunk(g, K, P);
    const col = workspaceLike('im2col.col', K * chunk * P, x);
    const yb = chunk > 1 ? workspaceLike('im2col.y', Fg * chunk * P, x) : y;
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const nb = Math.min(chunk, N - n0);
      const L = nb * P;
      for (let gi = 0; gi < groups; gi++) {
        for (let i = 0; i < nb; i++) im2col(g, x, n0 + i, gi, col, i * P, L);
        const direct = nb === 1;
        gemm(Fg, L, K, { data: w, offset: gi * Fg * K, ld: K, trans: false }, { data: col, offset: 0, ld: L, trans: false },
          direct ? y : yb, direct ? (n0 * F + gi * Fg) * P : 0, L, false);
        if (!direct) scatterRows(yb, y, Fg, nb, P, n0, F, gi * Fg);
      }
    }
  }
  if (b !== null || relu) biasRelu(y, b, N, F, P, relu);
}

// buf (Fg × nb·P) → y[n0 + i, f0 + f, p]
function scatterRows(buf: FloatArray, y: FloatArray, Fg: number, nb: number, P: number, n0: number, F: number, f0: number): void {
  for (let f = 0; f < Fg; f++) {
    for (let i = 0; i < nb; i++) {
      const src = f * nb * P + i * P;
      const dst = ((n0 + i) * F + f0 + f) * P;
      for (let p = 0; p < P; p++) y[dst + p] = buf[src + p];
    }
  }
}

// dy[n0 + i, f0 + f, p] → buf (Fg × nb·P)
function gatherRows(dy: FloatArray, buf: FloatArray, Fg: number, nb: number, P: number, n0: number, F: number, f0: number): void {
  for (let f = 0; f < Fg; f++) {
    for (let i = 0; i < nb; i++) {
      const dst = f * nb * P + i * P;
      const src = ((n0 + i) * F + f0 + f) * P;
      for (let p = 0; p < P; p++) buf[dst + p] = dy[src + p];
    }
  }
}

// y[n, f, :] += b[f], then (relu) y = 0 where y < 0. The clamp reads the stored value, so the bits
// are those of a separate ReLU pass (NaN stays NaN, −0 stays −0).
export function biasRelu(y: FloatArray, b: FloatArray | null, N: number, F: number, P: number, relu: boolean): void {
  for (let n = 0; n < N; n++) {
    for (let f = 0; f < F; f++) {
      const off = (n * F + f) * P, end = off + P;
      if (b === null) {
        for (let p = off; p < end; p++) if (y[p] < 0) y[p] = 0; // relu only (no add: −0 stays −0)
      } else if (!relu) {
        const bf = b[f];
        for (let p = off; p < end; p++) y[p] += bf;
      } else {
        const bf = b[f];
        for (let p = off; p < end; p++) {
          y[p] += bf;
          if (y[p] < 0) y[p] = 0;
        }
      }
    }
  }
}

// dy: (N, F, Ho, Wo) → dx: (N, C, H, W) = col2im(W_gᵀ·dy_g), dw: (F, C/g, kH, kW) = Σ dy_g·colᵀ, db: (F)
export function conv2dBackwardIm2col(
  g: ConvGeometry, x: FloatArray, w: FloatArray, dy: FloatArray,
  dx: FloatArray | null, dW: FloatArray | null, db: FloatArray | null,
): void {
  const { N, C, H, W, F, KH, KW, groups, Cg, Fg, Ho, Wo } = g;
  const K = Cg * KH * KW;
  const P = Ho * Wo;
  if (db !== null) biasGradient(g, dy, db);
  if (readsInPlace(g, P)) {
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < groups; gi++) {
        const dyRef = { data: dy, offset: (n * F + gi * Fg) * P, ld: P, trans: false };
        const xOff = (n * C + gi * Cg) * H * W;
        if (dW !== null) gemm(Fg, K, P, dyRef, { data: x, offset: xOff, ld: P, trans: true }, dW, gi * Fg * K, K, n > 0);
        if (dx !== null) gemm(K, P, Fg, { data: w, offset: gi * Fg * K, ld: K, trans: true }, dyRef, dx, xOff, P, false);
      }
    }
    return;
  }
  if (dx !== null) dx.fill(0);
  const chunk = imagesPerChunk(g, K, P);
  const col = workspaceLike('im2col.col', K * chunk * P, x);
  const dyb = workspaceLike('im2col.dy', Fg * chunk * P, x);
  for (let n0 = 0; n0 < N; n0 += chunk) {
    const nb = Math.min(chunk, N - n0);
    const L = nb * P;
    for (let gi = 0; gi < groups; gi++) {
      let dyRef = { data: dy, offset: (n0 * F + gi * Fg) * P, ld: L, trans: false };
      if (nb > 1) {
        gatherRows(dy, dyb, Fg, nb, P, n0, F, gi * Fg);
        dyRef = { data: dyb, offset: 0, ld: L, trans: false };
      }
      if (dW !== null) {
        for (let i = 0; i < nb; i++) im2col(g, x, n0 + i, gi, col, i * P, L);
        gemm(Fg, K, L, dyRef, { data: col, offset: 0, ld: L, trans: true }, dW, gi * Fg * K, K, n0 > 0);
      }
      if (dx !== null) {
        // dcol reuses the col workspace: dW above has consumed it
        gemm(K, L, Fg, { data: w, offset: gi * Fg * K, ld: K, trans: true }, dyRef, col, 0, L, false);
        for (let i = 0; i < nb; i++) col2im(g, col, i * P, L, n0 + i, gi, dx);
      }
    }
  }
}
