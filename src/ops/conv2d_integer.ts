// The integer convolution of INT8 graphs (QLinearConv, ConvInteger): y[n, f, o] = Σ_{c,k}
// x[n, c, o·s − p + k·d]·w[f, c, k], each operand an 8-bit value less its zero point (so |x|, |w| ≤
// 255), every sum exact. As im2col onto the integer GEMM (gemmInt16: 32-bit sums on the SIMD kernel,
// float64 on the reference), the matrix gathered from zero-padded planes by offsets, one image, group
// and block of output positions at a time.
import { INT16_GEMM_MAX_K, type Int16Gather, type Int16Rows, gemmInt16 } from '../backend/gemm.js';
import { type ConvGeometry, type Padding, type Pair, convGeometry } from './conv2d_geometry.js';
import { collectOutput, defineKernel, getThreads, parallel, partRange, partsFor, shareOutput } from '../backend/threads.js';

/** Whether conv2dInteger takes weights of this shape (F, C/groups, kH, kW): its sums stay within int32. */
export function conv2dIntegerApplies(wShape: readonly number[]): boolean {
  return wShape[1] * wShape[2] * wShape[3] <= INT16_GEMM_MAX_K;
}

/** A block's im2col matrix: at most this many 16-bit values (8 MiB, never written out: the GEMM packs
 * it as it gathers), in whole strips of 8 positions. */
const BLOCK_VALUES = 2 ** 22;

interface IntegerConvArgs {
  g: ConvGeometry;
  x: Int16Array;
  w: Int16Array;
  y: Float64Array;
  /** output positions per block */
  block: number;
}

/** Each group's filters as the GEMM's A (by offset in w), kept with w: the SIMD kernel packs A on first
 * use and keeps the packing on it, so filters that come back (an INT8 graph's, run after run) are
 * packed once. A w changed after a call would keep its old packing: callers pass weights they never
 * change (ops_quant keeps its shifted copy of a graph's weights). */
const FILTER_ROWS = new WeakMap<Int16Array, Map<number, Int16Rows>>();

function filterRows(w: Int16Array): Map<number, Int16Rows> {
  let rows = FILTER_ROWS.get(w);
  if (rows === undefined) FILTER_ROWS.set(w, rows = new Map());
  return rows;
}

// The items n·groups·blocks + gi·blocks + b in [i0, i1): image n, group gi, block b of positions,
// each a GEMM of the group's filters by the im2col matrix of the block, gathered from the image's
// zero-padded planes (never written out), or x itself for a 1×1 conv of stride 1 without padding
function integerItems(a: IntegerConvArgs, i0: number, i1: number): void {
  const { g, x, w, y, block } = a;
  const { C, H, W, F, KH, KW, Cg, Fg, Ho, Wo, sh, sw, dh, dw, pt, pb, pl, pr } = g;
  const K = Cg * KH * KW, P = Ho * Wo, blocks = Math.ceil(P / block);
  const rows = filterRows(w);
  const pointwise = KH === 1 && KW === 1 && sh === 1 && sw === 1 && pt === 0 && pb === 0 && pl === 0 && pr === 0;
  // B gathered from planes Hp × Wp (every tap of every output position lies inside: the conv's output
  // size says so) by the taps' offsets and each block's columns; none for a 1×1 conv that reads x
  const Hp = H + pt + pb, Wp = W + pl + pr;
  const B: Int16Gather | null = pointwise ? null : {
    src: new Int16Array(Cg * Hp * Wp),
    taps: Int32Array.from({ length: K }, (_, k) => {
      const c = Math.floor(k / (KH * KW)), ky = Math.floor(k / KW) % KH, kx = k % KW;
      return (c * Hp + ky * dh) * Wp + kx * dw;
    }),
    cols: new Int32Array(block),
  };
  let loaded = -1; // the (image, group) whose planes are in B.src
  for (let i = i0; i < i1; i++) {
    const n = Math.floor(i / (g.groups * blocks)), gi = Math.floor(i / blocks) % g.groups, p0 = (i % blocks) * block, p1 = Math.min(P, p0 + block);
    let r = rows.get(gi * Fg * K);
    if (r === undefined || r.M !== Fg || r.K !== K) rows.set(gi * Fg * K, r = { data: w, offset: gi * Fg * K, M: Fg, K });
    const x0 = (n * C + gi * Cg) * H * W, yAt = (n * F + gi * Fg) * P + p0;
    if (B === null) {
      gemmInt16(r, p1 - p0, x, x0 + p0, P, y, yAt, P);
      continue;
    }
    if (loaded !== n * g.groups + gi) {
      padPlanesInteger(x, x0, Cg, H, W, B.src, pt, pl, Hp, Wp);
      loaded = n * g.groups + gi;
    }
    for (let p = p0; p < p1; p++) {
      const oy = Math.floor(p / Wo);
      B.cols[p - p0] = oy * sh * Wp + (p - oy * Wo) * sw;
    }
    gemmInt16(r, p1 - p0, B, 0, 0, y, yAt, P);
  }
}

// planes[c, pt + iy, pl + ix] = x[x0 + (c·H + iy)·W + ix]; the border stays as it was made (zeros)
function padPlanesInteger(x: Int16Array, x0: number, Cg: number, H: number, W: number, planes: Int16Array, pt: number, pl: number, Hp: number, Wp: number): void {
  for (let c = 0; c < Cg; c++) {
    for (let iy = 0; iy < H; iy++) {
      const src = x0 + (c * H + iy) * W, dst = (c * Hp + pt + iy) * Wp + pl;
      if (W >= 32) planes.set(x.subarray(src, src + W), dst);
      else for (let ix = 0; ix < W; ix++) planes[dst + ix] = x[src + ix];
    }
  }
}

const integerKernel = defineKernel('integer.conv', (a: IntegerConvArgs, part: number, parts: number) => {
  const [i0, i1] = partRange(a.g.N * a.g.groups * Math.ceil(a.g.Ho * a.g.Wo / a.block), part, parts);
  integerItems(a, i0, i1);
});

// 16-bit operands where the pool's workers see them
function sharedInt16(a: Int16Array): Int16Array {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const s = new Int16Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}

// x: (N, C, H, W), w: (F, C/groups, kH, kW), both within ±255 → y: (N, F, Ho, Wo), the exact sums,
// into `out` (N·F·Ho·Wo values) when given. Threads take whole blocks of positions (the same values
// whoever sums them: integer sums are exact).
export function conv2dInteger(
  x: Int16Array, xShape: readonly number[], w: Int16Array, wShape: readonly number[],
  opts: { stride?: Pair; padding?: Padding; dilation?: Pair; groups?: number }, out?: Float64Array,
): { data: Float64Array; shape: number[] } {
  const g = convGeometry(xShape, wShape, opts);
  const { N, C, H, W, F, KH, KW, groups, Cg, Ho, Wo } = g;
  const K = Cg * KH * KW, P = Ho * Wo;
  if (K > INT16_GEMM_MAX_K) throw new Error(`conv2d: sums of ${K} terms could overflow 32 bits (at most ${INT16_GEMM_MAX_K})`);
  if (x.length !== N * C * H * W || w.length !== F * K) throw new Error('conv2d: the integer operands do not match their shapes');
  const y = out ?? new Float64Array(N * F * P);
  if (y.length !== N * F * P) throw new Error(`conv2d: out holds ${y.length} values for an output of ${N * F * P}`);
  const macs = N * F * P * K, threads = getThreads();
  let block = Math.min(P, Math.max(8, Math.floor(BLOCK_VALUES / Math.max(1, K) / 8) * 8));
  // enough blocks for every thread even at one image of one group
  if (threads > 1 && N * groups < threads) block = Math.min(block, Math.max(8, Math.ceil(P / threads / 8) * 8));
  const items = N * groups * Math.ceil(P / block), parts = partsFor(macs, items);
  if (parts === 1) {
    integerItems({ g, x, w, y, block }, 0, items);
    return { data: y, shape: [N, F, Ho, Wo] };
  }
  const ys = shareOutput('conv.integer.y', y);
  parallel(integerKernel, { g, x: sharedInt16(x), w: sharedInt16(w), y: ys, block }, parts);
  collectOutput(ys, y);
  return { data: y, shape: [N, F, Ho, Wo] };
}
