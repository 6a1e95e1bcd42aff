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
