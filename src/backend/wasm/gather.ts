// Sources the kernels read in place (gemm_contract.ts GatherSource, WinogradSource): a zero-padded
// copy of the input, placed into WebAssembly memory with one memcpy per image and the placePlanes
// kernel, from which im2col's gather and Winograd's input transform read their panels and tiles
// without a col matrix.

import type { PlacePlanes } from '../gemm_contract.js';
import type { Instance } from './instance.js';

// The place function a source's load gets: planes staged in [stage, stage + staging) into rows
// inside [at, at + size), by the placePlanes kernel, once both ends are checked (an offset past them would
// write over other data without a word).
export function placer(inst: Instance, at: number, size: number, stage: number, staging: number, who: string): PlacePlanes {
  return (dst, src, planes, H, W, Wp, planeStride) => {
    if (!(dst >= at && dst + (planes - 1) * planeStride + (H - 1) * Wp + W <= at + size && src >= stage && src + planes * H * W <= stage + staging)) {
      throw new Error(`${who}: placing ${planes} planes of ${H}×${W} would leave the source of ${size} floats`);
    }
    inst.placePlanes(4 * dst, 4 * src, planes, H, W, 4 * Wp, 4 * planeStride);
  };
}
