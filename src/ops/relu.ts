// ReLU as PyTorch: y = 0 where x < 0, else x (so NaN stays NaN and −0 stays −0);
// dx = 0 where y ≤ 0, else dy (threshold_backward: a NaN output passes its gradient).

import { Tensor, allocLike } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/check.js';

export function relu(x: Tensor): Tensor {
  const xd = x.data;
  const y = allocLike(xd, xd.length);
  for (let i = 0; i < xd.length; i++) y[i] = xd[i] < 0 ? 0 : xd[i];
  return new Tensor(y, x.shape);
}

export function reluBackward(dy: Tensor, y: Tensor): Tensor {
  if (dy.size !== y.size) throw new Error(`relu backward: grad_output shape ${fmtShape(dy.shape)} does not match output shape ${fmtShape(y.shape)}`);
  const g = dy.data, yd = y.data;
  const dx = allocLike(g, g.length);
  for (let i = 0; i < g.length; i++) dx[i] = yd[i] <= 0 ? 0 : g[i];
  return new Tensor(dx, y.shape);
}
