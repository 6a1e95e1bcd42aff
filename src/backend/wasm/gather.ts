// Sources the kernels read in place: a zero-padded copy of the input, placed into WebAssembly memory
// with one memcpy per image and the `pad` kernel, from which im2col's gather and Winograd's input
// transform read their panels and tiles without a col matrix.

import type { FloatArray } from '../../tensor/tensor.js';
import type { Instance, PlacePlanes } from './instance.js';

/**
 * A B operand that the WebAssembly kernels gather themselves: `src` (size floats) is copied into
 * memory once per GEMM, then B(k, j) = src[cols(j) + taps[k]] (im2col from a zero-padded input).
 */
export interface GatherSource {
  size: number;
  /** floats of scratch that load may use */
  staging: number;
  /** writes src into mem at `at`; `stage` is the scratch, `place` moves planes staged there into rows */
  load(mem: Float32Array, at: number, stage: number, place: PlacePlanes): void;
  /** the row offsets, K of them */
  taps: Int32Array;
  /** the offsets of columns jc … jc + n − 1 into out[0 … n − 1] */
  cols(jc: number, n: number, out: Int32Array): void;
}

/**
 * The size, staging and load of a zero-padded source: images n0 … n1 of x (N, C, H, W), channels
 * c0 … c0 + Cg, each plane Hp × Wp with the image at (pt, pl). The planes go in with one memcpy per
 * image, and WebAssembly places them in the padded rows.
 */
export function paddedPlanes(
  x: FloatArray, C: number, H: number, W: number, c0: number, Cg: number, n0: number, n1: number, Hp: number, Wp: number, pt: number, pl: number,
): Pick<GatherSource, 'size' | 'staging' | 'load'> {
  const planes = (n1 - n0 + 1) * Cg;
  return {
    size: planes * Hp * Wp,
    staging: planes * H * W,
    load(mem, at, stage, place) {
      mem.fill(0, at, at + planes * Hp * Wp);
      for (let n = n0; n <= n1; n++) mem.set(x.subarray((n * C + c0) * H * W, (n * C + c0 + Cg) * H * W), stage + (n - n0) * Cg * H * W);
      place(at + pt * Wp + pl, stage, planes, H, W, Wp, Hp * Wp);
    },
  };
}

// The place function a source's load gets: planes staged in [stage, stage + staging) into rows
// inside [at, at + size), by the pad kernel, once both ends are checked (an offset past them would
// write over other data without a word).
export function placer(inst: Instance, at: number, size: number, stage: number, staging: number, who: string): PlacePlanes {
  return (dst, src, planes, H, W, Wp, planeStride) => {
    if (!(dst >= at && dst + (planes - 1) * planeStride + (H - 1) * Wp + W <= at + size && src >= stage && src + planes * H * W <= stage + staging)) {
      throw new Error(`${who}: placing ${planes} planes of ${H}×${W} would leave the source of ${size} floats`);
    }
    inst.pad(4 * dst, 4 * src, planes, H, W, 4 * Wp, 4 * planeStride);
  };
}
