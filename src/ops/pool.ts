// Global average pooling, as AdaptiveAvgPool2d(1) followed by flatten: y[n, c] = mean_{h,w} x[n, c, h, w].

import { Tensor, allocLike } from '../tensor/tensor.js';
import { expectRank, fmtShape } from '../tensor/check.js';

// x: (N, C, H, W) → y: (N, C)
export function globalAvgPool(x: Tensor): Tensor {
  expectRank(x, 4, 'global_avg_pool input');
  const [N, C, H, W] = x.shape;
  const P = H * W;
  if (P === 0) throw new Error(`global_avg_pool: input shape ${fmtShape(x.shape)} has no spatial extent`);
  const xd = x.data;
  const y = allocLike(xd, N * C);
  for (let nc = 0; nc < N * C; nc++) {
    let s = 0;
    const off = nc * P;
    for (let i = 0; i < P; i++) s += xd[off + i];
    y[nc] = s / P;
  }
  return new Tensor(y, [N, C]);
}

// dy: (N, C) → dx: (N, C, H, W) = dy / (H·W) broadcast. A map under 64 floats by a loop: a fill
// costs ~20 ns however short (the demo's 2×2 maps: 4,096 of them a step).
export function globalAvgPoolBackward(dy: Tensor, inputShape: readonly number[]): Tensor {
  const [N, C, H, W] = inputShape;
  if (dy.shape.length !== 2 || dy.shape[0] !== N || dy.shape[1] !== C) {
    throw new Error(`global_avg_pool backward: grad_output shape ${fmtShape(dy.shape)} does not match ${fmtShape([N, C])}`);
  }
  const P = H * W, g = dy.data;
  const dx = allocLike(g, N * C * P);
  for (let nc = 0, o = 0; nc < N * C; nc++, o += P) {
    const v = g[nc] / P;
    if (P >= 64) dx.fill(v, o, o + P);
    else for (let i = 0; i < P; i++) dx[o + i] = v;
  }
  return new Tensor(dx, inputShape);
}

/**
 * AvgPool2d(k, stride, padding) as PyTorch with count_include_pad = True and ceil_mode = False:
 * every window divides by k², zeros of the padding included; so it is the conv with the kernel
 * 1/k² on each channel's own input (see avgPoolKernel), which is what lets DBB fuse it.
 */
export interface AvgPoolOptions {
  kernel: number;
  stride: number;
  padding: number;
}

function avgPoolShape(shape: readonly number[], o: AvgPoolOptions): [number, number] {
  const [, , H, W] = shape;
  if (!(o.padding * 2 <= o.kernel)) throw new Error(`avg_pool2d: padding ${o.padding} should be at most half of kernel ${o.kernel}`);
  const Ho = Math.floor((H + 2 * o.padding - o.kernel) / o.stride) + 1;
  const Wo = Math.floor((W + 2 * o.padding - o.kernel) / o.stride) + 1;
  if (Ho < 1 || Wo < 1) throw new Error(`avg_pool2d: input ${fmtShape(shape)} is smaller than the ${o.kernel}×${o.kernel} window (padding ${o.padding})`);
  return [Ho, Wo];
}

// x: (N, C, H, W) → y: (N, C, Ho, Wo)
export function avgPool2d(x: Tensor, o: AvgPoolOptions): Tensor {
  expectRank(x, 4, 'avg_pool2d input');
  const [N, C, H, W] = x.shape;
  const [Ho, Wo] = avgPoolShape(x.shape, o);
  const { kernel: k, stride: s, padding: p } = o;
  const xd = x.data, y = allocLike(xd, N * C * Ho * Wo);
  const inv = 1 / (k * k);
  for (let nc = 0; nc < N * C; nc++) {
    const xo = nc * H * W, yo = nc * Ho * Wo;
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        let sum = 0;
        for (let i = 0; i < k; i++) {
          const ih = oh * s - p + i;
          if (ih < 0 || ih >= H) continue;
          for (let j = 0; j < k; j++) {
            const iw = ow * s - p + j;
            if (iw >= 0 && iw < W) sum += xd[xo + ih * W + iw];
          }
        }
        y[yo + oh * Wo + ow] = sum * inv;
      }
    }
  }
  return new Tensor(y, [N, C, Ho, Wo]);
}

// dy: (N, C, Ho, Wo) → dx: (N, C, H, W): each window's gradient spread over its taps, / k²
export function avgPool2dBackward(dy: Tensor, inputShape: readonly number[], o: AvgPoolOptions): Tensor {
  const [N, C, H, W] = inputShape;
  const [Ho, Wo] = avgPoolShape(inputShape, o);
  if (dy.size !== N * C * Ho * Wo) throw new Error(`avg_pool2d backward: grad_output shape ${fmtShape(dy.shape)} does not match ${fmtShape([N, C, Ho, Wo])}`);
  const { kernel: k, stride: s, padding: p } = o;
  const g = dy.data, dx = allocLike(g, N * C * H * W);
  const inv = 1 / (k * k);
  for (let nc = 0; nc < N * C; nc++) {
    const xo = nc * H * W, yo = nc * Ho * Wo;
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        const v = g[yo + oh * Wo + ow] * inv;
        for (let i = 0; i < k; i++) {
          const ih = oh * s - p + i;
          if (ih < 0 || ih >= H) continue;
          for (let j = 0; j < k; j++) {
            const iw = ow * s - p + j;
            if (iw >= 0 && iw < W) dx[xo + ih * W + iw] += v;
          }
        }
      }
    }
  }
  return new Tensor(dx, inputShape);
}
