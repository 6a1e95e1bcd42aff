// Winograd's F(4×4) transforms on WebAssembly SIMD: where the input tiles come from and where V goes,
// where the products come from and where the output tiles go; the kernels are in winograd_simd.ts.

import { floats, getInstance, simdStats } from './instance.js';
import { placer } from './gather.js';
import type { WinogradOutput, WinogradSource } from '../gemm_contract.js';

/**
 * F(4×4, 3×3)'s V = Bᵀ d B for every tile pair and channel (winograd_simd.ts) into V at vOff (float32),
 * laid out as `s` says: bit for bit the TypeScript transform's values.
 */
export function winogradInputSimd(s: WinogradSource, V: Float32Array, vOff: number): void {
  const inst = getInstance();
  const pairs = s.tiles.length / 3;
  const srcW = inst.arenaEnd, stageW = srcW + Math.ceil(s.size / 4) * 4, tilesW = stageW + Math.ceil(s.staging / 4) * 4;
  const vW = tilesW + Math.ceil(s.tiles.length / 4) * 4, end = vW + s.vFloats;
  inst.scratch = Math.max(inst.scratch, end - srcW);
  const mem = floats(end);
  const reach = (s.channels - 1) * s.planeStride + 5 * s.rowStride + 5; // the last float a tile's windows read
  const vReach = 35 * s.kStride + (s.channels - 1) * s.channelStride + 1; // and the last a pair writes
  const ints = new Int32Array(mem.buffer);
  for (let i = 0; i < s.tiles.length; i++) {
    const o = s.tiles[i], place = i % 3 === 2;
    if (!(o >= 0 && o + (place ? vReach : reach) < (place ? s.vFloats : s.size))) throw new Error(`winograd: tile pair ${Math.floor(i / 3)} at offset ${o} lies outside its ${place ? 'output' : 'source'}`);
    ints[tilesW + i] = 4 * (place ? o : srcW + o);
  }
  s.load(mem, srcW, stageW, placer(inst, srcW, s.size, stageW, s.staging, 'winograd'));
  inst.winogradInput(4 * vW, 0, 4 * tilesW, pairs, s.channels, 4 * s.planeStride, 4 * s.rowStride, 4 * s.kStride, 4 * s.channelStride);
  V.set(mem.subarray(vW, end), vOff);
  simdStats.bytesCopied += 4 * (s.staging + s.vFloats);
}

/**
 * F(4×4, 3×3)'s Y = Aᵀ M A + bias (and ReLU) for every tile pair and channel (winograd_simd.ts):
 * bit for bit what the TypeScript output pass stores.
 */
export function winogradOutputSimd(o: WinogradOutput): void {
  const inst = getInstance();
  const pairs = o.tiles.length / 3, mFloats = 36 * o.channels * o.rowLength;
  const mW = inst.arenaEnd, tilesW = mW + Math.ceil(mFloats / 4) * 4, biasW = tilesW + Math.ceil(o.tiles.length / 4) * 4;
  const outW = biasW + Math.ceil(o.channels / 4) * 4, end = outW + o.outFloats;
  inst.scratch = Math.max(inst.scratch, end - mW);
  const mem = floats(end);
  const ints = new Int32Array(mem.buffer);
  const reach = (o.channels - 1) * o.planeStride + 3 * o.rowStride + 3; // the last float a tile writes
  for (let i = 0; i < o.tiles.length; i++) {
    const v = o.tiles[i], inM = i % 3 === 0;
    if (!(v >= 0 && (inM ? v + 1 < o.rowLength : v + reach < o.outFloats))) throw new Error(`winograd: tile pair ${Math.floor(i / 3)} at offset ${v} lies outside its ${inM ? 'products' : 'output'}`);
    ints[tilesW + i] = 4 * v;
  }
  mem.set(o.M.subarray(o.mOffset, o.mOffset + mFloats), mW);
  if (o.bias === null) mem.fill(0, biasW, biasW + o.channels);
  else mem.set(o.bias.subarray(o.biasOffset, o.biasOffset + o.channels), biasW);
  inst.winogradOutput[o.relu ? 1 : 0](4 * mW, 4 * tilesW, pairs, o.channels, 4 * o.channels * o.rowLength, 4 * o.rowLength, 4 * biasW, 4 * outW, 4 * o.planeStride, 4 * o.rowStride);
  o.store(mem, outW);
  simdStats.bytesCopied += 4 * (mFloats + o.outFloats);
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
  inst.scratch = Math.max(inst.scratch, end - wW);
  const mem = floats(end);
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
