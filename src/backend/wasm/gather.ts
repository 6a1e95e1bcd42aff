// Sources the kernels read in place (gemm_contract.ts GatherSource, WinogradSource): a zero-padded
// copy of the input in WebAssembly memory, its planes copied in with one memcpy per image and
// spread over the region with their zeros by the padPlanes kernel, from which im2col's gather and
// Winograd's input transform read their panels and tiles without a col matrix; and the way back,
// planes taken out of a padded region (col2im's scatter target, Winograd's output block).

import { type PadPlanes, type PlacePlanes, forEachImage } from '../gemm_contract.js';
import { type Instance, getInstance, scratchAbove } from './instance.js';

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

// The take function a target's store gets (PlacePlanes): planes' interiors from the region [at, at +
// size) (floats; rows Wp apart, planes planeStride apart) to the staging area [stage, stage + staging),
// laid out back to back, by `kernel` (copyPlanes, or copyPlanesAdd to add them), once checked that
// both lie inside (an offset past either would touch other data without a word).
export function taker(kernel: Instance['copyPlanes'], at: number, size: number, stage: number, staging: number, who: string, region: string): PlacePlanes {
  return (dst, src, planes, H, W, Wp, planeStride) => {
    if (!(src >= at && src + (planes - 1) * planeStride + (H - 1) * Wp + W <= at + size && dst >= stage && dst + planes * H * W <= stage + staging)) {
      throw new Error(`${who}: taking ${planes} planes of ${H}×${W} would leave the ${region} of ${size} floats`);
    }
    kernel(4 * dst, 4 * src, planes, H, W, 4 * W, 4 * Wp, 4 * planeStride);
  };
}

/**
 * gatherImageRows (gemm.ts) in kernel memory: the images' blocks copied in with one set, each
 * image's share of its rows placed side by side by the copyPlanes kernel, and the rows copied out with
 * one set (or one a row where dst's rows are longer than the positions). Copies only: the same values.
 */
export function gatherImageRowsSimd(src: Float32Array, srcOff: number, imageStride: number, ld: number, rows: number, P: number,
  qa: number, qb: number, dst: Float32Array, dstOff: number, ldDst: number): void {
  const L = qb - qa, n0 = Math.floor(qa / P), n1 = Math.floor((qb - 1) / P);
  const start = srcOff + n0 * imageStride, span = (n1 - n0) * imageStride + (rows - 1) * ld + P;
  if (!(rows >= 1 && L >= 1 && start >= 0 && start + span <= src.length && ldDst >= L && dstOff + (rows - 1) * ldDst + L <= dst.length)) {
    throw new Error(`gatherImageRows: ${rows} rows of positions ${qa}…${qb} (images of ${P}) would leave the source (${src.length}) or the destination (${dst.length})`);
  }
  const inst = getInstance();
  const raw = inst.arenaEnd, laid = raw + Math.ceil(span / 4) * 4;
  const mem = scratchAbove(laid + rows * L - raw);
  mem.set(src.subarray(start, start + span), raw);
  forEachImage(qa, qb, P, (n, p0, p1, off) => inst.copyPlanes(4 * (laid + off), 4 * (raw + (n - n0) * imageStride + p0), 1, rows, p1 - p0, 4 * L, 4 * ld, 0));
  if (ldDst === L) dst.set(mem.subarray(laid, laid + rows * L), dstOff);
  else for (let r = 0; r < rows; r++) dst.set(mem.subarray(laid + r * L, laid + (r + 1) * L), dstOff + r * ldDst);
}
