// The one parser for numbers from outside: plain decimal text only, then the kind's rule.
import { describe, expect, it } from 'vitest';
import { parseNumberArg } from '../../src/cli/args.js';

describe('parseNumberArg', () => {
  it('reads decimal text (signs, exponents for real kinds, surrounding spaces)', () => {
    expect(parseNumberArg('3', 'count', '--epochs')).toBe(3);
    expect(parseNumberArg(' 12 ', 'index', '--at')).toBe(12);
    expect(parseNumberArg('1e-3', 'positive', '--eps')).toBe(1e-3);
    expect(parseNumberArg('.5', 'positive', '--lr')).toBe(0.5);
    expect(parseNumberArg('+2.', 'nonnegative', '--wd')).toBe(2);
    expect(parseNumberArg('4294967295', 'seed', '--seed')).toBe(4294967295);
  });

  it('refuses what Number() would take but a person did not mean: hex, binary, Infinity, 1_0, empty, and exponents for integers', () => {
    for (const [raw, kind] of [['0x10', 'positive'], ['0b1', 'count'], ['Infinity', 'positive'], ['1_0', 'count'], ['', 'positive'], ['  ', 'count'], ['1e3', 'count'], ['2.0', 'index'], ['1e400', 'positive']] as const) {
      expect(() => parseNumberArg(raw, kind, '--flag'), raw).toThrow(/^--flag must be (an integer|a number|a positive finite number)/);
    }
    expect(() => parseNumberArg('4294967296', 'seed', '--seed')).toThrow(/--seed must be an integer from 0 to 4294967295, got 4294967296/);
  });
});
