// Sources the kernels read in place (gemm_contract.ts GatherSource, WinogradSource): a zero-padded
// copy of the input in WebAssembly memory, its planes copied in with one memcpy per image and
// spread over the region with their zeros by the padPlanes kernel, from which im2col's gather and
// Winograd's input transform read their panels and tiles without a col matrix; and the way back,
// planes taken out of a padded region (col2im's scatter target, Winograd's output block). Beside
// them, two moves of the GEMMs' operands that only copy: a batch's rows laid side by side
// (gatherImageRowsSimd) and a stride-1 conv's flipped filters (flippedFiltersSimd).

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
    if (padded === flat) { // no padding: the planes moved to the region's start, if not there already
      if (src !== at) inst.f32.copyWithin(at, src, src + flat);
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

/** Where src holds the rows of the positions [qa, qb) of images of P positions (image n's rows at
 * srcOff + n·imageStride, ld apart): the first image n0, and the span from its rows' start that
 * holds them all (floats). */
export function imageRowSpan(srcOff: number, imageStride: number, ld: number, rows: number, P: number, qa: number, qb: number): { n0: number; start: number; span: number } {
  const n0 = Math.floor(qa / P), n1 = Math.floor((qb - 1) / P);
  return { n0, start: srcOff + n0 * imageStride, span: (n1 - n0) * imageStride + (rows - 1) * ld + P };
}

/** Those rows laid side by side at `laid` in kernel memory, qb − qa floats apart: the span (checked
 * against src by the caller) copied in with one set at `raw`, each image's share of the rows placed by
 * the copyPlanes kernel. Both regions are scratch the caller holds, apart (floats). */
export function layImageRows(inst: Instance, src: Float32Array, s: { n0: number; start: number; span: number }, imageStride: number, ld: number, rows: number, P: number,
  qa: number, qb: number, laid: number, raw: number): void {
  inst.f32.set(src.subarray(s.start, s.start + s.span), raw);
  forEachImage(qa, qb, P, (n, p0, p1, off) => inst.copyPlanes(4 * (laid + off), 4 * (raw + (n - s.n0) * imageStride + p0), 1, rows, p1 - p0, 4 * (qb - qa), 4 * ld, 0));
}

/**
 * gatherImageRows (gemm.ts) in kernel memory: the images' blocks copied in with one set, each
 * image's share of its rows placed side by side by the copyPlanes kernel, and the rows copied out with
 * one set (or one a row where dst's rows are longer than the positions). Copies only: the same values.
 */
export function gatherImageRowsSimd(src: Float32Array, srcOff: number, imageStride: number, ld: number, rows: number, P: number,
  qa: number, qb: number, dst: Float32Array, dstOff: number, ldDst: number): void {
  const L = qb - qa, s = imageRowSpan(srcOff, imageStride, ld, rows, P, qa, qb);
  if (!(rows >= 1 && L >= 1 && s.start >= 0 && s.start + s.span <= src.length && ldDst >= L && dstOff + (rows - 1) * ldDst + L <= dst.length)) {
    throw new Error(`gatherImageRows: ${rows} rows of positions ${qa}…${qb} (images of ${P}) would leave the source (${src.length}) or the destination (${dst.length})`);
  }
  const inst = getInstance();
  const raw = inst.arenaEnd, laid = raw + Math.ceil(s.span / 4) * 4;
  const mem = scratchAbove(laid + rows * L - raw);
  layImageRows(inst, src, s, imageStride, ld, rows, P, qa, qb, laid, raw);
  if (ldDst === L) dst.set(mem.subarray(laid, laid + rows * L), dstOff);
  else for (let r = 0; r < rows; r++) dst.set(mem.subarray(laid + r * L, laid + (r + 1) * L), dstOff + r * ldDst);
}

/** Floats of flipped rows per copy out (bounds the scratch above a group's filters). */
const FLIP_CHUNK_FLOATS = 1 << 18;

/**
 * Rows r0 … r1 − 1 (r = gi·Cg + c) of a stride-1 conv's flipped filters W' (groups·Cg, Fg, T) from W
 * (groups·Fg, Cg, T), as flipRows in src/ops/conv2d.ts writes them: W'[r, f, k] = W[gi·Fg + f, c,
 * T − 1 − k], by the flipTaps kernel (a group's W copied in with one set, the rows out a chunk at a
 * time). Copies only: the same values.
 */
export function flippedFiltersSimd(w: Float32Array, wT: Float32Array, Cg: number, Fg: number, T: number, r0: number, r1: number): void {
  const group = Fg * Cg * T, groups = Math.ceil(r1 / Cg);
  if (!(r0 >= 0 && r0 <= r1 && T >= 1 && w.length >= groups * group && wT.length >= r1 * Fg * T)) {
    throw new Error(`flipped filters: rows ${r0}…${r1} of ${Cg}-channel groups of ${Fg} filters of ${T} taps would leave W (${w.length}) or W' (${wT.length})`);
  }
  const inst = getInstance();
  const rowsPerChunk = Math.max(1, Math.floor(FLIP_CHUNK_FLOATS / (Fg * T)));
  for (let gi = Math.floor(r0 / Cg); gi * Cg < r1; gi++) {
    const c0 = Math.max(r0, gi * Cg) - gi * Cg, c1 = Math.min(r1, (gi + 1) * Cg) - gi * Cg;
    const srcW = inst.arenaEnd, dstW = srcW + Math.ceil(group / 4) * 4;
    const mem = scratchAbove(dstW - srcW + Math.min(c1 - c0, rowsPerChunk) * Fg * T);
    mem.set(w.subarray(gi * group, (gi + 1) * group), srcW);
    for (let c = c0; c < c1; c += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, c1 - c);
      inst.flipTaps(4 * dstW, 4 * (srcW + c * T), n, Fg, 4 * T, 4 * Cg * T);
      wT.set(mem.subarray(dstW, dstW + n * Fg * T), (gi * Cg + c) * Fg * T);
    }
  }
}
