// SGD's update over float32 arrays on WebAssembly SIMD, the TypeScript loop's operations in
// src/ops/sgd.ts in the same order, in float32 as torch.optim.SGD does them on float32 parameters:
//   d = [μ·v +] (∇ + λ·θ);   [v ← d;]   θ ← θ − η·d
// with η, μ, λ rounded to float32 and each operation rounded; within a derived bound of the loop's
// float64 values, rounded once per store (test/backend/wasm.test.ts). The loop in float64 promoted
// each half of a vector and took ~5 times the vector operations (the demo's 164,330 parameters:
// 231 → 118 µs a step, the copies in and out included). Four elements a loop; the last bytes mod 16
// one at a time, in lane 0 through the same operations. Addresses are bytes.

import { Code, F64, I32, V128, type FunctionDef } from './emit.js';

/** Which of the loop's three cases: no velocity, the first step (v = d), or momentum. */
export type SgdCase = 'plain' | 'first' | 'momentum';

/**
 * sgd{Plain,First,Momentum}(theta, grad, vel, bytes, lr, mu, wd): θ (and v) updated in place over
 * `bytes` bytes of each array; vel is not read by the first step and not touched without velocity.
 */
export function sgdDef(kind: SgdCase): FunctionDef {
  const [th, g, v, bytes, lr, mu, wd] = [0, 1, 2, 3, 4, 5, 6];
  const [p, E, Mu, L, t4, d] = [7, 8, 9, 10, 11, 12];
  const c = new Code();
  const at = (base: number) => c.get(base).get(p).i32Add();
  // one vector of elements (all four lanes, or lane 0 of the last ones): `load` pushes the vector at an address
  const update = (load: (base: number) => void, store: () => void): void => {
    at(th);
    load(th);
    c.tee(t4);
    if (kind === 'momentum') {
      c.get(Mu);
      load(v);
      c.f32x4Mul();
    }
    load(g);
    c.get(L).get(t4).f32x4Mul().f32x4Add();
    if (kind === 'momentum') c.f32x4Add();
    c.tee(d);
    if (kind !== 'plain') {
      c.set(d);
      at(v);
      c.get(d);
      store();
      c.get(d);
    }
    c.get(E).f32x4Mul().f32x4Sub();
    store();
  };
  const constant = (x: number, to: number) => c.get(x).f32DemoteF64().f32x4Splat().set(to);
  constant(lr, E);
  constant(mu, Mu);
  constant(wd, L);
  c.i32(0).set(p);
  c.block().loop(); // four at a time while p + 16 ≤ bytes
  c.get(bytes).get(p).i32(16).i32Add().i32LtU().brIf(1);
  update((base) => at(base).v128Load(0), () => c.v128Store(0));
  c.get(p).i32(16).i32Add().set(p);
  c.br(0);
  c.end().end();
  c.block().loop(); // the rest, one at a time in lane 0
  c.get(p).get(bytes).i32LtU().i32Eqz().brIf(1);
  update((base) => at(base).v128Load32Zero(0), () => c.v128Store32Lane(0));
  c.get(p).i32(4).i32Add().set(p);
  c.br(0);
  c.end().end();
  const name = kind === 'plain' ? 'sgdPlain' : kind === 'first' ? 'sgdFirst' : 'sgdMomentum';
  return { name, params: [I32, I32, I32, I32, F64, F64, F64], locals: [I32, V128, V128, V128, V128, V128], body: c };
}
