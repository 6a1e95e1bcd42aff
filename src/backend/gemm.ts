// The kernel interface ops stand on: a GEMM with a conv's epilogue, a conv's filters prepared once
// for it, and Winograd F(4×4)'s transforms, each run by the implementation the backend selects
// (backend.ts): the TypeScript reference (gemm_ref.ts; Winograd's TypeScript transforms in src/ops
// are the reference for theirs) or WebAssembly SIMD (wasm/). Ops describe their operands with the
// contract (gemm_contract.ts); nothing outside src/backend imports an implementation
// (test/layering.test.ts).

import { type FloatArray, copyRows } from '../tensor/tensor.js';
import { workspaceLike } from '../tensor/workspace.js';
import { type ImageColumns, type Int16Gather, type Int16Rows, type MatRef, type PanelSource, type RowEpilogue, type ScatterTarget, type WinogradOutput, type WinogradOutputTiles, type WinogradSource, forEachImage } from './gemm_contract.js';
import { getBackend } from './backend.js';
import { biasRelu, gemmInt16Js, gemmJs } from './gemm_ref.js';
import { KC, NR, type PackedA, gemmSimd, packPanels, packedPanels, takesImageRows } from './wasm/gemm_simd.js';
import { type Panels, newPanels, releasePanels } from './wasm/instance.js';
import { winogradFiltersSimd, winogradInputSimd, winogradOutputSimd, winogradTilesSimd } from './wasm/winograd_drivers.js';
import { flippedFiltersSimd, gatherImageRowsSimd } from './wasm/gather.js';
import { gemmInt16Simd } from './wasm/gemm_int_driver.js';

export type { GatherSource, ImageColumns, Int16Gather, Int16Rows, MatRef, PanelSource, RowEpilogue, ScatterTarget, WinogradOutput, WinogradOutputTiles, WinogradSource } from './gemm_contract.js';
export { forEachImage, paddedPlanes } from './gemm_contract.js';

// float32 runs on the SIMD kernels when the backend is 'wasm'; float64 always on the reference
const simd = (a: FloatArray): boolean => a instanceof Float32Array && getBackend() === 'wasm';

/** Rows of a prepared A operand (filterRows), as gemm takes them. */
export type PreparedRows = PackedA;

/**
 * C[cOff + i·ldc + j] (+)= Σ_k A(i,k)·B(k,j) for i < M, j < N, then the epilogue if given.
 * A(i,k) = trans ? a[off + k·ld + i] : a[off + i·ld + k], likewise B. `prepared`: A's rows already
 * prepared (filterRows; A must hold the same values), used where the selected kernel takes them.
 * `images`: C's columns laid out per image (ImageColumns; not accumulating), where storesImageColumns.
 * accumulate: false stores the product, true adds each term onto C (C's value starts the sum),
 * 'plus' computes the product as false does and then adds it to C, one add in C's type an element
 * (a sum's second half onto its first: src/ops/batch_shards.ts). splitK (0 < splitK < K): the
 * terms k ≥ splitK are summed on their own, from zero, and that sum added to the first terms' (the
 * batch's halves in one call). Neither takes an epilogue. An A whose columns lie per image
 * (A.images) is read in place by the SIMD kernel where it takes it whole, else gathered first.
 */
export function gemm(
  M: number, N: number, K: number,
  A: MatRef, B: MatRef | PanelSource,
  C: FloatArray, cOff: number, ldc: number,
  accumulate: boolean | 'plus',
  prepared?: PreparedRows,
  epi?: RowEpilogue,
  images?: ImageColumns,
  splitK = 0,
): void {
  if (M === 0 || N === 0) return;
  if (A.images !== undefined && !(simd(C) && takesImageRows(M, K, A))) A = imageRowsGathered(M, K, A, C);
  if (splitK > 0 && splitK < K && !simd(C)) {
    gemm(M, N, splitK, A, B, C, cOff, ldc, accumulate, prepared, epi, images);
    gemm(M, N, K - splitK, termsFrom(A, splitK, true), termsFrom(B, splitK, false), C, cOff, ldc, 'plus');
    return;
  }
  if (images !== undefined && (accumulate !== false || K === 0 || !storesImageColumns(C))) throw new Error('gemm: columns laid out per image need the SIMD kernel, K > 0 and a stored (not accumulated) product');
  if (accumulate === 'plus' && epi !== undefined) throw new Error('gemm: a product added afterwards takes no epilogue');
  if (K === 0) {
    for (let i = 0; i < M; i++) {
      if (accumulate === false) C.fill(0, cOff + i * ldc, cOff + i * ldc + N);
      else if (accumulate === 'plus') for (let j = cOff + i * ldc, e = j + N; j < e; j++) C[j] += 0;
    }
    if (epi !== undefined) biasRelu(C, cOff, ldc, N, M, epi);
    return;
  }
  if (simd(C)) {
    gemmSimd(M, N, K, A, B, C as Float32Array, cOff, ldc, accumulate, prepared, epi, undefined, images, splitK);
    return;
  }
  if (accumulate === 'plus') {
    const t = workspaceLike('gemm.plus', M * N, C);
    gemmJs(M, N, K, A, B, t, 0, N, false);
    for (let i = 0; i < M; i++) for (let j = 0, c = cOff + i * ldc, r = i * N; j < N; j++) C[c + j] += t[r + j];
    return;
  }
  gemmJs(M, N, K, A, B, C, cOff, ldc, accumulate);
  if (epi !== undefined) biasRelu(C, cOff, ldc, N, M, epi);
}

// A (M × K) whose columns lie per image, its rows laid side by side in a workspace like C (gatherImageRows)
function imageRowsGathered(M: number, K: number, A: MatRef, C: FloatArray): MatRef {
  const { P, q0, imageStride } = A.images!;
  const t = workspaceLike('gemm.imageRows', M * K, C);
  gatherImageRows(A.data, A.offset, imageStride, A.ld, M, P, q0, q0 + K, t, 0, K);
  return { data: t, offset: 0, ld: K, trans: false };
}

// An operand from its term k0 on: A's columns (isA) or B's rows from k0.
function termsFrom<T extends MatRef | PanelSource>(X: T, k0: number, isA: boolean): T {
  if ('packB' in X) return { packB: (pc, jc, kc, nc, out, w, NR) => X.packB(pc + k0, jc, kc, nc, out, w, NR) } as T;
  return { ...X, offset: X.offset + (X.trans === isA ? k0 * X.ld : k0) };
}

/**
 * A fixed A operand (a conv's filters) prepared once for the selected kernel: `blocks` matrices of
 * `rows` × K (a group's filters, or a group's U_ξη for one of Winograd's α² products).
 */
export interface PreparedFilters {
  panels: Panels;
  blocks: number;
  rows: number;
  K: number;
}

/** Whether the kernel selected for arrays like `a` takes prepared filters (else gemm packs A itself). */
export function takesPreparedFilters(a: FloatArray): boolean {
  return simd(a);
}

// rows rounded up to the SIMD kernel's 4-row strips
const stripRows = (rows: number): number => Math.ceil(rows / 4) * 4;

/**
 * `blocks` matrices of rows × K stored one after another in `a` (row-major), prepared for the
 * selected kernel (takesPreparedFilters). kept: a module's cache, used call after call (then each
 * thread keeps a copy resident), else used for one call; releaseFilters when done with either.
 */
export function prepareFilters(a: Float32Array, blocks: number, rows: number, K: number, kept: boolean): PreparedFilters {
  const rp = stripRows(rows);
  const panels = newPanels(blocks * rp * K, kept);
  for (let b = 0; b < blocks; b++) packPanels(rows, K, { data: a, offset: b * rows * K, ld: K, trans: false }, panels.data, b * rp * K);
  return { panels, blocks, rows, K };
}

/** Block `block` of p from row `row0` (a multiple of 4: parts split filters in strips of 4) on, as gemm's `prepared`. */
export function filterRows(p: PreparedFilters, block: number, row0 = 0): PreparedRows {
  const rp = stripRows(p.rows);
  return { panels: p.panels, offset: block * rp * p.K, rowsPadded: rp, row0 };
}

/** Gives back what p holds in this thread's kernel memory (release in the reverse order of first use to get all of it back). */
export function releaseFilters(p: PreparedFilters): void {
  releasePanels(p.panels);
}

/**
 * Rows of a batch's images laid side by side: for the positions [qa, qb) of images of P positions,
 * dst[dstOff + r·ldDst + j] = image n's row r at position p, where qa + j = n·P + p (image n's rows
 * at srcOff + n·imageStride, ld apart). dy gathered for dx and dW (F/g × positions), and an A laid out
 * per image that the kernel does not take in place; on the SIMD backend in kernel memory
 * (gatherImageRowsSimd), else a copy of each image's share of each row.
 */
export function gatherImageRows(src: FloatArray, srcOff: number, imageStride: number, ld: number, rows: number, P: number,
  qa: number, qb: number, dst: FloatArray, dstOff: number, ldDst: number): void {
  if (qb <= qa || rows === 0) return;
  if (simd(dst) && src instanceof Float32Array) {
    gatherImageRowsSimd(src, srcOff, imageStride, ld, rows, P, qa, qb, dst as Float32Array, dstOff, ldDst);
    return;
  }
  forEachImage(qa, qb, P, (n, p0, p1, off) => copyRows(src, srcOff + n * imageStride + p0, ld, dst, dstOff + off, ldDst, rows, p1 - p0));
}

/**
 * Rows r0 … r1 − 1 of a stride-1 conv's flipped filters (flipRows in src/ops/conv2d.ts) on the SIMD
 * kernel where it takes float32 arrays (flippedFiltersSimd): true when done, false where the caller
 * runs its TypeScript loop.
 */
export function flippedFiltersOnKernel(w: FloatArray, wT: FloatArray, Cg: number, Fg: number, T: number, r0: number, r1: number): boolean {
  if (!simd(wT) || !(w instanceof Float32Array)) return false;
  if (r1 > r0) flippedFiltersSimd(w, wT as Float32Array, Cg, Fg, T, r0, r1);
  return true;
}

/** Whether the selected kernel for arrays like `a` stores C's columns laid out per image itself (gemm's `images`). */
export function storesImageColumns(a: FloatArray): boolean {
  return simd(a);
}

/** Whether the selected kernel for arrays like `a` adds a product into a ScatterTarget itself (gemmScatter). */
export function scattersInKernel(a: FloatArray): boolean {
  return simd(a);
}

/** Σ_k A(i,k)·B(k,j) added into `target` (col2im's scatter) instead of stored: where scattersInKernel. */
export function gemmScatter(M: number, N: number, K: number, A: MatRef, B: MatRef | PanelSource, target: ScatterTarget): void {
  if (M === 0 || N === 0) return;
  gemmSimd(M, N, K, A, B, new Float32Array(0), 0, 0, false, undefined, undefined, target);
}

/** The most terms an integer GEMM sums: each |a|, |b| ≤ 255 (an INT8 operand less its zero point),
 * so a sum stays within int32, which the SIMD kernel accumulates in: K·255² < 2³¹. */
export const INT16_GEMM_MAX_K = Math.floor((2 ** 31 - 1) / (255 * 255));

/**
 * C[cOff + i·ldc + j] = Σ_k A(i, k)·B(k, j) for i < A.M, j < N, exactly (integer sums, so every order
 * gives the same values): the integer convolutions of INT8 graphs. B is B[bOff + k·ldb + j], or
 * gathered (Int16Gather: bOff and ldb unused). Every |A|, |B| ≤ 255 and A.K ≤ INT16_GEMM_MAX_K (the
 * caller's to keep: it knows its operands' ranges). On 'wasm', 16-bit lanes and 32-bit sums
 * (i32x4.dot_i16x8_s), A packed once and kept on it; on 'js', float64 sums.
 */
export function gemmInt16(A: Int16Rows, N: number, B: Int16Array | Int16Gather, bOff: number, ldb: number, C: Float64Array, cOff: number, ldc: number): void {
  if (A.K > INT16_GEMM_MAX_K) throw new Error(`gemmInt16: ${A.K} terms could overflow a 32-bit sum (at most ${INT16_GEMM_MAX_K})`);
  if (A.M === 0 || N === 0) return;
  if (!(B instanceof Int16Array)) checkGather(B, A.K, N);
  if (A.K > 0 && getBackend() === 'wasm') gemmInt16Simd(A, N, B, bOff, ldb, C, cOff, ldc);
  else {
    const gathered = B instanceof Int16Array ? { src: B, taps: Int32Array.from({ length: A.K }, (_, k) => bOff + k * ldb), cols: Int32Array.from({ length: N }, (_, j) => j) } : B;
    gemmInt16Js(A.M, N, A.K, A.data, A.offset, gathered, C, cOff, ldc);
  }
}

// every sum of a tap and a column offset inside the planes: one past them would read other memory
// (the SIMD kernel's) or undefined (the reference's)
function checkGather(B: Int16Gather, K: number, N: number): void {
  let tMin = Infinity, tMax = -Infinity, cMin = Infinity, cMax = -Infinity;
  for (let k = 0; k < K; k++) { tMin = Math.min(tMin, B.taps[k]); tMax = Math.max(tMax, B.taps[k]); }
  for (let j = 0; j < N; j++) { cMin = Math.min(cMin, B.cols[j]); cMax = Math.max(cMax, B.cols[j]); }
  if (!(tMin + cMin >= 0 && tMax + cMax < B.src.length)) throw new Error(`gemmInt16: a gathered offset (taps ${tMin} … ${tMax}, columns ${cMin} … ${cMax}) leaves its ${B.src.length} values`);
}

/** Whether Winograd F(4×4)'s transforms run on the selected kernels for arrays like x (else the TypeScript transforms in src/ops). */
export function transformsWinogradF4(x: FloatArray): boolean {
  return simd(x);
}

/** F(4×4, 3×3)'s U = G g Gᵀ of w (F, C/g, 3, 3) into U (groups, 36, F/g, C/g): bit for bit the TypeScript transform's values. */
export function winogradFiltersF4(w: Float32Array, F: number, Cg: number, groups: number, U: Float32Array): void {
  winogradFiltersSimd(w, F, Cg, groups, U);
}

/** F(4×4, 3×3)'s V = Bᵀ d B for the tiles s describes, into V at vOff: bit for bit the TypeScript transform's values. */
export function winogradInputF4(s: WinogradSource, V: Float32Array, vOff: number): void {
  winogradInputSimd(s, V, vOff);
}

/** F(4×4, 3×3)'s Y = Aᵀ M A + bias (and ReLU) for the tiles o describes: bit for bit the TypeScript output pass. */
export function winogradOutputF4(o: WinogradOutput): void {
  winogradOutputSimd(o);
}

/**
 * F(4×4, 3×3) for one block of tiles, V and M kept in the kernel's memory: V = Bᵀ d B (s, V in the
 * GEMM's panels), M_k = U_k · V_k for the 36 k (U: blocks firstBlock … of prepared `filters`, from
 * row row0), Y = Aᵀ M A + bias (o). Bit for bit winogradInputF4, 36 gemm calls and winogradOutputF4.
 */
export function winogradTilesF4(s: WinogradSource, filters: PreparedFilters, firstBlock: number, row0: number, o: WinogradOutputTiles): void {
  winogradTilesSimd(s, filterRows(filters, 0), firstBlock, row0, o);
}

/**
 * The SIMD kernel's B panel layout (bPanels): strips of PANEL_STRIP columns, each `rows` rows of
 * PANEL_STRIP floats, rows ≤ PANEL_ROWS (one KC block). Winograd's SIMD input transform writes V there.
 */
export const PANEL_ROWS = KC;
export const PANEL_STRIP = NR;

/** B already in the SIMD kernel's panel layout at offset (see PANEL_ROWS). */
export function bPanels(data: Float32Array, offset: number, rows: number): PanelSource {
  return packedPanels(data, offset, rows);
}
