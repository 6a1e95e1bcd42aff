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

// dy: (N, C) → dx: (N, C, H, W) = dy / (H·W) broadcast
export function globalAvgPoolBackward(dy: Tensor, inputShape: readonly number[]): Tensor {
  const [N, C, H, W] = inputShape;
  if (dy.shape.length !== 2 || dy.shape[0] !== N || dy.shape[1] !== C) {
    throw new Error(`global_avg_pool backward: grad_output shape ${fmtShape(dy.shape)} does not match ${fmtShape([N, C])}`);
  }
  const P = H * W;
  const dx = allocLike(dy.data, N * C * P);
  for (let nc = 0; nc < N * C; nc++) {
    const v = dy.data[nc] / P;
    dx.fill(v, nc * P, (nc + 1) * P);
  }
  return new Tensor(dx, inputShape);
}
