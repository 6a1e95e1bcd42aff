// Sources the kernels read in place (gemm_contract.ts GatherSource, WinogradSource): a zero-padded
// copy of the input in WebAssembly memory, its planes copied in with one memcpy per image and
// spread over the region with their zeros by the padPlanes kernel, from which im2col's gather and
// Winograd's input transform read their panels and tiles without a col matrix.

import type { PadPlanes } from '../gemm_contract.js';
import type { Instance } from './instance.js';

// The pad function a source's load gets for its region [at, at + size) (floats): the planes at src
// padded into the region from at by the padPlanes kernel, once checked that the padded planes fit
// the region and that src lies where the kernel reads every float before writing over it (at or
// past the region's last planes·H·W floats; an offset past either end would write over other data
// without a word). The places of the planes that end before src are zeroed first by one memset
// (a native fill, several times faster than WebAssembly's stores), and the kernel writes their rows.
export function padder(inst: Instance, at: number, size: number, who: string): PadPlanes {
  return (src, planes, H, W, pt, pb, pl, pr) => {
    const Wp = W + pl + pr, padded = planes * (H + pt + pb) * Wp, flat = planes * H * W;
    if (!(Math.min(planes, H, W, pt, pb, pl, pr) >= 0 && padded <= size && src >= at + padded - flat && src + flat <= at + size)) {
      throw new Error(`${who}: padding ${planes} planes of ${H}×${W} at ${src} would leave the source of ${size} floats at ${at}`);
    }
    if (flat === 0) {
      inst.f32.fill(0, at, at + padded);
      return;
    }
    const plane = padded / planes, zeroed = Math.min(planes, Math.floor((src - at) / plane));
    inst.f32.fill(0, at, at + zeroed * plane);
    inst.padPlanes(4 * at, 4 * src, planes, H, W, pt * Wp + pl, pl + pr, pr + pb * Wp, zeroed);
  };
}
