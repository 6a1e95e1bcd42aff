// This thread's instance of the SIMD module: its memory (grown to the largest GEMM, never shrunk),
// the kernels' exports, and the arena that keeps a module's packed filters resident between calls.

import { gemmModuleBytes, BLOCK_KERNELS } from './gemm_code.js';
import { sharedArray } from '../../tensor/tensor.js';
import { getFusedMultiplyAdd } from '../backend.js';

type BlockFn = (a: number, b: number, c: number, mStrips: number, nStrips: number, kc: number, ldc: number, bias: number) => void;

type GatherFn = (out: number, src: number, cols: number, taps: number, kc: number, strips: number) => void;

type PackAFn = (out: number, src: number, ldBytes: number, strips: number, kc: number) => void;

type CopyPlanesFn = (dst: number, src: number, planes: number, H: number, W: number, dstRowBytes: number, srcRowBytes: number, srcPlaneBytes: number) => void;

type WinogradOutputFn = (m: number, tiles: number, pairs: number, channels: number, kBytes: number, mRowBytes: number, bias: number, y: number, yChannelBytes: number, yRowBytes: number) => void;

type SgdFn = (theta: number, grad: number, vel: number, bytes: number, lr: number, mu: number, wd: number) => void;

type WinogradInputFn = (v: number, src: number, tiles: number, pairs: number, channels: number, planeBytes: number, rowBytes: number, kBytes: number, channelBytes: number) => void;


export interface Instance {
  /** whether its block kernels fuse their multiply-adds */
  fused: boolean;
  memory: WebAssembly.Memory;
  /** the block kernels, indexed as BLOCK_KERNELS */
  blocks: BlockFn[];
  /** the same for a last strip of two to four real columns (the half kernel) and of one (columnKernel), in gemm_code.ts */
  halves: BlockFn[];
  columns: BlockFn[];
  gather: GatherFn;
  padPlanes: (dst: number, src: number, planes: number, H: number, W: number, top: number, mid: number, bottom: number, zeroed: number) => void;
  /** copyPlanes and copyPlanesAdd (gemm_code.ts) */
  copyPlanes: CopyPlanesFn;
  copyPlanesAdd: CopyPlanesFn;
  flipTaps: (dst: number, src: number, rows: number, Fg: number, tBytes: number, fBytes: number) => void;
  scatterAdd: (target: number, c: number, rows: number, cols: number, M: number, nc: number, ldcBytes: number) => void;
  offsetBytes: (dst: number, src: number, n: number, limit: number) => number;
  packA: PackAFn;
  packB: PackAFn;
  packAT: PackAFn;
  /** touchLines (gemm_code.ts): a load from each cache line of a region, to start it streaming in */
  touchLines: (addr: number, bytes: number) => number;
  winogradInput: WinogradInputFn;
  /** without and with ReLU */
  winogradOutput: [WinogradOutputFn, WinogradOutputFn];
  winogradFilters: (w: number, u: number, count: number, channels: number, kBytes: number) => void;
  /** SGD's update (sgd_simd.ts): without velocity, the first step, with momentum */
  sgd: [SgdFn, SgdFn, SgdFn];
  /** the integer GEMM's block kernel (blockKernel's 'int16' step; its kc counts pairs of k, its bias is unused) */
  gemmInt16: BlockFn;
  packInt16B: (dst: number, src: number, rowBytes: number, kp: number, nStrips: number) => void;
  gatherInt16B: (dst: number, src: number, taps: number, cols: number, kp: number, nStrips: number) => void;
  /** BatchNorm's passes (batchnorm_simd.ts) */
  bn: {
    sums: (x: number, quads: number, N: number, pBytes: number, imageBytes: number, planeBytes: number, out: number, mean: number) => void;
    squares: (x: number, quads: number, N: number, pBytes: number, imageBytes: number, planeBytes: number, out: number, mean: number) => void;
    normalize: (x: number, y: number, N: number, C: number, pBytes: number, table: number) => void;
    gradSums: (dy: number, x: number, quads: number, N: number, pBytes: number, imageBytes: number, planeBytes: number, table: number, out: number) => void;
    gradInput: (dy: number, x: number, dx: number, N: number, C: number, pBytes: number, table: number) => void;
    /** indexed first·2 + relu (bnAccumulateDef) */
    accumulate: ((x: number, out: number, N: number, C: number, pBytes: number, table: number) => void)[];
    reluGrad: (dy: number, y: number, out: number, bytes: number) => void;
  };
  f32: Float32Array;
  /** Panels kept in memory: id → float offset. They fill [0, arenaEnd); each GEMM's scratch lies above. */
  arena: Map<number, number>;
  arenaEnd: number;
  /** the most scratch a GEMM has needed above the arena (floats): kept free when the arena grows,
   * so that memory stops growing once a model's filters are all in */
  scratch: number;
}

/** Bytes of packed filters each thread's WebAssembly memory keeps (RepVGG-A0's: 84 MB); past it, it starts over. */
let arenaBytes = 128 * 2 ** 20;

/** Sets that limit on this thread and empties the arena (for the tests of both paths). */
export function setArenaBytes(n: number): void {
  arenaBytes = n;
  if (instance !== null) emptyArena(instance);
}

function emptyArena(inst: Instance): void {
  inst.arena.clear();
  inst.arenaEnd = 0;
}

// The floats p takes in the arena: rounded up to 16 bytes, for v128 loads.
const arenaFloats = (p: Panels): number => Math.ceil(p.data.length / 4) * 4;

let instance: Instance | null = null;

// The instance of the kind of GEMM in use (a change of kind starts a new one: new memory, empty arena).
export function getInstance(): Instance {
  const fused = getFusedMultiplyAdd();
  if (instance === null || instance.fused !== fused) {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(gemmModuleBytes(fused) as BufferSource), { env: { memory } });
    instance = {
      fused, memory, blocks: BLOCK_KERNELS.map((_, i) => inst.exports[`block${i}`] as BlockFn), halves: BLOCK_KERNELS.map((_, i) => inst.exports[`half${i}`] as BlockFn), columns: BLOCK_KERNELS.map((_, i) => inst.exports[`column${i}`] as BlockFn), gather: inst.exports.gather as GatherFn, padPlanes: inst.exports.padPlanes as Instance['padPlanes'], copyPlanes: inst.exports.copyPlanes as CopyPlanesFn, copyPlanesAdd: inst.exports.copyPlanesAdd as CopyPlanesFn,
      flipTaps: inst.exports.flipTaps as Instance['flipTaps'], scatterAdd: inst.exports.scatterAdd as Instance['scatterAdd'], offsetBytes: inst.exports.offsetBytes as Instance['offsetBytes'], packA: inst.exports.packA as PackAFn, packB: inst.exports.packB as PackAFn, packAT: inst.exports.packAT as PackAFn, touchLines: inst.exports.touchLines as Instance['touchLines'],
      winogradInput: inst.exports.winogradInputF4 as WinogradInputFn,
      winogradOutput: [inst.exports.winogradOutputF4 as WinogradOutputFn, inst.exports.winogradOutputF4Relu as WinogradOutputFn],
      winogradFilters: inst.exports.winogradFiltersF4 as Instance['winogradFilters'],
      sgd: [inst.exports.sgdPlain as SgdFn, inst.exports.sgdFirst as SgdFn, inst.exports.sgdMomentum as SgdFn],
      gemmInt16: inst.exports.gemmInt16 as Instance['gemmInt16'], packInt16B: inst.exports.packInt16B as Instance['packInt16B'], gatherInt16B: inst.exports.gatherInt16B as Instance['gatherInt16B'],
      bn: {
        sums: inst.exports.bnSums as Instance['bn']['sums'], squares: inst.exports.bnSquares as Instance['bn']['squares'],
        normalize: inst.exports.bnNormalize as Instance['bn']['normalize'], gradSums: inst.exports.bnGradSums as Instance['bn']['gradSums'],
        gradInput: inst.exports.bnGradInput as Instance['bn']['gradInput'],
        accumulate: ['', 'Relu', 'First', 'FirstRelu'].map((v) => inst.exports[`bnAccumulate${v}`] as Instance['bn']['accumulate'][0]),
        reluGrad: inst.exports.reluGrad as Instance['bn']['reluGrad'],
      },
      f32: new Float32Array(memory.buffer), arena: new Map(), arenaEnd: 0, scratch: 0,
    };
  }
  return instance;
}

/** Bytes copied into and out of this thread's WebAssembly memory so far (operands packed in, C in
 * and out), for the bench and the tests. */
export const simdStats = { bytesCopied: 0 };

/** Bytes of packed filters this thread's arena holds (see `resident`). */
export function wasmArenaBytes(): number {
  return instance === null ? 0 : 4 * instance.arenaEnd;
}

/** Bytes of WebAssembly memory this thread's GEMM holds (it grows to the largest GEMM, never shrinks). */
export function wasmMemoryBytes(): number {
  return instance === null ? 0 : instance.memory.buffer.byteLength;
}

// The memory as floats, at least n long (growing it replaces the buffer: only our own views see it).
export function floats(n: number): Float32Array {
  const inst = getInstance();
  if (inst.f32.length < n) {
    const pages = Math.ceil((n * 4 - inst.memory.buffer.byteLength) / 65536);
    inst.memory.grow(pages);
    inst.f32 = new Float32Array(inst.memory.buffer);
  }
  return inst.f32;
}

/** The memory as floats with `n` floats of scratch above the arena; the most any call took is kept
 * free when the arena grows (`resident`), so that memory stops growing once a model's filters are all in. */
export function scratchAbove(n: number): Float32Array {
  const inst = getInstance();
  inst.scratch = Math.max(inst.scratch, n);
  return floats(inst.arenaEnd + n);
}

// The float offset of p's copy in this thread's memory, copied there on first use; −1 when it is
// larger than the arena (then each GEMM copies the blocks it needs). A full arena starts over, so a
// model larger than it copies its filters once per pass rather than once per GEMM.
export function resident(p: Panels): number {
  const inst = getInstance();
  const at = inst.arena.get(p.id);
  if (at !== undefined) return at;
  const n = arenaFloats(p);
  if (4 * n > arenaBytes) return -1;
  if (4 * (inst.arenaEnd + n) > arenaBytes) emptyArena(inst);
  const off = inst.arenaEnd;
  floats(off + n + inst.scratch).set(p.data, off);
  inst.arena.set(p.id, off);
  inst.arenaEnd = off + n;
  simdStats.bytesCopied += 4 * p.data.length;
  return off;
}

/** Forgets p in this thread's arena; the space returns when p is the last thing in it (release
 * panels in the reverse order of their first use to get all of it back). */
export function releasePanels(p: Panels): void {
  if (instance === null) return;
  const at = instance.arena.get(p.id);
  if (at === undefined) return;
  instance.arena.delete(p.id);
  if (at + arenaFloats(p) === instance.arenaEnd) instance.arenaEnd = at;
}

/**
 * A fixed operand packed once (a layer's filters), in shared memory where it exists so that the
 * pool's workers read it too. Its contents never change. Panels that are `kept` (a module's cache,
 * used call after call) get a copy in each thread's WebAssembly memory, named by `id` (see
 * `resident`), so the GEMMs that use them copy nothing; others are copied block by block.
 */
export interface Panels {
  data: Float32Array;
  id: number;
  kept: boolean;
}

/** Panels of n floats, zeroed, in shared memory where it exists. */
export function newPanels(n: number, kept: boolean): Panels {
  // random ids: panels made on different threads never share one
  return { data: sharedArray('float32', n) as Float32Array, id: Math.random(), kept };
}
