// GEMM on WebAssembly SIMD: C (M×N) (+)= op(A) · op(B), float32, the same Goto-style blocking as the
// TypeScript reference in ../gemm_ref.ts (KC-long panels, C rounded once per panel) with a 4×8
// register tile of f32x4 accumulators. Differences from the TypeScript kernel, which stays the reference:
//  - products are accumulated in float32, not float64: a panel's sum of kc products carries the
//    usual γ_kc = kc·u/(1 − kc·u) relative bound (u = 2⁻²⁴) instead of one rounding;
//  - the operands are packed into WebAssembly memory as float32 (the TypeScript kernel packs float64);
//    a module's filters stay there between calls (the arena), and im2col's B panels are gathered
//    there from a padded copy of the input (the `gather` function);
//  - the bias and ReLU of a conv's output pass run in the kernel, on the last panel;
//  - operands given as plain arrays are copied in (A whole where its rows lie close together, else a
//    row at a time) and interleaved into strips by small WebAssembly functions (packA, packAT,
//    packB); padded sources are padded by `padPlanes`; Winograd's
//    F(4×4) transforms run here too (winograd_simd.ts), with the TypeScript transforms' bits.
// Each output element still sees the same operations in the same order for any thread split.


import { type ImageColumns, type MatRef, type PanelSource, type RowEpilogue, type ScatterTarget, forEachImage } from '../gemm_contract.js';
import { packA, packB } from '../gemm_pack.js';
import { type FloatArray, copyRows } from '../../tensor/tensor.js';
import { type Instance, type Panels, floats, getInstance, resident, scratchAbove, simdStats } from './instance.js';
import { imageRowSpan, layImageRows, padder, taker } from './gather.js';

const MR = 4;
/** columns of a B strip and rows of a KC block: the panel layout (gemm.ts bPanels) */
export const NR = 8;
export const KC = 256;
/** rows of A a block kernel call takes at most (its block stays in L1 with the B panel) */
export const MC = 64;
const NC = 1024;

// The C block's row stride (floats) for ncp columns: ncp, and a cache line more where its rows would
// lie a multiple of 1 KiB apart. A full panel's 1,024 columns put the rows of every tile 4 KiB apart,
// in one set of the L1 (64 sets of 64 bytes), and a GEMM whose k loop is short does little but
// store: the demo's stem (16 filters, K = 1 and 9, 6,272 columns) took 101 and 117 µs, 64 and 92
// with its rows spread.
const blockStride = (ncp: number): number => (ncp % 256 === 0 ? ncp + 16 : ncp);

/**
 * A matrix already in the kernel's A layout: for each KC-deep block starting at column pc, strips of
 * 4 rows × kc at offset + pc·rowsPadded + row·kc, rows padded with zeros to rowsPadded (a multiple
 * of 4). A GEMM uses rows row0 … row0 + M − 1 (row0 a multiple of 4).
 */
export interface PackedA {
  panels: Panels;
  offset: number;
  rowsPadded: number;
  row0: number;
}

/**
 * A (rows × K) in the PackedA layout, into out at offset (rowsPadded·K floats). A float32 row-major A
 * is interleaved by the WebAssembly packA above the arena, MC rows at a time, and copied out: a
 * one-shot run packs every filter once, before the JIT has optimised a TypeScript loop for it
 * (docs/performance.md has the figures).
 */
export function packPanels(rows: number, K: number, A: MatRef, out: Float32Array, offset: number): void {
  const rowsPadded = Math.ceil(rows / MR) * MR;
  if (A.trans || !(A.data instanceof Float32Array)) {
    for (let pc = 0; pc < K; pc += KC) packA(A, 0, pc, rows, Math.min(KC, K - pc), out, offset + pc * rowsPadded);
    return;
  }
  const inst = getInstance();
  const aW = inst.arenaEnd, stage = aW + MC * KC;
  const mem = floats(stage + MC * KC);
  for (let pc = 0; pc < K; pc += KC) {
    const kc = Math.min(KC, K - pc);
    for (let ic = 0; ic < rows; ic += MC) {
      const mc = Math.min(MC, rows - ic);
      packABlock(inst, A, ic, pc, mc, kc, mem, aW, stage);
      out.set(mem.subarray(aW, aW + Math.ceil(mc / MR) * MR * kc), offset + pc * rowsPadded + ic * kc);
    }
  }
}

/**
 * B already in the SIMD GEMM's panel layout (strips of NR columns, each `rows` rows of NR floats),
 * one block of rows (rows ≤ KC): every panel is one contiguous copy. (Winograd's V, written that way
 * by its transform.)
 */
export function packedPanels(data: Float32Array, offset: number, rows: number): PanelSource {
  return {
    packB(pc: number, jc: number, kc: number, nc: number, out: FloatArray, w: number, nr: number): void {
      if (nr !== NR || pc !== 0 || kc !== rows || jc % NR !== 0) throw new Error(`packedPanels: a panel of rows ${pc}+${kc} of ${rows}, columns from ${jc}, strips of ${nr}: not the layout it holds`);
      const at = offset + jc * kc;
      out.set(data.subarray(at, at + Math.ceil(nc / NR) * NR * kc), w);
    },
  };
}

// Floats of kernel memory that hold A whole (its rows, and zeros for what the last 4-row strip reads
// past them) when it is copied in once per call and every block packed from there: a float32 A that
// no packed copy stands for, at most A_WHOLE floats, whose rows lie close together (its span at most
// twice M·K). Else 0: each block's rows are copied in one set each (packABlock), ~50–80 ns a row
// however short, and a block is packed again for every column block of C. 4M floats (16 MiB) holds
// A0's largest training A, the 1280 × 1728 filters of its last layer (transposed for col2im's dx:
// 256 rows of a block's few dozen floats each, 34K sets a step at 1M): A0's step at 64×64 1.03–1.04×.
const A_WHOLE = 1 << 22;
function wholeA(M: number, K: number, A: MatRef): number {
  if (!(A.data instanceof Float32Array) || M === 0 || K === 0) return 0;
  const Mp = Math.ceil(M / MR) * MR;
  if (A.images !== undefined) return !A.trans && Mp * K <= A_WHOLE ? Mp * K : 0;
  const reach = A.trans ? (K - 1) * A.ld + Mp : (Mp - 1) * A.ld + K;
  return reach <= A_WHOLE && reach <= 2 * Mp * K + 4 * A.ld ? reach : 0;
}

/** Whether gemmSimd reads an A whose columns lie per image (A.images) where they lie: it takes it
 * whole, its rows laid side by side in kernel memory (else gemm gathers them first). */
export function takesImageRows(M: number, K: number, A: MatRef): boolean {
  return wholeA(M, K, A) > 0;
}

// A (M × K) whose columns lie per image into kernel memory at aW, its rows K floats apart, then the
// rows of the last strip past M zeroed: the images' span copied in with one set at raw (scratch that
// is free until the products start), each image's share of the rows laid out by copyPlanes. dW's dy
// rows gathered this way skip the round trip through a JavaScript array (out, then in again).
function imageRowsIn(inst: Instance, A: MatRef, M: number, K: number, aW: number, raw: number): void {
  const { P, q0, imageStride } = A.images!;
  const s = imageRowSpan(A.offset, imageStride, A.ld, M, P, q0, q0 + K);
  if (!(s.start >= 0 && s.start + s.span <= A.data.length)) throw new Error(`gemm: ${M} rows of positions ${q0}…${q0 + K} (images of ${P}) would leave A (${A.data.length})`);
  const mem = scratchAbove(raw + s.span - inst.arenaEnd);
  layImageRows(inst, A.data as Float32Array, s, imageStride, A.ld, M, P, q0, q0 + K, aW, raw);
  mem.fill(0, aW + M * K, aW + Math.ceil(M / MR) * MR * K); // the last strip's rows past M: their products are dropped
  simdStats.bytesCopied += 4 * s.span;
}

// A's block (rows ic…, columns pc…) packed into the kernels' strips at aW: its rows go to
// WebAssembly memory one memcpy each and are interleaved there (a JavaScript loop writing every
// fourth float costs ~2.5 ns a float). Stored row-major, packA takes a float from each of 4 rows;
// stored transposed (K × M: A(i, k) = a[k·ld + i]), the kc rows staged 4·strips floats apart are
// already the strips, which packAT copies a vector at a time. float64, the TypeScript packA.
function packABlock(inst: Instance, A: MatRef, ic: number, pc: number, mc: number, kc: number, mem: Float32Array, aW: number, stage: number): void {
  if (!(A.data instanceof Float32Array)) {
    packA(A, ic, pc, mc, kc, mem, aW);
    return;
  }
  const strips = Math.ceil(mc / MR), mcp = strips * MR;
  if (A.trans) {
    copyRows(A.data, A.offset + pc * A.ld + ic, A.ld, mem, stage, mcp, kc, mc);
    if (mcp > mc) for (let k = 0; k < kc; k++) mem.fill(0, stage + k * mcp + mc, stage + (k + 1) * mcp); // the last strip's missing rows
    inst.packAT(4 * aW, 4 * stage, 4 * mcp, strips, kc);
    return;
  }
  copyRows(A.data, A.offset + ic * A.ld + pc, A.ld, mem, stage, kc, mc, kc);
  mem.fill(0, stage + mc * kc, stage + mcp * kc); // the last strip's missing rows
  inst.packA(4 * aW, 4 * stage, 4 * kc, strips, kc);
}

// B's panel (rows pc…, columns jc…) packed into 8-column strips at bW. Stored row-major, its rows go
// to WebAssembly memory one memcpy each and packB copies the strips out of them there; a panel
// source or a transposed B, the TypeScript packB.
function packBBlock(inst: Instance, B: MatRef | PanelSource, pc: number, jc: number, kc: number, nc: number, mem: Float32Array, bW: number, stage: number): void {
  if ('packB' in B || B.trans || !(B.data instanceof Float32Array)) {
    packB(B, pc, jc, kc, nc, mem, bW, NR);
    return;
  }
  const ncp = Math.ceil(nc / NR) * NR;
  // the last strip's columns past nc keep whatever the stage held: their products land in C's
  // padding columns, which are never copied out (each column of C reads only its own column of B)
  copyRows(B.data, B.offset + pc * B.ld + jc, B.ld, mem, stage, ncp, kc, nc);
  inst.packB(4 * bW, 4 * stage, 4 * ncp, ncp / NR, kc);
}


// C's columns jc … jc + nc − 1 out of the kernel's block (rows ldb apart at cW) into C laid out per
// image. A run of whole images (rows P apart in C) is first laid out at outW as C holds it, each
// image's M rows of P one after another (copyPlanes), then copied with one set per image, or one for
// the run where the images lie back to back (M·P = imageStride): a set per row cost ~40 ns however
// short, and small maps have many rows (the demo's 7×7: 32 images × 16 rows a layer). What is left
// of an image at either end of the columns: one copy of M rows.
function storeImageColumns(inst: Instance, mem: Float32Array, cW: number, ldb: number, C: Float32Array, cOff: number, ldc: number, M: number, jc: number, nc: number, im: ImageColumns, outW: number): void {
  const { P, imageStride } = im;
  const q = im.q0 + jc, block = M * P;
  let first = 0, count = 0, firstOff = 0;
  const storeRun = () => {
    if (count === 0) return;
    inst.copyPlanes(4 * outW, 4 * (cW + firstOff), count, M, P, 4 * P, 4 * ldb, 4 * P);
    if (block === imageStride) C.set(mem.subarray(outW, outW + count * block), cOff + first * imageStride);
    else for (let i = 0; i < count; i++) C.set(mem.subarray(outW + i * block, outW + (i + 1) * block), cOff + (first + i) * imageStride);
    count = 0;
  };
  forEachImage(q, q + nc, P, (n, p0, p1, off) => {
    if (p0 === 0 && p1 === P && ldc === P) {
      if (count === 0) {
        first = n;
        firstOff = off;
      }
      count++;
      return;
    }
    storeRun();
    copyRows(mem, cW + off, ldb, C, cOff + n * imageStride + p0, ldc, M, p1 - p0);
  });
  storeRun();
}

// n ≥ 1 offsets (floats) at int index `at` of kernel memory turned into bytes there (`from`: where
// they are now, copied there first; null: there already), once checked that each, and `reach`
// floats past it, lies in a region of `size` floats: every element a kernel reads or writes must,
// since an offset past it would touch other data (or trap at the end of memory) without a word.
// Returns the largest (at least 0). The offsetBytes kernel checks and converts them (~0.3 ns an
// offset; a JavaScript loop took ~2.5, 0.13 ms of the demo's step); where the check fails, the
// offsets, left as they were, are searched here for the first that leaves the region, to name it.
function offsetsInBytes(inst: Instance, from: Int32Array | null, n: number, at: number, reach: number, size: number, first: number, what: string, region: string): number {
  if (from !== null) new Int32Array(inst.memory.buffer, 4 * at, n).set(from.subarray(0, n));
  const max = inst.offsetBytes(4 * at, 4 * at, n, size - reach);
  if (max >= 0) return max;
  const ints = new Int32Array(inst.memory.buffer, 4 * at, n);
  for (let i = 0; i < n; i++) {
    const o = ints[i];
    if (!(o >= 0 && o + reach < size)) throw new Error(`gemm: ${what} ${first + i} at offset ${o} lies outside its ${region} of ${size} floats`);
  }
  throw new Error(`gemm: the offset kernel refused ${n} ${what}s that lie inside their ${region}`);
}

/**
 * C (+)= A·B for a packed A block of `strips` 4-row strips at a and a B panel of nc real columns (its
 * strips of NR at b, kc rows each), C's rows ldc floats apart from c (offsets in floats; `variant`:
 * the BLOCK_KERNELS index). Whole strips run on the block kernel; a last strip of one real column
 * (a batch of one through a Linear, a 7×7 map's 49th position) on the column kernel, of two to four on
 * the half kernel: the same bits, without the padding columns' products.
 */
export function products(inst: Instance, variant: number, a: number, b: number, c: number, strips: number, nc: number, kc: number, ldc: number, bias: number): void {
  const rem = nc % NR, tail = rem >= 1 && rem <= 4 ? rem : 0, whole = Math.ceil(nc / NR) - (tail > 0 ? 1 : 0);
  if (whole > 0) inst.blocks[variant](4 * a, 4 * b, 4 * c, strips, whole, kc, 4 * ldc, 4 * bias);
  if (tail > 0) (tail === 1 ? inst.columns : inst.halves)[variant](4 * a, 4 * (b + whole * kc * NR), 4 * (c + whole * NR), strips, 1, kc, 4 * ldc, 4 * bias);
}

/** Same contract as gemm() in ../gemm.ts, for float32 operands; `packed`, when given, is A
 * already packed (then A itself is not read); `epi`, a bias per row and/or ReLU applied to the result;
 * `scatter`, where the product goes instead of C (then C is not written and accumulate is false);
 * `images`, C's columns laid out per image (not accumulating). */
export function gemmSimd(
  M: number, N: number, K: number, A: MatRef, B: MatRef | PanelSource,
  C: Float32Array, cOff: number, ldc: number, accumulate: boolean | 'plus', packed?: PackedA, epi?: RowEpilogue, scatter?: ScatterTarget,
  images?: ImageColumns, splitK = 0,
): void {
  // 'plus': the product computed as if not accumulating, C's old block kept beside it and added at
  // the end; splitK: the terms from splitK on summed from zero (a panel starts there), the sum so
  // far kept beside it and added at the end
  const plus = accumulate === 'plus', load = accumulate === true, split = splitK > 0 && splitK < K ? splitK : 0;
  if (split > 0 && (plus || packed !== undefined || epi !== undefined || scatter !== undefined || images !== undefined)) throw new Error('gemm: a sum split at a term takes no prepared A, epilogue, scatter or image columns');
  const Mp = Math.ceil(M / MR) * MR;
  const inst = getInstance();
  const at = packed === undefined || !packed.panels.kept ? -1 : resident(packed.panels); // before the scratch layout: it may move the arena's end
  const bias = epi?.bias ?? null, relu = epi?.relu ?? false;
  const last = (bias !== null ? 2 : 0) + (relu ? 1 : 0); // the epilogue's bits of the block kernel index
  // memory layout (floats), above the arena: [a gathered B's source | its row offsets | its column
  // offsets] [a scatter target | its staging | its row offsets | its column offsets] [A whole]
  // C block Mp × ldb (blockStride) | B panel ncp × KC | A block MC × KC | bias Mp | A's rows staged MC × KC |
  // [B's rows staged ncp × KC, when B is not gathered] [C's images as C holds them Mp × ncp, when
  // C is laid out per image]. Every region starts at a multiple of 4 floats (the arena ends at one):
  // V8 copies to or from shared memory (a model's arrays on two threads) word by word only where both
  // sides lie alike modulo 8 bytes, else byte by byte; A0's stem (K = 27 offsets below C) wrote its
  // 2.4 MB output into shared activations in 1.46 ms that way, 0.98 ms aligned.
  const g = 'packB' in B ? B.gather : undefined, t = scatter;
  const up4 = (n: number) => Math.ceil(n / 4) * 4;
  const srcW = inst.arenaEnd;
  const tapsW = srcW + (g === undefined ? 0 : up4(g.size)), colsW = tapsW + (g === undefined ? 0 : up4(K));
  const tW = colsW + (g === undefined ? 0 : NC), tStageW = tW + (t === undefined ? 0 : up4(t.size));
  const tRowsW = tStageW + (t === undefined ? 0 : up4(t.staging)), tColsW = tRowsW + (t === undefined ? 0 : up4(M));
  const aSrcW = tColsW + (t === undefined ? 0 : NC), aWhole = packed === undefined ? wholeA(M, K, A) : 0;
  const cW = aSrcW + up4(aWhole), bW0 = cW;
  let mem = floats(cW), maxTap = 0, maxRow = 0;
  if (A.images !== undefined && (aWhole === 0 || packed !== undefined)) throw new Error('gemm: an A laid out per image is taken whole or not at all (takesImageRows)');
  const ald = A.images !== undefined ? K : A.ld; // A whole's row stride in kernel memory
  if (A.images !== undefined) {
    imageRowsIn(inst, A, M, K, aSrcW, cW);
    mem = inst.f32;
  } else if (aWhole > 0) {
    const span = A.trans ? (K - 1) * A.ld + M : (M - 1) * A.ld + K;
    mem.set(A.data.subarray(A.offset, A.offset + span), aSrcW);
    mem.fill(0, aSrcW + span, aSrcW + aWhole); // what the last strip reads past A's last row
    simdStats.bytesCopied += 4 * span;
  }
  if (g !== undefined) {
    g.load(mem, srcW, padder(inst, srcW, g.size, 'gemm'));
    simdStats.bytesCopied += 4 * g.size;
    maxTap = offsetsInBytes(inst, g.taps, K, tapsW, 0, g.size, 0, 'gathered row', 'source');
  }
  if (t !== undefined) {
    if (accumulate !== false) throw new Error('gemm: a scatter target takes the product, not a sum onto C');
    mem.fill(0, tW, tW + t.size);
    maxRow = offsetsInBytes(inst, t.rows, M, tRowsW, 0, t.size, 0, 'scattered row', 'target');
  }
  for (let jc = 0, nc = 0; jc < N; jc += nc) {
    nc = t === undefined ? Math.min(NC, N - jc) : t.blockEnd(jc, NC) - jc;
    const ncp = Math.ceil(nc / NR) * NR, ldb = blockStride(ncp);
    const bW = bW0 + Mp * ldb, aW = bW + ncp * KC, biasW = aW + MC * KC, stageA = biasW + Mp, stageB = stageA + MC * KC;
    const outW = stageB + (g === undefined ? ncp * KC : 0), oldW = outW + (images === undefined ? 0 : Mp * ncp), end = oldW + (plus || split > 0 ? Mp * ldb : 0);
    mem = scratchAbove(end - srcW); // srcW: the arena's end
    if (g !== undefined) {
      const ints = new Int32Array(mem.buffer, 4 * colsW, ncp);
      g.cols(jc, nc, ints);
      ints.fill(ints[nc - 1], nc, ncp); // the padding columns read a real one (their results are dropped)
      offsetsInBytes(inst, null, ncp, colsW, maxTap, g.size, jc, 'gathered column', 'source');
    }
    if (t !== undefined) {
      const ints = new Int32Array(mem.buffer, 4 * tColsW, nc);
      t.cols(jc, nc, ints);
      offsetsInBytes(inst, null, nc, tColsW, maxRow, t.size, jc, 'scattered column', 'target');
    }
    // rows of C in (when accumulating; otherwise the first panel stores)
    if (load) copyRows(C, cOff + jc, ldc, mem, cW, ldb, M, nc);
    if (plus) copyRows(C, cOff + jc, ldc, mem, oldW, ldb, M, nc);
    if (bias !== null) mem.set(bias.subarray(epi!.biasOff, epi!.biasOff + M), biasW);
    for (let pc = 0, kc = 0; pc < K; pc += kc) {
      kc = Math.min(KC, K - pc, pc < split ? split - pc : KC);
      if (pc === split && split > 0) inst.copyPlanes(4 * oldW, 4 * cW, 1, 1, M * ldb, 0, 0, 0); // the first sum aside
      const fresh = pc === 0 ? !load : pc === split;
      const variant = (fresh ? 0 : 4) + (pc + kc >= K ? last : 0);
      if (g === undefined) packBBlock(inst, B, pc, jc, kc, nc, mem, bW, stageB);
      else inst.gather(4 * bW, 4 * srcW, 4 * colsW, 4 * (tapsW + pc), kc, ncp / NR);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = Math.min(MC, M - ic);
        // the strips of rows row0 + ic … of block pc, where the packed operand keeps them
        const src = packed === undefined ? 0 : packed.offset + pc * packed.rowsPadded + (packed.row0 + ic) * kc;
        let a = aW;
        if (aWhole > 0) (A.trans ? inst.packAT : inst.packA)(4 * aW, 4 * (aSrcW + (A.trans ? pc * ald + ic : ic * ald + pc)), 4 * ald, Math.ceil(mc / MR), kc);
        else if (packed === undefined) packABlock(inst, A, ic, pc, mc, kc, mem, aW, stageA);
        else if (at >= 0) a = at + src;
        else mem.set(packed.panels.data.subarray(src, src + Math.ceil(mc / MR) * MR * kc), aW);
        products(inst, variant, a, bW, cW + ic * ldb, Math.ceil(mc / MR), nc, kc, ldb, biasW + ic);
      }
    }
    if (plus || split > 0) inst.copyPlanesAdd(4 * cW, 4 * oldW, 1, 1, M * ldb, 0, 0, 0); // the padding columns' sums are dropped
    if (t !== undefined) inst.scatterAdd(4 * tW, 4 * cW, 4 * tRowsW, 4 * tColsW, M, nc, 4 * ldb);
    else if (images === undefined) copyRows(mem, cW, ldb, C, cOff + jc, ldc, M, nc);
    else storeImageColumns(inst, mem, cW, ldb, C, cOff, ldc, M, jc, nc, images, outW);
    // C in (when accumulating) and out; each panel of B and block of A in (A whole: above); the bias
    simdStats.bytesCopied += 4 * (M * nc * (accumulate !== false ? 2 : t === undefined ? 1 : 0) + (g === undefined ? ncp * K : 0) + (at >= 0 || aWhole > 0 ? 0 : Mp * K) + (bias === null ? 0 : M));
  }
  if (t !== undefined) {
    const take = (kernel: Instance['copyPlanes']) => taker(kernel, tW, t.size, tStageW, t.staging, 'gemm', 'scatter target');
    t.store(mem, tW, tStageW, take(inst.copyPlanes), take(inst.copyPlanesAdd));
  }
}
