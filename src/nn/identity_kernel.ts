// The identity as a conv kernel, for the layers that add it to a weight (DBB's IdentityConv1x1: W + I)
// and for the fuser (src/reparam/kernels.ts, which re-exports it among its algebraic steps).
import { Tensor, allocArray, type DType } from '../tensor/tensor.js';

/**
 * The identity as a conv kernel (C, C/g, 3, 3): output channel i reads input channel i of its own
 * group, i.e. in-group index i mod (C/g), with a 1 at the centre tap.
 */
export function identityKernel(channels: number, groups: number, dtype: DType = 'float32', size = 3): Tensor {
  if (channels % groups !== 0) throw new Error(`identityKernel: ${channels} channels are not divisible by groups ${groups}`);
  const Cg = channels / groups;
  const k = allocArray(dtype, channels * Cg * size * size);
  const c = (size - 1) / 2;
  for (let i = 0; i < channels; i++) k[(i * Cg + (i % Cg)) * size * size + c * size + c] = 1;
  return new Tensor(k, [channels, Cg, size, size]);
}
