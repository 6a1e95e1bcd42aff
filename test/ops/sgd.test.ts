// SGD's update split among the pool's threads (src/ops/sgd.ts): every element against
// torch.optim.SGD's recurrence.
import { describe, expect, it } from 'vitest';
import { Tensor, sharedArray } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/rng.js';
import { Parameter } from '../../src/nn/module.js';
import { SGD } from '../../src/train/sgd.js';
import { isShared, poolStats, setThreads, workersReady } from '../../src/backend/threads.js';

// float32 values in [-1, 1), drawn here (not by the engine's initialiser)
function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.next() - 1;
  return a;
}

describe('SGD on the pool\'s threads', () => {
  it('splits shared parameters among the threads and updates every element as the recurrence says', async () => {
    setThreads(2);
    await workersReady();
    const lr = 0.05, mu = 0.9, wd = 1e-3;
    // 2¹⁹ + 3 elements: two parts (a part needs 2¹⁸), their boundary not on a round index; a small
    // plain (unshared) parameter beside it is updated on this thread
    const n = (1 << 19) + 3, m = 37;
    const big = sharedArray('float32', n) as Float32Array;
    big.set(values(n, 1));
    const small = values(m, 2);
    const ps = [new Parameter(new Tensor(big, [n])), new Parameter(new Tensor(small, [m]))];
    expect(ps.map((p) => isShared(p.data.data))).toEqual([true, false]);
    expect(isShared(ps[0].grad.data)).toBe(true); // a shared parameter's gradient is shared too
    const opt = new SGD(ps, { lr, momentum: mu, weightDecay: wd });
    // the recurrence, element by element: d = g + λθ (first step), else μv + (g + λθ); v = d; θ = θ − ηd,
    // in float32 as torch.optim.SGD computes it on float32 parameters (the engine's 'wasm' update):
    // η, μ, λ rounded, each operation rounded (Math.fround of a float64 sum or product of two
    // float32 values is the float32 operation's result)
    const f = Math.fround, [E, Mu, L] = [f(lr), f(mu), f(wd)];
    const theta = [Array.from(big), Array.from(small)], vel = [new Float64Array(n), new Float64Array(m)];
    for (let step = 0; step < 3; step++) {
      const grads = [values(n, 10 + step), values(m, 20 + step)];
      ps.forEach((p, k) => p.grad.data.set(grads[k]));
      const before = poolStats.workerParts;
      opt.step();
      expect(poolStats.workerParts - before, 'parts on a worker').toBe(1);
      for (let k = 0; k < 2; k++) {
        const th = theta[k], v = vel[k], g = grads[k];
        for (let i = 0; i < th.length; i++) {
          const gd = f(g[i] + f(L * th[i]));
          const d = step === 0 ? gd : f(f(Mu * v[i]) + gd);
          v[i] = d;
          th[i] = f(th[i] - f(E * d));
        }
        const got = ps[k].data.data;
        let bad = -1;
        for (let i = 0; i < th.length && bad < 0; i++) if (got[i] !== th[i]) bad = i;
        expect(bad, `parameter ${k}, step ${step}: first element off the recurrence`).toBe(-1);
      }
    }
  });
});
