// The logistic sigmoid and SiLU (x·σ(x), YOLO's activation), as PyTorch: NaN in, NaN out.
//   σ(x) = 1 / (1 + e^−x)                    dσ/dx = σ(1 − σ)
//   silu(x) = x·σ(x)                          dsilu/dx = σ·(1 + x·(1 − σ))
// Computed in float64 and rounded once, so float32 results are correctly rounded up to e^x's error.

import { Tensor, allocLike } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/check.js';

function sigma(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

// x: any shape → y: the same shape
export function sigmoid(x: Tensor): Tensor {
  const xd = x.data, y = allocLike(xd, xd.length);
  for (let i = 0; i < xd.length; i++) y[i] = sigma(xd[i]);
  return new Tensor(y, x.shape);
}

// dy, y = σ(x) → dx = dy·y·(1 − y)
export function sigmoidBackward(dy: Tensor, y: Tensor): Tensor {
  sameShape(dy, y, 'sigmoid');
  const g = dy.data, s = y.data, dx = allocLike(g, g.length);
  for (let i = 0; i < g.length; i++) dx[i] = g[i] * s[i] * (1 - s[i]);
  return new Tensor(dx, y.shape);
}

// x: any shape → y: the same shape
export function silu(x: Tensor): Tensor {
  const xd = x.data, y = allocLike(xd, xd.length);
  for (let i = 0; i < xd.length; i++) y[i] = xd[i] * sigma(xd[i]);
  return new Tensor(y, x.shape);
}

// dy, x → dx = dy·σ(x)·(1 + x·(1 − σ(x)))
export function siluBackward(dy: Tensor, x: Tensor): Tensor {
  sameShape(dy, x, 'silu');
  const g = dy.data, xd = x.data, dx = allocLike(g, g.length);
  for (let i = 0; i < g.length; i++) {
    const s = sigma(xd[i]);
    dx[i] = g[i] * s * (1 + xd[i] * (1 - s));
  }
  return new Tensor(dx, x.shape);
}

function sameShape(dy: Tensor, ref: Tensor, op: string): void {
  if (dy.size !== ref.size) throw new Error(`${op} backward: grad_output shape ${fmtShape(dy.shape)} does not match ${fmtShape(ref.shape)}`);
}
