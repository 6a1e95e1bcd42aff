// ReLU: y = max(x, 0); dx = dy where y > 0 (PyTorch's threshold_backward on the output).

import { Tensor, allocLike } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/check.js';

export function relu(x: Tensor): Tensor {
  const xd = x.data;
  const y = allocLike(xd, xd.length);
  for (let i = 0; i < xd.length; i++) y[i] = xd[i] > 0 ? xd[i] : 0;
  return new Tensor(y, x.shape);
}

export function reluBackward(dy: Tensor, y: Tensor): Tensor {
  if (dy.size !== y.size) throw new Error(`relu backward: grad_output shape ${fmtShape(dy.shape)} does not match output shape ${fmtShape(y.shape)}`);
  const g = dy.data, yd = y.data;
  const dx = allocLike(g, g.length);
  for (let i = 0; i < g.length; i++) dx[i] = yd[i] > 0 ? g[i] : 0;
  return new Tensor(dx, y.shape);
}
