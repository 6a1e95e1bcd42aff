// Shape and dtype checks that throw errors naming the tensor at fault.

import type { Tensor } from './tensor.js';

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function expectRank(t: Tensor, rank: number, name: string): void {
  if (t.shape.length !== rank) {
    throw new Error(`${name}: expected a ${rank}-D tensor, got shape ${fmtShape(t.shape)}`);
  }
}

export function expectSameDtype(a: Tensor, b: Tensor, nameA: string, nameB: string): void {
  if (a.dtype !== b.dtype) {
    throw new Error(`${nameB}: dtype ${b.dtype} does not match ${nameA} dtype ${a.dtype}`);
  }
}

/** What a numeric argument may be: one rule per kind, shared by the CLI's flags and the API. */
export type NumberKind = 'count' | 'index' | 'seed' | 'positive' | 'nonnegative';

const KIND_TEXT: Record<NumberKind, string> = {
  count: 'a positive integer', index: 'a non-negative integer', seed: 'an integer from 0 to 4294967295',
  positive: 'a positive finite number', nonnegative: 'a non-negative finite number',
};

/** v if it is a `kind`, else an Error naming `what`. */
export function checkNumber(v: unknown, kind: NumberKind, what: string): number {
  const ok = typeof v === 'number' && Number.isFinite(v) && (
    kind === 'count' ? Number.isSafeInteger(v) && v >= 1
      : kind === 'index' ? Number.isSafeInteger(v) && v >= 0
        : kind === 'seed' ? Number.isInteger(v) && v >= 0 && v <= 0xffffffff
          : kind === 'positive' ? v > 0 : v >= 0);
  if (!ok) throw new Error(`${what} must be ${KIND_TEXT[kind]}, got ${typeof v === 'number' || typeof v === 'string' ? String(v) : typeof v}`);
  return v as number;
}
