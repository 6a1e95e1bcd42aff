// Winograd's F(4×4) transforms on WebAssembly SIMD: where the input tiles come from and where V goes,
// where the products come from and where the output tiles go; the kernels are in winograd_simd.ts.

import { type Instance, type Panels, getInstance, resident, scratchAbove, simdStats } from './instance.js';
import { padder, taker } from './gather.js';
import { KC, MC, NR, products } from './gemm_simd.js';
import type { WinogradOutput, WinogradOutputTiles, WinogradSource } from '../gemm_contract.js';

const up4 = (n: number): number => Math.ceil(n / 4) * 4;

// touchLines before each block of kept filters (one load from each of its cache lines) pays where a
// core's hardware prefetchers fall behind the filters' stream and costs where they keep up. A0's
// forward at batch 1 on one thread: 39.4–40.4 → 34.6–34.9 ms with it on an Intel Xeon VM (~7 GB/s read
// by a core), 4.5–5.7% slower with it on an AMD EPYC VM (~24 GB/s; forwards alternating in a process).
// So each thread finds out from its own calls, the bits being the same either way (it only loads):
// the first calls of each product loop (its filters and shape) alternate without and with, each timed
// but the first (it follows the filters' copy into the arena, which leaves them warm in the cache);
// once the loops whose filters are in the arena have run TOUCH_TRIAL_CALLS each way, the way whose
// fastest calls sum lower over them is kept from then on (filters released from the arena were
// 'auto''s candidates, timed call after call on warm caches, where touching only costs).
// setTouchAhead pins it.
const TOUCH_TRIAL_CALLS = 48;
interface TouchTrial { panels: Panels; calls: number; fastest: [number, number] } // fastest ms, [without, with]
/** per product loop (its filters and shape) */
const touchTrials = new Map<string, TouchTrial>();
let touchChoice: boolean | undefined;

/** Pins whether this thread's Winograd product loops touch their next block of kept filters (true,
 * false), or lets the trial above decide ('auto': it starts over). */
export function setTouchAhead(mode: boolean | 'auto'): void {
  touchChoice = mode === 'auto' ? undefined : mode;
  touchTrials.clear();
}

/** What this thread's product loops do: touch or not, or undefined while the trial runs. */
export function touchAhead(): boolean | undefined {
  return touchChoice;
}

/** The trial so far: each loop's fastest calls without and with (ms; Infinity before its first that way). */
export function touchTrialTimes(): [number, number][] {
  return [...touchTrials.values()].map((t) => [t.fastest[0], t.fastest[1]]);
}

/** The trial's verdict: touch when, over the loops timed both ways, the fastest calls with it sum lower. */
export function touchWins(fastest: readonly (readonly [number, number])[]): boolean {
  let without = 0, withTouch = 0;
  for (const [a, b] of fastest) if (a < Infinity && b < Infinity) { without += a; withTouch += b; }
  return withTouch < without;
}

// Floats of scratch the input transform takes above V (the padded source, the tiles) and
// the output pass above M (the tiles, the bias, the output block).
const inputScratch = (s: WinogradSource): number => up4(s.size) + up4(s.tiles.length);
const outputScratch = (o: WinogradOutputTiles): number => up4(o.tiles.length) + up4(o.channels) + up4(o.outFloats) + o.staging;

// The input transform of s into V at vW (floats) of the kernel's memory, its scratch from `at` on
// (the memory already holds both). Every tile's offsets are checked first: the kernel trusts them.
function inputTransformAt(inst: Instance, s: WinogradSource, vW: number, at: number): void {
  const srcW = at, tilesW = srcW + up4(s.size);
  const mem = inst.f32;
  const reach = (s.channels - 1) * s.planeStride + 5 * s.rowStride + 5; // the last float a tile's windows read
  const vReach = 35 * s.kStride + (s.channels - 1) * s.channelStride + 3; // and the last a quad writes
  const ints = new Int32Array(mem.buffer);
  for (let i = 0; i < s.tiles.length; i++) {
    const o = s.tiles[i], place = i % 5 === 4;
    if (!(o >= 0 && o + (place ? vReach : reach) < (place ? s.vFloats : s.size))) throw new Error(`winograd: tile quad ${Math.floor(i / 5)} at offset ${o} lies outside its ${place ? 'output' : 'source'}`);
    ints[tilesW + i] = 4 * (place ? o : srcW + o);
  }
  s.load(mem, srcW, padder(inst, srcW, s.size, 'winograd'));
  inst.winogradInput(4 * vW, 0, 4 * tilesW, s.tiles.length / 5, s.channels, 4 * s.planeStride, 4 * s.rowStride, 4 * s.kStride, 4 * s.channelStride);
  simdStats.bytesCopied += 4 * s.size;
}

// The output pass of o from M at mW (M_k `kFloats` apart, rows `rowLength` apart), its scratch from `at` on.
function outputPassAt(inst: Instance, o: WinogradOutputTiles, mW: number, kFloats: number, rowLength: number, at: number): void {
  const tilesW = at, biasW = tilesW + up4(o.tiles.length), outW = biasW + up4(o.channels), stageW = outW + up4(o.outFloats);
  const mem = inst.f32;
  const ints = new Int32Array(mem.buffer);
  const reach = (o.channels - 1) * o.planeStride + 3 * o.rowStride + 3; // the last float a tile writes
  for (let i = 0; i < o.tiles.length; i++) {
    const v = o.tiles[i], inM = i % 5 === 0;
    if (!(v >= 0 && (inM ? v + 3 < rowLength : v + reach < o.outFloats))) throw new Error(`winograd: tile quad ${Math.floor(i / 5)} at offset ${v} lies outside its ${inM ? 'products' : 'output'}`);
    ints[tilesW + i] = 4 * v;
  }
  if (o.bias === null) mem.fill(0, biasW, biasW + o.channels);
  else mem.set(o.bias.subarray(o.biasOffset, o.biasOffset + o.channels), biasW);
  inst.winogradOutput[o.relu ? 1 : 0](4 * mW, 4 * tilesW, o.tiles.length / 5, o.channels, 4 * kFloats, 4 * rowLength, 4 * biasW, 4 * outW, 4 * o.planeStride, 4 * o.rowStride);
  o.store(mem, outW, stageW, taker(inst.copyPlanes, outW, o.outFloats, stageW, o.staging, 'winograd', 'output block'));
  simdStats.bytesCopied += 4 * o.outFloats;
}

/**
 * F(4×4, 3×3)'s V = Bᵀ d B for every quad of tiles and channel (winograd_simd.ts) into V at vOff (float32),
 * laid out as `s` says: bit for bit the TypeScript transform's values.
 */
export function winogradInputSimd(s: WinogradSource, V: Float32Array, vOff: number): void {
  const inst = getInstance();
  const vW = inst.arenaEnd;
  scratchAbove(up4(s.vFloats) + inputScratch(s));
  inputTransformAt(inst, s, vW, vW + up4(s.vFloats));
  V.set(inst.f32.subarray(vW, vW + s.vFloats), vOff);
  simdStats.bytesCopied += 4 * s.vFloats;
}

/**
 * F(4×4, 3×3)'s Y = Aᵀ M A + bias (and ReLU) for every quad of tiles and channel (winograd_simd.ts):
 * bit for bit what the TypeScript output pass stores.
 */
export function winogradOutputSimd(o: WinogradOutput): void {
  const inst = getInstance();
  const mFloats = 36 * o.channels * o.rowLength, mW = inst.arenaEnd;
  scratchAbove(up4(mFloats) + outputScratch(o));
  inst.f32.set(o.M.subarray(o.mOffset, o.mOffset + mFloats), mW);
  simdStats.bytesCopied += 4 * mFloats;
  outputPassAt(inst, o, mW, o.channels * o.rowLength, o.rowLength, mW + up4(mFloats));
}

/**
 * One block of F(4×4, 3×3) tiles with V and M kept in the kernel's memory: V = Bᵀ d B (s, V in the
 * GEMM's panels: the quads' tiles as columns in whole strips, V_k s.kStride apart), M_k = U_k · V_k
 * for k < 36 (U: the prepared blocks firstBlock … firstBlock + 35 of `filters`, from row row0,
 * o.channels rows), then Y = Aᵀ M A + bias (o). The same kernels on the same values as
 * winogradInputSimd, 36 GEMMs and winogradOutputSimd, so the same bits, without V and M crossing
 * into JavaScript arrays and back (4 copies of each; at batch 1 A0's 192→192 layers spent ~15% of
 * their time in them).
 */
export function winogradTilesSimd(s: WinogradSource, filters: { panels: Panels; rowsPadded: number }, firstBlock: number, row0: number, o: WinogradOutputTiles): void {
  const inst = getInstance();
  const at = filters.panels.kept ? resident(filters.panels) : -1; // before the layout: it may move the arena's end
  const used = s.tiles.length / 5 * 4; // V's columns the output pass reads (the quads' tiles)
  const Cg = s.channels, cols = Math.ceil(used / NR) * NR, Fp = o.channels, Mp = up4(Fp);
  if (!(s.kStride >= Cg * cols && Cg <= KC && s.channelStride === NR)) throw new Error(`winograd: V of ${Cg} channels and ${cols} columns (V_k ${s.kStride} floats apart) is not in the GEMM's panels`);
  // M_k one cache line further apart than their size: the output pass reads a quad's 36 values at
  // one offset in each, and at a multiple of 4 KiB apart (192 rows of 16 columns: 12 KiB) they all
  // fall in one set of the L1 cache
  const mK = Mp * cols + 16;
  const vW = inst.arenaEnd, mW = vW + up4(s.vFloats), aW = mW + 36 * mK;
  const scratchW = aW + (at >= 0 ? 0 : Mp * Cg);
  scratchAbove(scratchW - vW + Math.max(inputScratch(s), outputScratch(o)));
  inputTransformAt(inst, s, vW, scratchW);
  const mem = inst.f32;
  // touch or not (see touchWins): the trial's turn for this loop, until it has decided
  let trial: TouchTrial | undefined, touch = touchChoice ?? false;
  if (at >= 0 && touchChoice === undefined) {
    const key = `${filters.panels.id},${firstBlock},${row0},${Fp},${used}`;
    trial = touchTrials.get(key);
    if (trial === undefined) touchTrials.set(key, trial = { panels: filters.panels, calls: 0, fastest: [Infinity, Infinity] });
    touch = trial.calls % 2 === 1;
  }
  const t0 = trial === undefined ? 0 : performance.now();
  for (let k = 0; k < 36; k++) {
    const src = (firstBlock + k) * filters.rowsPadded * Cg + row0 * Cg; // rows row0 … of block k (one KC block: Cg ≤ KC)
    if (!(src >= 0 && src + Mp * Cg <= filters.panels.data.length)) throw new Error(`winograd: filter rows ${row0}…${row0 + Fp - 1} of block ${firstBlock + k} lie outside the prepared filters`);
    let a = at + src;
    if (at < 0) {
      mem.set(filters.panels.data.subarray(src, src + Mp * Cg), aW);
      simdStats.bytesCopied += 4 * Mp * Cg;
      a = aW;
    }
    for (let ic = 0; ic < Fp; ic += MC) {
      // the next block of U started on its way in first, where that pays (touchWins): kept filters
      // stream from memory in a large model's forward at batch 1
      if (touch && at >= 0) {
        const nextIc = ic + MC < Fp ? ic + MC : 0, nextK = ic + MC < Fp ? k : k + 1;
        const next = (firstBlock + nextK) * filters.rowsPadded * Cg + (row0 + nextIc) * Cg, bytes = 4 * Math.min(MC, Mp - nextIc) * Cg;
        if (nextK < 36 && next + bytes / 4 <= filters.panels.data.length) inst.touchLines(4 * (at + next), bytes);
      }
      // a product stored, no epilogue (variant 0)
      products(inst, 0, a + ic * Cg, vW + k * s.kStride, mW + k * mK + ic * cols, Math.ceil(Math.min(MC, Fp - ic) / 4), used, Cg, cols, 0);
    }
  }
  if (trial !== undefined) {
    const way = touch ? 1 : 0;
    if (trial.calls > 0) trial.fastest[way] = Math.min(trial.fastest[way], performance.now() - t0);
    trial.calls++;
    // the loops whose filters are in the arena now: not 'auto''s candidates (released after their
    // timing), and those of a model larger than the arena once their turn to be resident comes again
    const kept = [...touchTrials.values()].filter((t) => inst.arena.has(t.panels.id));
    let calls = 0;
    for (const t of kept) calls += t.calls;
    // calls / 2 each way, give or take one per loop
    if (calls >= 2 * TOUCH_TRIAL_CALLS + kept.length) {
      touchChoice = touchWins(kept.map((t) => t.fastest));
      touchTrials.clear();
    }
  }
  outputPassAt(inst, o, mW, mK, cols, scratchW);
}

/** Floats of kernel scratch a chunk of filters may take (w in, U out): bounds what the transform grows memory by. */
const FILTER_CHUNK_FLOATS = 1 << 18;

/**
 * F(4×4, 3×3)'s U = G g Gᵀ of w (F, C/g, 3, 3) into U (groups, 36, F/g, C/g) (winograd_simd.ts): bit
 * for bit what winogradWeights computes in TypeScript. Filters go through in chunks of one group.
 */
export function winogradFiltersSimd(w: Float32Array, F: number, Cg: number, groups: number, U: Float32Array): void {
  const inst = getInstance();
  const Fg = F / groups;
  const chunk = Math.max(1, Math.min(Fg, Math.floor(FILTER_CHUNK_FLOATS / (45 * Cg))));
  const wW = inst.arenaEnd, uW = wW + Math.ceil((chunk * Cg * 9) / 4) * 4, end = uW + chunk * Cg * 36;
  const mem = scratchAbove(end - wW);
  for (let gi = 0; gi < groups; gi++) {
    for (let f0 = 0; f0 < Fg; f0 += chunk) {
      const n = Math.min(chunk, Fg - f0);
      mem.set(w.subarray((gi * Fg + f0) * Cg * 9, (gi * Fg + f0 + n) * Cg * 9), wW);
      inst.winogradFilters(4 * wW, 4 * uW, n, Cg, 4 * n * Cg);
      for (let k = 0; k < 36; k++) U.set(mem.subarray(uW + k * n * Cg, uW + (k + 1) * n * Cg), ((gi * 36 + k) * Fg + f0) * Cg);
    }
  }
  simdStats.bytesCopied += 4 * F * Cg * 45;
}
