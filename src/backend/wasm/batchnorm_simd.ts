// BatchNorm2d's passes over float32 (N, C, P) data on WebAssembly SIMD. The statistics are the
// TypeScript passes' in src/ops/batchnorm.ts bit for bit: the same float64 operations in the same
// order (a float64 sum per channel). The element-wise passes (normalize, the branch sum, the input
// gradient) run in float32, as PyTorch's CPU kernels do: their constants rounded once per channel
// from the float64 ones, each operation rounded; within a derived bound of the TypeScript passes'
// float64 values, rounded once (test/backend/wasm.test.ts).
//
// Sums run four channels per loop in the two lanes of two f64x2 accumulators, each lane adding its
// channel's terms in (n, i) order; element-wise passes run four elements of one channel per loop and
// the last P mod 4 elements of a plane one at a time.
// Addresses are bytes; float64 tables are 16-byte aligned.

import { Code, I32, V128, type FunctionDef } from './emit.js';

// The (n, i) sweep of a sum over the planes of four channels: from base (channel 4q of image 0), b0 …
// b3 (locals) hold the four channels' planes of image n, i the byte offset in them; `body` adds the
// terms at (n, i), images in order, each plane in order, taking its inputs through `pair(input, k)`:
// an f64x2 on the stack of channels 2k and 2k + 1 (k = 0, 1) of input `input` at (n, i), promoted
// exactly (input j lies `shifts[j]` bytes, a local, from the first, or null for none). While four
// elements are left in the plane, each channel's four are loaded as one vector (into v[j][0 … 3]),
// two channels' vectors interleaved into (p0, q0, p1, q1) and (p2, q2, p3, q3) (unpcklps and unpckhps
// on x86), and each pair promoted from one of them, its upper half moved down for odd elements; the
// last P mod 4 elements, two lane loads a pair. Against lane loads throughout, the demo's sums a step
// 111 → 84 µs, squares 144 → 121, gradient sums 257 → 211 (an arbitrary two-input shuffle per pair
// instead was slower than the lane loads: 136, 163, 290). The same terms in the same order.
function quadSweep(
  c: Code, r: { base: number; N: number; pBytes: number; imageBytes: number; planeBytes: number; n: number; i: number; b: number[] },
  shifts: (number | null)[], v: number[][], body: (pair: (input: number, k: number) => void) => void,
): void {
  const { i } = r;
  const [b0, b1, b2, b3] = r.b;
  const at = (input: number, ch: number): void => {
    c.get(r.b[ch]).get(i).i32Add();
    const shift = shifts[input];
    if (shift !== null) c.get(shift).i32Add();
  };
  c.get(r.base).set(b0).get(r.N).set(r.n);
  c.loop(); // over images
  c.get(b0).get(r.planeBytes).i32Add().tee(b1).get(r.planeBytes).i32Add().tee(b2).get(r.planeBytes).i32Add().set(b3);
  c.i32(0).set(i);
  c.block().loop(); // four elements at a time while i + 16 ≤ pBytes
  c.get(r.pBytes).get(i).i32(16).i32Add().i32LtU().brIf(1);
  // per input and pair of channels (p, q): lo = (p0, q0, p1, q1), hi = (p2, q2, p3, q3), two interleaves
  shifts.forEach((_, input) => {
    for (let ch = 0; ch < 4; ch++) { at(input, ch); c.v128Load(0).set(v[input][ch]); }
    for (let k = 0; k < 2; k++) {
      const [p, q] = [v[input][2 * k], v[input][2 * k + 1]];
      c.get(p).get(q).f32x4Shuffle([0, 4, 1, 5]).get(p).get(q).f32x4Shuffle([2, 6, 3, 7]).set(q).set(p);
    }
  });
  for (let e = 0; e < 4; e++) {
    body((input, k) => {
      c.get(v[input][2 * k + (e >> 1)]);
      if (e & 1) c.get(v[input][2 * k + (e >> 1)]).f32x4HighToLow();
      c.f64x2PromoteLowF32x4();
    });
  }
  c.get(i).i32(16).i32Add().set(i);
  c.br(0);
  c.end().end();
  c.block().loop(); // the rest, one element at a time
  c.get(i).get(r.pBytes).i32LtU().i32Eqz().brIf(1);
  body((input, k) => {
    at(input, 2 * k + 1);
    at(input, 2 * k);
    c.v128Zero().v128Load32Lane(0).v128Load32Lane(1).f64x2PromoteLowF32x4();
  });
  c.get(i).i32(4).i32Add().set(i);
  c.br(0);
  c.end().end();
  c.get(b0).get(r.imageBytes).i32Add().set(b0);
  c.get(r.n).i32(1).i32Sub().tee(r.n).brIf(0);
  c.end();
}

// The sweep of an element-wise pass over the planes of (N, C, P) data, the byte offset p running
// through all of them: per plane, `perChannel` (the channel's constants, from table + c·tableStride
// in t), then `four` for each four elements while they fill a vector and `one` for each of the rest
// (p the element's offset; end, the plane's end).
function planeSweep(
  c: Code, r: { N: number; C: number; pBytes: number; table: number; tableStride: number; n: number; ch: number; p: number; end: number; t: number },
  perChannel: () => void, four: () => void, one: () => void,
): void {
  const { p, end } = r;
  c.i32(0).set(p);
  c.get(r.N).set(r.n);
  c.loop(); // over images
  c.get(r.table).set(r.t).get(r.C).set(r.ch);
  c.loop(); // over channels
  perChannel();
  c.get(p).get(r.pBytes).i32Add().set(end);
  c.block().loop(); // four elements at a time while p + 16 ≤ end
  c.get(end).get(p).i32(16).i32Add().i32LtU().brIf(1);
  four();
  c.get(p).i32(16).i32Add().set(p);
  c.br(0);
  c.end().end();
  c.block().loop(); // the rest, one at a time
  c.get(p).get(end).i32LtU().i32Eqz().brIf(1);
  one();
  c.get(p).i32(4).i32Add().set(p);
  c.br(0);
  c.end().end();
  c.get(r.t).i32(r.tableStride).i32Add().set(r.t);
  c.get(r.ch).i32(1).i32Sub().tee(r.ch).brIf(0);
  c.end();
  c.get(r.n).i32(1).i32Sub().tee(r.n).brIf(0);
  c.end();
}

/**
 * bnSums(x, quads, N, pBytes, imageBytes, planeBytes, out, mean): for channels 4q … 4q + 3 of each
 * quad q (planes planeBytes apart from x + 4q·planeBytes; images imageBytes apart; pBytes = 4P),
 * out[4q + k] = Σ_n Σ_i x (squares: Σ (x − mean[4q + k])²), float64. The caller leaves readable
 * memory after the last channel when C is not a multiple of 4 (those lanes are not used).
 */
export function bnSumsDef(squares: boolean): FunctionDef {
  const [x, quads, N, pBytes, imageBytes, planeBytes, out, mean] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [n, i, b0, b1, b2, b3] = [8, 9, 10, 11, 12, 13];
  const [a01, a23, m01, m23, d] = [14, 15, 16, 17, 18];
  const v = [[19, 20, 21, 22]];
  const c = new Code();
  c.loop(); // over quads of channels
  c.v128Zero().set(a01).v128Zero().set(a23);
  if (squares) c.get(mean).v128Load(0).set(m01).get(mean).v128Load(16).set(m23);
  quadSweep(c, { base: x, N, pBytes, imageBytes, planeBytes, n, i, b: [b0, b1, b2, b3] }, [null], v, (pair) => {
    for (const [k, acc, m] of [[0, a01, m01], [1, a23, m23]]) {
      c.get(acc);
      pair(0, k);
      if (squares) c.get(m).f64x2Sub().tee(d).get(d).f64x2Mul();
      c.f64x2Add().set(acc);
    }
  });
  c.get(out).get(a01).v128Store(0).get(out).get(a23).v128Store(16);
  c.get(x).get(planeBytes).i32(4).i32Mul().i32Add().set(x);
  c.get(out).i32(32).i32Add().set(out);
  c.get(mean).i32(32).i32Add().set(mean);
  c.get(quads).i32(1).i32Sub().tee(quads).brIf(0);
  c.end();
  return { name: squares ? 'bnSquares' : 'bnSums', params: new Array<number>(8).fill(I32), locals: [...new Array<number>(6).fill(I32), ...new Array<number>(9).fill(V128)], body: c };
}

// An element-wise pass over the planes of (N, C, P) float32 data, in float32 arithmetic as PyTorch's
// CPU kernels do it: per channel, constants computed from the float64 table at t and rounded once
// to float32 (once per plane), then four elements of the plane per loop and each of the last P mod 4
// in lane 0 of a vector, every lane through the same operations (an element's value does not depend
// on where it lies). `inputs` are the planes read, at base + p (p the element's byte offset). A pass
// in float64 promoted each half of a vector, did twice the vector operations and demoted the result
// (the demo's input gradients: 260 → 115 µs a step).
interface ElementwisePass {
  name: string;
  inputs: number;
  tableStride: number;
  /** per channel, each pushes one constant as an f64 (from the table at local t) */
  constants: ((c: Code, t: number) => void)[];
  /** v: f32x4 locals holding the inputs, k: the constants splatted → an f32x4 on the stack */
  four: (c: Code, v: number[], k: number[]) => void;
}

// Each constant (an f64 from the table at local t) rounded to float32 and splatted into its local
function splatConstants(c: Code, t: number, constants: ((c: Code, t: number) => void)[], into: number[]): void {
  constants.forEach((constant, k) => {
    constant(c, t);
    c.f32DemoteF64().f32x4Splat().set(into[k]);
  });
}

// params: inputs' bases…, out, N, C, pBytes, table
function elementwiseDef(pass: ElementwisePass): FunctionDef {
  const I = pass.inputs, K = pass.constants.length;
  const inputs = Array.from({ length: I }, (_, j) => j);
  const [out, N, C, pBytes, table] = [I, I + 1, I + 2, I + 3, I + 4];
  let l = I + 5;
  const [n, ch, p, end, t] = [l++, l++, l++, l++, l++];
  const kv = Array.from({ length: K }, () => l++), v = Array.from({ length: I }, () => l++); // v128
  const c = new Code();
  planeSweep(c, { N, C, pBytes, table, tableStride: pass.tableStride, n, ch, p, end, t }, () => splatConstants(c, t, pass.constants, kv), () => {
    c.get(out).get(p).i32Add();
    for (let j = 0; j < I; j++) c.get(inputs[j]).get(p).i32Add().v128Load(0).set(v[j]);
    pass.four(c, v, kv);
    c.v128Store(0);
  }, () => {
    c.get(out).get(p).i32Add();
    for (let j = 0; j < I; j++) c.get(inputs[j]).get(p).i32Add().v128Load32Zero(0).set(v[j]);
    pass.four(c, v, kv);
    c.v128Store32Lane(0);
  });
  return {
    name: pass.name, params: new Array<number>(I + 5).fill(I32),
    locals: [I32, I32, I32, I32, I32, ...new Array<number>(K + I).fill(V128)],
    body: c,
  };
}

// y = x·S + T in float32, (S, T) = scale and shift rounded (table[2c], table[2c + 1]): PyTorch's
// x·α + β of its CPU batch_norm
const scaleShift = [(c: Code, t: number) => void c.get(t).f64Load(0), (c: Code, t: number) => void c.get(t).f64Load(8)];
const normalizeFour = (c: Code, x: number, [S, T]: number[]): void => { c.get(x).get(S).f32x4Mul().get(T).f32x4Add(); };

/** bnNormalize(x, y, N, C, pBytes, table): y = x·S + T in float32, (S, T) = (scale, shift) = table[2c], table[2c + 1] rounded. */
export function bnNormalizeDef(): FunctionDef {
  return elementwiseDef({ name: 'bnNormalize', inputs: 1, tableStride: 16, constants: scaleShift, four: (c, [x], k) => normalizeFour(c, x, k) });
}

/**
 * bnGradInput(dy, x, dx, N, C, pBytes, table): training-mode BN backward's input gradient in float32,
 * dx = K·((dy − A) − (x − Mu)·B), the TypeScript expression's order of operations with (K, A, Mu)
 * = (k, a, μ) and B = invStd·b (float64) rounded, (k, a, μ, invStd, b) = table[8c … 8c + 4] (k =
 * γ·invStd, a = Σdy/M, b = Σdy·x̂/M): as PyTorch's CPU kernel, (dy − mean_dy − (x − mean)·k')·w.
 */
export function bnGradInputDef(): FunctionDef {
  return elementwiseDef({
    name: 'bnGradInput', inputs: 2, tableStride: 64,
    constants: [
      (c, t) => void c.get(t).f64Load(0),
      (c, t) => void c.get(t).f64Load(8),
      (c, t) => void c.get(t).f64Load(16),
      (c, t) => void c.get(t).f64Load(24).get(t).f64Load(32).f64Mul(),
    ],
    four: (c, [dy, x], [K, A, Mu, B]) => {
      c.get(K).get(dy).get(A).f32x4Sub();
      c.get(x).get(Mu).f32x4Sub().get(B).f32x4Mul();
      c.f32x4Sub().f32x4Mul();
    },
  });
}

/**
 * bnGradSums(dy, x, quads, N, pBytes, imageBytes, planeBytes, table, out): for channels 4q … 4q + 3,
 * with (μ, invStd) from table (64 bytes per quad: μ ×4, invStd ×4), out (64 bytes per quad) gets
 * Σ dy ×4 then Σ (dy·(x − μ))·invStd ×4, float64, each channel's terms in (n, i) order. x lies at
 * the same offsets from its base as dy.
 */
export function bnGradSumsDef(): FunctionDef {
  const [dy, x, quads, N, pBytes, imageBytes, planeBytes, table, out] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [n, i, b0, b1, b2, b3, delta] = [9, 10, 11, 12, 13, 14, 15];
  const [s01, s23, g01, g23, m01, m23, is01, is23, d] = [16, 17, 18, 19, 20, 21, 22, 23, 24];
  const v = [[25, 26, 27, 28], [29, 30, 31, 32]]; // dy's four planes, x's
  const c = new Code();
  c.get(x).get(dy).i32Sub().set(delta);
  c.loop(); // over quads of channels
  c.v128Zero().set(s01).v128Zero().set(s23).v128Zero().set(g01).v128Zero().set(g23);
  c.get(table).v128Load(0).set(m01).get(table).v128Load(16).set(m23);
  c.get(table).v128Load(32).set(is01).get(table).v128Load(48).set(is23);
  quadSweep(c, { base: dy, N, pBytes, imageBytes, planeBytes, n, i, b: [b0, b1, b2, b3] }, [null, delta], v, (pair) => {
    for (const [k, sum, grad, m, is] of [[0, s01, g01, m01, is01], [1, s23, g23, m23, is23]]) {
      pair(0, k);
      c.tee(d).get(sum).f64x2Add().set(sum);
      c.get(grad).get(d);
      pair(1, k);
      c.get(m).f64x2Sub().f64x2Mul().get(is).f64x2Mul().f64x2Add().set(grad);
    }
  });
  c.get(out).get(s01).v128Store(0).get(out).get(s23).v128Store(16);
  c.get(out).get(g01).v128Store(32).get(out).get(g23).v128Store(48);
  c.get(dy).get(planeBytes).i32(4).i32Mul().i32Add().set(dy);
  c.get(table).i32(64).i32Add().set(table);
  c.get(out).i32(64).i32Add().set(out);
  c.get(quads).i32(1).i32Sub().tee(quads).brIf(0);
  c.end();
  return { name: 'bnGradSums', params: new Array<number>(9).fill(I32), locals: [...new Array<number>(7).fill(I32), ...new Array<number>(17).fill(V128)], body: c };
}

/**
 * bnAccumulate(x, out, N, C, pBytes, table): the branch sum of a block whose branches end in BNs,
 * one branch at a time: y = x·S + T (float32, as bnNormalize), then out = y (`first`) or out + y,
 * and `relu`: out = out < 0 ? 0 : out (f32x4.pmax keeps NaN and −0) after the last branch. The
 * same bits as the BN outputs bnNormalize writes, summed in branch order, then ReLU.
 */
export function bnAccumulateDef(first: boolean, relu: boolean): FunctionDef {
  const [x, out, N, C, pBytes, table] = [0, 1, 2, 3, 4, 5];
  const [n, ch, p, end, t] = [6, 7, 8, 9, 10];
  const [S, T, v, zero] = [11, 12, 13, 14];
  const c = new Code();
  // y of the x in v, (+ out at p) → ReLU, then stored by `store`
  const finish = (store: () => void, load: () => void): void => {
    normalizeFour(c, v, [S, T]);
    if (!first) { load(); c.f32x4Add(); }
    if (relu) c.get(zero).f32x4Pmax();
    store();
  };
  c.v128Zero().set(zero);
  planeSweep(c, { N, C, pBytes, table, tableStride: 16, n, ch, p, end, t }, () => splatConstants(c, t, scaleShift, [S, T]), () => {
    c.get(out).get(p).i32Add(); // the store's address
    c.get(x).get(p).i32Add().v128Load(0).set(v);
    finish(() => c.v128Store(0), () => c.get(out).get(p).i32Add().v128Load(0));
  }, () => { // in lane 0
    c.get(out).get(p).i32Add();
    c.get(x).get(p).i32Add().v128Load32Zero(0).set(v);
    finish(() => c.v128Store32Lane(0), () => c.get(out).get(p).i32Add().v128Load32Zero(0));
  });
  return { name: `bnAccumulate${first ? 'First' : ''}${relu ? 'Relu' : ''}`, params: new Array<number>(6).fill(I32), locals: [I32, I32, I32, I32, I32, V128, V128, V128, V128], body: c };
}

/**
 * reluGrad(dy, y, out, bytes): ReLU's gradient as PyTorch's threshold_backward, on float32 arrays
 * `bytes` long: out = dy where y > 0 or y is NaN, +0 where y ≤ 0 (dy with its bits cleared where
 * f32x4.le(y, 0), which is false for NaN): the bits of reluBackward in src/ops/relu.ts.
 */
export function reluGradDef(): FunctionDef {
  const [dy, y, out, bytes] = [0, 1, 2, 3];
  const [p, zero] = [4, 5];
  const c = new Code();
  c.v128Zero().set(zero).i32(0).set(p);
  c.block().loop(); // four at a time while p + 16 ≤ bytes
  c.get(bytes).get(p).i32(16).i32Add().i32LtU().brIf(1);
  c.get(out).get(p).i32Add();
  c.get(dy).get(p).i32Add().v128Load(0).get(y).get(p).i32Add().v128Load(0).get(zero).f32x4Le().v128AndNot();
  c.v128Store(0);
  c.get(p).i32(16).i32Add().set(p);
  c.br(0);
  c.end().end();
  c.block().loop(); // the rest, one at a time in lane 0
  c.get(p).get(bytes).i32LtU().i32Eqz().brIf(1);
  c.get(out).get(p).i32Add();
  c.get(dy).get(p).i32Add().v128Zero().v128Load32Lane(0).get(y).get(p).i32Add().v128Zero().v128Load32Lane(0).get(zero).f32x4Le().v128AndNot();
  c.v128Store32Lane(0);
  c.get(p).i32(4).i32Add().set(p);
  c.br(0);
  c.end().end();
  return { name: 'reluGrad', params: [I32, I32, I32, I32], locals: [I32, V128], body: c };
}
