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

export function expectShape(t: Tensor, shape: readonly number[], name: string): void {
  let ok = t.shape.length === shape.length;
  for (let i = 0; ok && i < shape.length; i++) ok = t.shape[i] === shape[i];
  if (!ok) throw new Error(`${name}: expected shape ${fmtShape(shape)}, got ${fmtShape(t.shape)}`);
}

export function expectSameDtype(a: Tensor, b: Tensor, nameA: string, nameB: string): void {
  if (a.dtype !== b.dtype) {
    throw new Error(`${nameB}: dtype ${b.dtype} does not match ${nameA} dtype ${a.dtype}`);
  }
}
