// Direct convolution: the reference. Plain loops, accumulation in float64, one rounding per output.

import type { FloatArray } from '../tensor/tensor.js';
import type { ConvGeometry } from './conv2d_geometry.js';
import { gradientByHalves, gradientOfHalves, halfStart } from './batch_shards.js';

// x: (N, C, H, W), w: (F, C/g, kH, kW), b: (F) | null → y: (N, F, Ho, Wo)
export function conv2dDirect(g: ConvGeometry, x: FloatArray, w: FloatArray, b: FloatArray | null, y: FloatArray): void {
  const { N, C, H, W, F, KH, KW, Cg, Fg, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  for (let n = 0; n < N; n++) {
    for (let f = 0; f < F; f++) {
      const c0 = Math.floor(f / Fg) * Cg;
      const wf = f * Cg * KH * KW;
      const yOff = (n * F + f) * Ho * Wo;
      const bias = b === null ? 0 : b[f];
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          let acc = bias;
          for (let c = 0; c < Cg; c++) {
            const xc = (n * C + c0 + c) * H * W;
            const wc = wf + c * KH * KW;
            for (let i = 0; i < KH; i++) {
              const ih = oh * sh - pt + i * dh;
              if (ih < 0 || ih >= H) continue;
              for (let j = 0; j < KW; j++) {
                const iw = ow * sw - pl + j * dw;
                if (iw < 0 || iw >= W) continue;
                acc += x[xc + ih * W + iw] * w[wc + i * KW + j];
              }
            }
          }
          y[yOff + oh * Wo + ow] = acc;
        }
      }
    }
  }
}

// dy: (N, F, Ho, Wo) → dx: (N, C, H, W), dw: (F, C/g, kH, kW), db: (F); each null if not wanted.
// Sums are accumulated in float64 scratch and rounded once into the outputs.
export function conv2dBackwardDirect(
  g: ConvGeometry, x: FloatArray, w: FloatArray, dy: FloatArray,
  dx: FloatArray | null, dW: FloatArray | null, db: FloatArray | null,
): void {
  const { N, C, H, W, F, KH, KW, Cg, Fg, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  const dxAcc = dx === null ? null : new Float64Array(dx.length);
  const dwAcc = dW === null ? null : new Float64Array(dW.length);
  // dW by the batch's halves (batch_shards.ts): the first half's sums kept apart at image h
  const h = halfStart(N);
  let dwFirst: Float64Array | null = null;
  for (let n = 0; n < N; n++) {
    if (n === h && dwAcc !== null) {
      dwFirst = dwAcc.slice();
      dwAcc.fill(0);
    }
    for (let f = 0; f < F; f++) {
      const c0 = Math.floor(f / Fg) * Cg;
      const wf = f * Cg * KH * KW;
      const yOff = (n * F + f) * Ho * Wo;
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          const d = dy[yOff + oh * Wo + ow];
          for (let c = 0; c < Cg; c++) {
            const xc = (n * C + c0 + c) * H * W;
            const wc = wf + c * KH * KW;
            for (let i = 0; i < KH; i++) {
              const ih = oh * sh - pt + i * dh;
              if (ih < 0 || ih >= H) continue;
              for (let j = 0; j < KW; j++) {
                const iw = ow * sw - pl + j * dw;
                if (iw < 0 || iw >= W) continue;
                if (dxAcc !== null) dxAcc[xc + ih * W + iw] += d * w[wc + i * KW + j];
                if (dwAcc !== null) dwAcc[wc + i * KW + j] += d * x[xc + ih * W + iw];
              }
            }
          }
        }
      }
    }
  }
  if (dx !== null && dxAcc !== null) dx.set(dxAcc);
  if (dW !== null && dwAcc !== null) gradientOfHalves(dW, dwFirst ?? dwAcc, dwFirst === null ? null : dwAcc);
  if (db !== null) biasGradient(g, dy, db);
}

// db[f] = Σ_{n,oh,ow} dy[n, f, oh, ow], by the batch's halves
export function biasGradient(g: ConvGeometry, dy: FloatArray, db: FloatArray): void {
  const { N, F, Ho, Wo } = g;
  const P = Ho * Wo;
  gradientByHalves(N, db, (n0, n1, out) => {
    for (let f = 0; f < F; f++) {
      let s = 0;
      for (let n = n0; n < n1; n++) {
        const off = (n * F + f) * P;
        for (let p = 0; p < P; p++) s += dy[off + p];
      }
      out[f] = s;
    }
  });
}
