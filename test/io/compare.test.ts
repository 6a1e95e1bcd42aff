// compareArrays (and `repvgg verify`, which reports it) against numpy.isclose and torch.isclose on
// the cases where readings of "relative" differ (fixtures/make_compare_fixtures.py): rtol scales the
// reference (numpy's b, assert_close's expected), an infinity equals only itself, NaN is never
// close, tolerances 0 mean exact equality. The answers are booleans, compared exactly.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareArrays } from '../../src/io/compare.js';
import { fixturePath } from '../helpers.js';

/** Python's float.hex: '-0x1.8p+1', 'inf', 'nan' → the number, every bit kept (≤ 53 mantissa bits). */
function fromHex(s: string): number {
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  if (s === 'nan') return NaN;
  const m = /^(-?)0x([01])\.([0-9a-f]+)p([+-]\d+)$/.exec(s);
  if (m === null) throw new Error(`not a float.hex string: ${s}`);
  const frac = m[3];
  const mant = parseInt(m[2] + frac, 16); // 1 + 52 bits: exact
  return (m[1] === '-' ? -1 : 1) * mant * 2 ** (Number(m[4]) - 4 * frac.length);
}

type Case = { ref: string; out: string; rtol: number; atol: number; numpy: boolean; torch: boolean };
const { cases } = JSON.parse(readFileSync(fixturePath('compare/isclose.json'), 'utf8')) as { cases: Case[] };

describe('compareArrays decides closeness as numpy.isclose and torch.isclose do', () => {
  it(`${cases.length} cases: asymmetric pairs, the exact boundary, ±0, ±Inf, NaN, subnormals, overflow, tolerances 0`, () => {
    expect(fromHex('-0x1.8000000000000p+1')).toBe(-3);
    const wrong: string[] = [];
    for (const c of cases) {
      expect(c.numpy).toBe(c.torch); // the fixture: the two references agree on every case
      const ref = fromHex(c.ref), out = fromHex(c.out);
      const r = compareArrays(Float64Array.of(ref), Float64Array.of(out), c.rtol, c.atol);
      if ((r.failures === 0) !== c.numpy) wrong.push(`ref ${ref}, out ${out}, rtol ${c.rtol}, atol ${c.atol}: numpy says ${c.numpy}`);
    }
    expect(wrong).toEqual([]);
  });

  it('the fixture holds cases that pass one way round and fail the other', () => {
    const key = (c: Case) => `${c.rtol},${c.atol}`;
    const swapped = cases.filter((c) => cases.some((d) => d.ref === c.out && d.out === c.ref && key(d) === key(c) && d.numpy !== c.numpy));
    expect(swapped.length).toBeGreaterThanOrEqual(4);
  });

  it('the worst element is the furthest outside its bound, an infinity against a finite value included', () => {
    const r = compareArrays(Float64Array.of(Infinity, 1), Float64Array.of(5, 1.5), 0.1, 0);
    expect([r.failures, r.worstIndex]).toEqual([2, 0]);
    const n = compareArrays(Float64Array.of(1, 2), Float64Array.of(1.5, NaN), 0.1, 0);
    expect([n.failures, n.worstIndex, n.maxAbs]).toEqual([2, 1, NaN]);
  });

  it('negative, NaN or infinite tolerances are refused (numpy would accept them and answer nonsense)', () => {
    for (const [rtol, atol] of [[-1e-5, 0], [0, -1], [NaN, 0], [0, Infinity]]) {
      expect(() => compareArrays(Float64Array.of(1), Float64Array.of(1), rtol, atol)).toThrow(/tolerances must be finite and non-negative/);
    }
  });
});
