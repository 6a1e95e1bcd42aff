// SGD's update over float32 arrays on WebAssembly SIMD: the float64 operations of the TypeScript
// loop in src/ops/sgd.ts in the same order, one rounding to float32 per stored value, so θ and v are
// bit for bit what it stores:
//   d = [μ·v +] (∇ + λ·θ);   [v ← d;]   θ ← θ − η·d
// Four elements a loop, promoted to f64x2 in two halves; the last bytes mod 16 one at a time.
// Addresses are bytes.

import { Code, F64, I32, V128, type FunctionDef } from './emit.js';

/** Which of the loop's three cases: no velocity, the first step (v = d), or momentum. */
export type SgdCase = 'plain' | 'first' | 'momentum';

/**
 * sgd{Plain,First,Momentum}(theta, grad, vel, bytes, lr, mu, wd): θ (and v) updated in place over
 * `bytes` bytes of each array; vel is not read by the first step and not touched without velocity.
 */
export function sgdDef(kind: SgdCase): FunctionDef {
  const [th, g, v, bytes, lr, mu, wd] = [0, 1, 2, 3, 4, 5, 6];
  const [p, lr2, mu2, wd2, t4, g4, v4, tH, gH, vH, d] = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const [ts, gs, vs, ds] = [18, 19, 20, 21];
  const c = new Code();
  // d from θ, ∇, v (locals holding f64x2 halves or f64 scalars), and the two stores
  const update = (t: number, gr: number, ve: number, simd: boolean, store: (value: () => void) => void, storeV: (value: () => void) => void): void => {
    const mul = () => (simd ? c.f64x2Mul() : c.f64Mul()), add = () => (simd ? c.f64x2Add() : c.f64Add());
    if (kind === 'momentum') {
      c.get(simd ? mu2 : mu).get(ve);
      mul();
    }
    c.get(gr).get(simd ? wd2 : wd).get(t);
    mul();
    add();
    if (kind === 'momentum') add();
    c.set(simd ? d : ds);
    if (kind !== 'plain') storeV(() => c.get(simd ? d : ds));
    store(() => {
      c.get(t).get(simd ? lr2 : lr).get(simd ? d : ds);
      mul();
      if (simd) c.f64x2Sub();
      else c.f64Sub();
    });
  };
  const at = (base: number) => c.get(base).get(p).i32Add();
  c.get(lr).f64x2Splat().set(lr2).get(mu).f64x2Splat().set(mu2).get(wd).f64x2Splat().set(wd2).i32(0).set(p);
  c.block().loop(); // four at a time while p + 16 ≤ bytes
  c.get(bytes).get(p).i32(16).i32Add().i32LtU().brIf(1);
  at(th).v128Load(0).set(t4);
  at(g).v128Load(0).set(g4);
  if (kind === 'momentum') at(v).v128Load(0).set(v4);
  for (const half of [0, 1]) {
    // lanes 2h and 2h + 1, widened
    const widen = (from: number, to: number) => {
      c.get(from);
      if (half === 1) c.get(from).f32x4HighToLow();
      c.f64x2PromoteLowF32x4().set(to);
    };
    widen(t4, tH);
    widen(g4, gH);
    if (kind === 'momentum') widen(v4, vH);
    const stores = (base: number) => (value: () => void) => {
      at(base);
      value();
      c.f32x4DemoteF64x2Zero().v128Store64Lane(0, 8 * half);
    };
    update(tH, gH, vH, true, stores(th), stores(v));
  }
  c.get(p).i32(16).i32Add().set(p);
  c.br(0);
  c.end().end();
  c.block().loop(); // the rest, one at a time
  c.get(p).get(bytes).i32LtU().i32Eqz().brIf(1);
  at(th).f32Load(0).f64PromoteF32().set(ts);
  at(g).f32Load(0).f64PromoteF32().set(gs);
  if (kind === 'momentum') at(v).f32Load(0).f64PromoteF32().set(vs);
  const store = (base: number) => (value: () => void) => {
    at(base);
    value();
    c.f32DemoteF64().f32Store(0);
  };
  update(ts, gs, vs, false, store(th), store(v));
  c.get(p).i32(4).i32Add().set(p);
  c.br(0);
  c.end().end();
  const name = kind === 'plain' ? 'sgdPlain' : kind === 'first' ? 'sgdFirst' : 'sgdMomentum';
  return { name, params: [I32, I32, I32, I32, F64, F64, F64], locals: [I32, ...new Array<number>(10).fill(V128), F64, F64, F64, F64], body: c };
}
