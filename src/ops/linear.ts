// Linear, as torch.nn.functional.linear: y = x·Wᵀ + b.

import { type FloatArray, Tensor, allocLike } from '../tensor/tensor.js';
import { expectRank, expectSameDtype, fmtShape } from '../tensor/check.js';
import { type PreparedFilters, filterRows, gemm } from '../backend/gemm.js';
import { workspaceLike } from '../tensor/workspace.js';
import { gradientByHalves, halfStart } from './batch_shards.js';

/** Whether linear() multiplies by W as the GEMM's A operand (where prepared filters serve), for a batch of N and O out_features. */
export function linearTakesW(N: number, O: number): boolean {
  return N < O;
}

// x: (N, in), w: (out, in), b: (out) | null → y: (N, out)
// y = x·Wᵀ, or yᵀ = W·xᵀ when the batch is the smaller side: the GEMM packs a transposed operand
// element by element in TypeScript (~2.3 ns an element) and a row-major one a row at a time, so the
// smaller of x and W is the one to take transposed (A0's classifier, 1000×1280, at batch 1: 3 ms of
// a 41 ms forward, re-packed every call). Each element is the same sum of the same products in the
// same order either way (a·b = b·a): the same bits.
export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  return linearPrepared(x, w, b);
}

// linear, with W prepared for the GEMM (a 1×1 conv's im2col filters: PreparedConv), used where W is
// the A operand (linearTakesW): the Linear module's eval mode
export function linearPrepared(x: Tensor, w: Tensor, b: Tensor | null, prepared?: PreparedFilters): Tensor {
  expectRank(x, 2, 'linear input');
  expectRank(w, 2, 'linear weight');
  expectSameDtype(x, w, 'linear input', 'linear weight');
  const [N, I] = x.shape;
  const [O, Iw] = w.shape;
  if (I !== Iw) throw new Error(`linear: input shape ${fmtShape(x.shape)} does not match weight shape ${fmtShape(w.shape)} (in_features ${Iw})`);
  if (b !== null && (b.shape.length !== 1 || b.shape[0] !== O)) throw new Error(`linear: bias shape ${fmtShape(b.shape)} does not match ${O} out_features`);
  const y = allocLike(x.data, N * O);
  if (linearTakesW(N, O)) {
    const yT = workspaceLike('linear.yT', O * N, x.data);
    gemm(O, N, I, { data: w.data, offset: 0, ld: I, trans: false }, { data: x.data, offset: 0, ld: I, trans: true }, yT, 0, N, false, prepared === undefined ? undefined : filterRows(prepared, 0));
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) y[n * O + o] = yT[o * N + n] + (b === null ? 0 : b.data[o]);
  } else {
    gemm(N, O, I, { data: x.data, offset: 0, ld: I, trans: false }, { data: w.data, offset: 0, ld: I, trans: true }, y, 0, O, false);
    if (b !== null) {
      for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) y[n * O + o] += b.data[o];
    }
  }
  return new Tensor(y, [N, O]);
}

// dy: (N, out) → dx: (N, in) = dy·W, dw: (out, in) = dyᵀ·x, db: (out) = Σ_n dy
// dwInto: where dw is written (out·in of x's type; a cleared gradient), else a new array
export function linearBackward(dy: Tensor, x: Tensor, w: Tensor, dwInto?: FloatArray): { dx: Tensor; dw: Tensor; db: Tensor } {
  const [N, I] = x.shape;
  const O = w.shape[0];
  if (dy.shape.length !== 2 || dy.shape[0] !== N || dy.shape[1] !== O) {
    throw new Error(`linear backward: grad_output shape ${fmtShape(dy.shape)} does not match ${fmtShape([N, O])}`);
  }
  if (dwInto !== undefined && (dwInto.length !== O * I || (dwInto instanceof Float64Array) !== (x.data instanceof Float64Array))) {
    throw new Error(`linear backward: dwInto holds ${dwInto.length} values, expected ${O * I} ${x.dtype}`);
  }
  const dx = allocLike(x.data, N * I);
  const dw = dwInto ?? allocLike(x.data, O * I);
  const db = allocLike(x.data, O);
  gemm(N, I, O, { data: dy.data, offset: 0, ld: O, trans: false }, { data: w.data, offset: 0, ld: I, trans: false }, dx, 0, I, false);
  // dw and db by the batch's halves (batch_shards.ts): images [0, h) and [h, N) each summed, then added
  gemm(O, I, N, { data: dy.data, offset: 0, ld: O, trans: true }, { data: x.data, offset: 0, ld: I, trans: false }, dw, 0, I, false, undefined, undefined, undefined, halfStart(N));
  gradientByHalves(N, db, (n0, n1, out) => {
    for (let o = 0; o < O; o++) {
      let s = 0;
      for (let n = n0; n < n1; n++) s += dy.data[n * O + o];
      out[o] = s;
    }
  });
  return { dx: new Tensor(dx, [N, I]), dw: new Tensor(dw, [O, I]), db: new Tensor(db, [O]) };
}
