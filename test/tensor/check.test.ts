// Each numeric kind at its edges: the last value in and the first value out on each side.
import { describe, expect, it } from 'vitest';
import { checkNumber } from '../../src/tensor/check.js';

describe('checkNumber: one rule per kind, exact at the edges', () => {
  const EDGES: [kind: Parameters<typeof checkNumber>[1], accepted: number[], refused: unknown[]][] = [
    ['count', [1, Number.MAX_SAFE_INTEGER], [0, -1, 1.5, 2 ** 53, Infinity, NaN, '3']],
    ['index', [0, 7, Number.MAX_SAFE_INTEGER], [-1, 0.5, 2 ** 53, NaN]],
    ['seed', [0, 2 ** 32 - 1], [2 ** 32, -1, 0.5]],
    ['positive', [Number.MIN_VALUE, 1e-12, 1e300], [0, -0, -1e-12, Infinity, NaN]],
    ['nonnegative', [0, -0, 1e-300], [-Number.MIN_VALUE, Infinity, NaN]],
  ];
  for (const [kind, accepted, refused] of EDGES) {
    it(`${kind}: accepts ${accepted.join(', ')}; refuses ${refused.map(String).join(', ')}`, () => {
      for (const v of accepted) expect(checkNumber(v, kind, '--x')).toBe(v);
      for (const v of refused) expect(() => checkNumber(v, kind, '--x'), String(v)).toThrow(/^--x must be /);
    });
  }
});
