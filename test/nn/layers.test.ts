// Module state that must follow the weights: the eval-mode Winograd filter cache.
import { describe, expect, it } from 'vitest';
import { Conv2d } from '../../src/nn/layers.js';
import { conv2d } from '../../src/ops/conv2d.js';
import { SGD } from '../../src/train/sgd.js';
import { loadStateDict, stateDict } from '../../src/io/state_dict.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { absConv, maxAbsDiff } from '../helpers.js';

describe('Conv2d eval-mode Winograd cache', () => {
  // float64 so Winograd and the direct reference agree to ≤ 1e-12·Σ|x·w| (conv2d.test.ts); stale
  // filters would be off by the whole weight update (here ~0.1 of the output's size).
  const bound = (c: Conv2d, x: ReturnType<typeof uniform>) => 1e-12 * Math.max(...absConv(x, c.weight.data, c.bias!.data, { padding: 1 }).data);
  const direct = (c: Conv2d, x: ReturnType<typeof uniform>) => conv2d(x, c.weight.data, c.bias!.data, { padding: 1, algorithm: 'direct' });

  it('eval → SGD step → eval uses the new weights', () => {
    const rng = new Rng(9);
    const c = new Conv2d(3, 4, 3, { padding: 1, dtype: 'float64', rng });
    c.algorithm = 'winograd';
    const x = uniform([1, 3, 8, 8], rng, -1, 1, 'float64');
    c.eval().forward(x); // fills the cache
    c.train();
    c.forward(x);
    c.backward(uniform([1, 4, 8, 8], rng, -1, 1, 'float64'));
    new SGD(c.namedParameters().map(([, p]) => p), { lr: 0.5 }).step();
    const y = c.eval().forward(x);
    expect(maxAbsDiff(y, direct(c, x))).toBeLessThanOrEqual(bound(c, x));
  });

  it('loadStateDict replaces the cached filters too', () => {
    const rng = new Rng(10);
    const c = new Conv2d(3, 4, 3, { padding: 1, dtype: 'float64', rng });
    c.algorithm = 'winograd';
    const x = uniform([1, 3, 8, 8], rng, -1, 1, 'float64');
    c.eval().forward(x);
    loadStateDict(c, stateDict(new Conv2d(3, 4, 3, { padding: 1, dtype: 'float64', rng: new Rng(11) })));
    expect(maxAbsDiff(c.forward(x), direct(c, x))).toBeLessThanOrEqual(bound(c, x));
  });
});
