// The contract of the kernels (the TypeScript reference in gemm_ref.ts, WebAssembly SIMD in wasm/),
// in terms of the data, naming no implementation: how an operand is referenced, how a B operand that
// is never stored whole packs itself or is gathered from zero-padded planes, the output pass a conv
// asks for, and where Winograd's transforms read and write. Ops build these; the kernel interface
// (gemm.ts) hands them to the implementation the backend selects.

import type { FloatArray } from '../tensor/tensor.js';

export interface MatRef {
  data: FloatArray;
  offset: number;
  /** Row stride of the stored (untransposed) matrix. */
  ld: number;
  trans: boolean;
  /** A's columns laid out per image (an A operand, not transposed): A(i, k) = data[offset +
   * n·imageStride + i·ld + p] for the position q0 + k = n·P + p (a batch's dy rows for dW, read where
   * they lie instead of gathered first) */
  images?: ImageColumns;
}

/** A B operand never stored whole: it packs its own panels, as packB would pack the matrix (im2col's). */
export interface PanelSource {
  packB(pc: number, jc: number, kc: number, nc: number, out: FloatArray, w: number, NR: number): void;
  /** how the WebAssembly kernels gather it themselves instead (then packB is not called there) */
  gather?: GatherSource;
}

/** What a conv's output pass does to the product: C[i, j] = ReLU?(C[i, j] + bias[biasOff + i]). */
export interface RowEpilogue {
  bias: FloatArray | null;
  biasOff: number;
  relu: boolean;
}

/**
 * C's columns as a conv's output positions across images: column j is position q = q0 + j of a
 * batch of images of P positions each, so C(i, j) lies at cOff + i·ldc + n·imageStride + p with
 * n = ⌊q/P⌋, p = q − n·P (y: (N, F, P), rows ldc = P apart, images imageStride = F·P apart).
 */
export interface ImageColumns {
  P: number;
  q0: number;
  imageStride: number;
}

/** Calls f(n, p0, p1, colOff) for each image's share [p0, p1) of the positions [qa, qb) of images of P
 * positions (colOff: where that share starts among the columns qa … qb − 1). */
export function forEachImage(qa: number, qb: number, P: number, f: (n: number, p0: number, p1: number, colOff: number) => void): void {
  for (let q = qa; q < qb;) {
    const n = Math.floor(q / P);
    const p0 = q - n * P, p1 = Math.min(P, qb - n * P);
    f(n, p0, p1, q - qa);
    q += p1 - p0;
  }
}

/** What a scatter target's store gets to take H×W planes out of rows Wp apart, planes planeStride apart (floats). */
export type PlacePlanes = (dst: number, src: number, planes: number, H: number, W: number, Wp: number, planeStride: number) => void;

/** What a gathered source's load gets to zero-pad `planes` H×W planes stored one after another at
 * src (floats; in the last planes·H·W floats of the padded region or past it) into the region from
 * its start: pt rows above each plane, pb below, pl floats left of each row, pr right. */
export type PadPlanes = (src: number, planes: number, H: number, W: number, pt: number, pb: number, pl: number, pr: number) => void;

/**
 * A B operand a kernel gathers itself: `src` (size floats) is copied into its memory once per GEMM,
 * then B(k, j) = src[cols(j) + taps[k]] (im2col from a zero-padded input).
 */
export interface GatherSource {
  /** floats the kernel may read from (the source), and the load may write */
  size: number;
  /** writes src into mem at [at, at + size): planes stored at or past the padded region's end, then padded into it by `pad` */
  load(mem: Float32Array, at: number, pad: PadPlanes): void;
  /** the row offsets, K of them */
  taps: Int32Array;
  /** the offsets of columns jc … jc + n − 1 into out[0 … n − 1] */
  cols(jc: number, n: number, out: Int32Array): void;
}

/**
 * Where a product goes when it is never stored whole (col2im's scatter, the transpose of a
 * GatherSource): C(i, j) is added into a zeroed region of `size` floats at rows[i] + cols(j), rows
 * in order, then `store` takes what the region holds (its interior planes, through `take`).
 */
export interface ScatterTarget {
  size: number;
  /** the row offsets, M of them */
  rows: Int32Array;
  /** the offsets of columns jc … jc + n − 1 into out[0 … n − 1] */
  cols(jc: number, n: number, out: Int32Array): void;
  /** where the kernel's block of columns from jc ends, `most` of them at most: at an image's start
   * where a block would end inside a later image (an element's terms are added block by block, so
   * each image's sums then do not depend on its place among the columns) */
  blockEnd(jc: number, most: number): number;
  /** the region at `at` in mem; `stage`, `staging` floats of scratch; `take` moves planes out of rows
   * into it, `takeAdd` adds them to what it holds there */
  store(mem: Float32Array, at: number, stage: number, take: PlacePlanes, takeAdd: PlacePlanes): void;
  /** floats of scratch that store may use */
  staging: number;
}

/**
 * The size and load of a zero-padded source: images n0 … n1 of x (N, C, H, W), channels c0 … c0 +
 * Cg, each plane Hp × Wp with the image at (pt, pl). The planes go in with one memcpy per image and
 * `pad` spreads them over the padded region with their zeros. A region larger than IN_PLACE_FLOATS
 * takes them at its own end, padded in place: no staging memory (a one-shot run's first touch of
 * it is dear) and no pass that zeroes the whole region first (8 images of 48×64×64: 0.58 → 0.29
 * ms). A smaller one takes them just past itself: it is zeroed by one memset and only the rows are
 * copied, which in the cache ran 15–25% faster than the pass in place (32 images of 16×14×14 down
 * to 64×2×2). Without padding the planes go in where they stay (pad then moves nothing).
 */
const IN_PLACE_FLOATS = 1 << 17;
export function paddedPlanes(
  x: FloatArray, C: number, H: number, W: number, c0: number, Cg: number, n0: number, n1: number, Hp: number, Wp: number, pt: number, pl: number,
): Pick<GatherSource, 'size' | 'load'> {
  const planes = (n1 - n0 + 1) * Cg, padded = planes * Hp * Wp, flat = planes * H * W;
  // no padding (a 1×1 conv's): the planes are the region, in place with nothing to move
  const inPlace = padded > IN_PLACE_FLOATS || padded === flat;
  return {
    size: inPlace ? padded : padded + flat,
    load(mem, at, pad) {
      const src = inPlace ? at + padded - flat : at + padded;
      // every channel: the images lie back to back, one set; else a set per image
      if (Cg === C) mem.set(x.subarray(n0 * C * H * W, (n1 + 1) * C * H * W), src);
      else for (let n = n0; n <= n1; n++) mem.set(x.subarray((n * C + c0) * H * W, (n * C + c0 + Cg) * H * W), src + (n - n0) * Cg * H * W);
      pad(src, planes, H, W, pt, Hp - H - pt, pl, Wp - W - pl);
    },
  };
}

/** Where the tiles of a Winograd input transform come from, and where V goes (floats throughout). */
export interface WinogradSource {
  size: number;
  load: GatherSource['load'];
  /** per quad of tiles: the offsets of its four corners in the source (the last quad may repeat a
   * tile) and of its place in V (the four side by side) */
  tiles: Int32Array;
  channels: number;
  /** between channel planes and between rows of the source */
  planeStride: number;
  rowStride: number;
  /** V: floats in all, between the 36 matrices V_k, and between channels */
  vFloats: number;
  kStride: number;
  channelStride: number;
}

/** Where Winograd's products come from and where the output tiles go (floats throughout). */
export interface WinogradOutput extends WinogradOutputTiles {
  /** M_k (k < 36) of `channels` rows of `rowLength` (≥ 4·quads) floats, k-major */
  M: Float32Array;
  mOffset: number;
  rowLength: number;
}

/** Where Winograd's output tiles go, from products the kernel keeps itself (winogradTilesF4). */
export interface WinogradOutputTiles {
  channels: number;
  /** per quad of tiles: its offset in a row of M and the offsets of its four tiles' corners in the output block */
  tiles: Int32Array;
  /** the output block: `channels` planes of planeStride floats, rows rowStride apart */
  outFloats: number;
  planeStride: number;
  rowStride: number;
  /** per channel, or null */
  bias: Float32Array | null;
  biasOffset: number;
  relu: boolean;
  /** takes the finished block (in the kernel's memory at `at`); `stage`, `staging` floats of scratch; `take` moves planes out of rows into it */
  store(mem: Float32Array, at: number, stage: number, take: PlacePlanes): void;
  /** floats of scratch that store may use */
  staging: number;
}

/** A of the integer GEMM (gemmInt16): M rows of K 16-bit values, row-major from `offset` of `data`;
 * the SIMD kernel's packing of it is made on first use and kept here (`data` must not change after). */
export interface Int16Rows {
  readonly data: Int16Array;
  readonly offset: number;
  readonly M: number;
  readonly K: number;
  packed?: Int16Array;
}

/** B of the integer GEMM gathered instead of written out (im2col without its matrix): B(k, j) =
 * src[taps[k] + cols[j]], offsets in elements of src (zero-padded planes: every sum lands inside it). */
export interface Int16Gather {
  readonly src: Int16Array;
  readonly taps: Int32Array;
  readonly cols: Int32Array;
}
