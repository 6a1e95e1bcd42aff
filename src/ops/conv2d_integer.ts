// The integer convolution of INT8 graphs (QLinearConv, ConvInteger): y[n, f, o] = Σ_{c,k}
// x[n, c, o·s − p + k·d]·w[f, c, k], each operand an 8-bit value less its zero point (so |x|, |w| ≤
// 255), every sum exact. By im2col onto the integer GEMM (gemmInt16: 32-bit sums on the SIMD kernel,
// float64 on the reference), one image, group and block of output positions at a time.
import { INT16_GEMM_MAX_K, type Int16Rows, gemmInt16 } from '../backend/gemm.js';
import { type ConvGeometry, type Padding, type Pair, convGeometry } from './conv2d_geometry.js';
import { collectOutput, defineKernel, getThreads, parallel, partRange, partsFor, shareOutput } from '../backend/threads.js';

/** Whether conv2dInteger takes weights of this shape (F, C/groups, kH, kW): its sums stay within int32. */
export function conv2dIntegerApplies(wShape: readonly number[]): boolean {
  return wShape[1] * wShape[2] * wShape[3] <= INT16_GEMM_MAX_K;
}

/** im2col's block: at most this many 16-bit values (8 MiB), in whole strips of 8 positions. */
const BLOCK_VALUES = 2 ** 22;

interface IntegerConvArgs {
  g: ConvGeometry;
  x: Int16Array;
  w: Int16Array;
  y: Float64Array;
  /** output positions per block */
  block: number;
}

// The items n·groups·blocks + gi·blocks + b in [i0, i1): image n, group gi, block b of positions,
// each an im2col block onto the integer GEMM
function integerItems(a: IntegerConvArgs, i0: number, i1: number): void {
  const { g, x, w, y, block } = a;
  const { C, H, W, F, KH, KW, Cg, Fg, Ho, Wo } = g;
  const K = Cg * KH * KW, P = Ho * Wo, blocks = Math.ceil(P / block);
  const rows = new Map<number, Int16Rows>(); // each group's filters, packed once per part
  // a 1×1 conv of stride 1 without padding reads x as it lies: its columns are x's positions
  const pointwise = KH === 1 && KW === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pb === 0 && g.pl === 0 && g.pr === 0;
  const cols = pointwise ? null : new Int16Array(K * block);
  for (let i = i0; i < i1; i++) {
    const n = Math.floor(i / (g.groups * blocks)), gi = Math.floor(i / blocks) % g.groups, p0 = (i % blocks) * block, p1 = Math.min(P, p0 + block);
    let r = rows.get(gi);
    if (r === undefined) rows.set(gi, r = { data: w, offset: gi * Fg * K, M: Fg, K });
    const x0 = (n * C + gi * Cg) * H * W;
    if (cols === null) gemmInt16(r, p1 - p0, x, x0 + p0, P, y, (n * F + gi * Fg) * P + p0, P);
    else {
      im2colInteger(x, x0, g, p0, p1, cols);
      gemmInt16(r, p1 - p0, cols, 0, p1 - p0, y, (n * F + gi * Fg) * P + p0, P);
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

// cols[(c·KH + ky)·KW + kx, p − p0] = x[c, oy·sh − pt + ky·dh, ox·sw − pl + kx·dw] for the output
// positions p = oy·Wo + ox in [p0, p1), 0 outside the image (the padding). (Loops, not fill: a row
// here is often a few dozen values, its padding one or two, and a fill call costs more than that.)
function im2colInteger(x: Int16Array, x0: number, g: ConvGeometry, p0: number, p1: number, cols: Int16Array): void {
  const { H, W, Cg, KH, KW, sh, sw, dh, dw, pt, pl, Wo } = g;
  const L = p1 - p0, oyA = Math.floor(p0 / Wo), oyB = Math.floor((p1 - 1) / Wo); // the output rows the block touches
  for (let c = 0; c < Cg; c++) {
    for (let ky = 0; ky < KH; ky++) {
      for (let kx = 0; kx < KW; kx++) {
        const row = ((c * KH + ky) * KW + kx) * L - p0, dx = kx * dw - pl;
        // the output columns whose input column lies inside the image: ox0 ≤ ox < ox1
        const ox0 = Math.min(Wo, Math.max(0, Math.ceil(-dx / sw))), ox1 = Math.max(ox0, Math.min(Wo, Math.floor((W - 1 - dx) / sw) + 1));
        for (let oy = oyA; oy <= oyB; oy++) {
          const a = oy === oyA ? p0 - oy * Wo : 0, b = oy === oyB ? p1 - oy * Wo : Wo; // this row's columns a … b − 1
          const r = row + oy * Wo, iy = oy * sh - pt + ky * dh, inside = iy >= 0 && iy < H;
          const lo = inside ? Math.min(b, Math.max(a, ox0)) : b, hi = inside ? Math.max(lo, Math.min(b, ox1)) : b;
          for (let i = r + a; i < r + lo; i++) cols[i] = 0;
          const src = x0 + (c * H + iy) * W + dx;
          if (sw === 1) for (let ox = lo; ox < hi; ox++) cols[r + ox] = x[src + ox];
          else for (let ox = lo; ox < hi; ox++) cols[r + ox] = x[src + ox * sw];
          for (let i = r + hi; i < r + b; i++) cols[i] = 0;
        }
      }
    }
  }
}
