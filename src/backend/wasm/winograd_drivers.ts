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
