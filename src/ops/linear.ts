// Linear, as torch.nn.functional.linear: y = x·Wᵀ + b.

import { Tensor, allocLike } from '../tensor/tensor.js';
import { expectRank, expectSameDtype, fmtShape } from '../tensor/check.js';
import { gemm } from '../backend/gemm.js';

// x: (N, in), w: (out, in), b: (out) | null → y: (N, out)
export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  expectRank(x, 2, 'linear input');
  expectRank(w, 2, 'linear weight');
  expectSameDtype(x, w, 'linear input', 'linear weight');
  const [N, I] = x.shape;
  const [O, Iw] = w.shape;
  if (I !== Iw) throw new Error(`linear: input shape ${fmtShape(x.shape)} does not match weight shape ${fmtShape(w.shape)} (in_features ${Iw})`);
  if (b !== null && (b.shape.length !== 1 || b.shape[0] !== O)) throw new Error(`linear: bias shape ${fmtShape(b.shape)} does not match ${O} out_features`);
  const y = allocLike(x.data, N * O);
  gemm(N, O, I, { data: x.data, offset: 0, ld: I, trans: false }, { data: w.data, offset: 0, ld: I, trans: true }, y, 0, O, false);
  if (b !== null) {
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) y[n * O + o] += b.data[o];
  }
  return new Tensor(y, [N, O]);
}

// dy: (N, out) → dx: (N, in) = dy·W, dw: (out, in) = dyᵀ·x, db: (out) = Σ_n dy
export function linearBackward(dy: Tensor, x: Tensor, w: Tensor): { dx: Tensor; dw: Tensor; db: Tensor } {
  const [N, I] = x.shape;
  const O = w.shape[0];
  if (dy.shape.length !== 2 || dy.shape[0] !== N || dy.shape[1] !== O) {
    throw new Error(`linear backward: grad_output shape ${fmtShape(dy.shape)} does not match ${fmtShape([N, O])}`);
  }
  const dx = allocLike(x.data, N * I);
  const dw = allocLike(x.data, O * I);
  const db = allocLike(x.data, O);
  gemm(N, I, O, { data: dy.data, offset: 0, ld: O, trans: false }, { data: w.data, offset: 0, ld: I, trans: false }, dx, 0, I, false);
  gemm(O, I, N, { data: dy.data, offset: 0, ld: O, trans: true }, { data: x.data, offset: 0, ld: I, trans: false }, dw, 0, I, false);
  for (let o = 0; o < O; o++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += dy.data[n * O + o];
    db[o] = s;
  }
  return { dx: new Tensor(dx, [N, I]), dw: new Tensor(dw, [O, I]), db: new Tensor(db, [O]) };
}
