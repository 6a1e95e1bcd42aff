// GEMM on WebAssembly SIMD: C (M×N) (+)= op(A) · op(B), float32, the same Goto-style blocking as
// src/ops/gemm.ts (KC-long panels, C rounded once per panel) with a 4×8 register tile of f32x4
// accumulators. Differences from the TypeScript kernel, which stays the reference:
//  - products are accumulated in float32, not float64: a panel's sum of kc products carries the
//    usual γ_kc = kc·u/(1 − kc·u) relative bound (u = 2⁻²⁴) instead of one rounding;
//  - the operands are packed into WebAssembly memory as float32 (the TypeScript kernel packs float64);
//    a module's filters stay there between calls (the arena), and im2col's B panels are gathered
//    there from a padded copy of the input (the `gather` function);
//  - the bias and ReLU of a conv's output pass run in the kernel, on the last panel;
//  - operands given as plain arrays are copied in a row at a time and interleaved into strips by
//    small WebAssembly functions (packA, packB); padded sources are placed by `pad`; Winograd's
//    F(4×4) transforms run here too (winograd_simd.ts), with the TypeScript transforms' bits.
// Each output element still sees the same operations in the same order for any thread split.

import type { MatRef, PanelSource, RowEpilogue } from '../gemm_contract.js';
import { packA, packB } from '../gemm_pack.js';
import { Code, I32, V128, wasmModule } from './emit.js';
import { winogradInputF4Def, winogradOutputF4Def } from './winograd_simd.js';
import { type FloatArray, copyRows, sharedArrayLike } from '../../tensor/tensor.js';

const MR = 4;
const NR = 8;
const KC = 256;
const MC = 64;
const NC = 1024;

// block(a, b, c, mStrips, nStrips, kc, ldcBytes, bias): for every 4-row strip of the packed A block
// at a and 8-column strip of the packed B panel at b, the C tile (at c, row stride ldcBytes) gets
// A strip · B strip: added to it (load) or stored (the first panel, so C needs no zeroing); on the
// last panel, then + bias[row] (bias: the block's row 0) and ReLU, in that order, the epilogue of a
// conv's output pass done while the tile is in registers. Each option is a separate function, so
// the loop carries no branches.
function blockKernel(load: boolean, bias: boolean, relu: boolean): Code {
  const [a, b, c, mStrips, nStrips, kc, ldc, biasP] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [jr, ir, k, pa, pb, p] = [8, 9, 10, 11, 12, 13];
  const acc = (i: number) => 14 + i; // 8 accumulators: row r, half h at 2r + h
  const [b0, b1, s, bv] = [22, 23, 24, 25];
  const x = new Code();
  x.i32(0).set(jr);
  x.loop(); // over 8-column strips
  x.i32(0).set(ir);
  x.loop(); // over 4-row strips
  for (let i = 0; i < 8; i++) x.v128Zero().set(acc(i));
  // pa = a + ir·kc·16, pb = b + jr·kc·32 (bytes)
  x.get(a).get(ir).get(kc).i32Mul().i32(16).i32Mul().i32Add().set(pa);
  x.get(b).get(jr).get(kc).i32Mul().i32(32).i32Mul().i32Add().set(pb);
  x.get(kc).set(k);
  x.loop(); // over k: acc[r][h] += a[k][r] · b[k][4h..4h+3]
  x.get(pb).v128Load(0).set(b0);
  x.get(pb).v128Load(16).set(b1);
  for (let r = 0; r < 4; r++) {
    x.get(pa).v128Load32Splat(4 * r).set(s);
    x.get(acc(2 * r)).get(s).get(b0).f32x4Mul().f32x4Add().set(acc(2 * r));
    x.get(acc(2 * r + 1)).get(s).get(b1).f32x4Mul().f32x4Add().set(acc(2 * r + 1));
  }
  x.get(pa).i32(16).i32Add().set(pa);
  x.get(pb).i32(32).i32Add().set(pb);
  x.get(k).i32(1).i32Sub().tee(k).brIf(0);
  x.end();
  // C tile (+)= acc, then + bias, then ReLU: p = c + ir·4·ldc + jr·32
  x.get(c).get(ir).i32(4).i32Mul().get(ldc).i32Mul().i32Add().get(jr).i32(32).i32Mul().i32Add().set(p);
  for (let r = 0; r < 4; r++) {
    if (bias) x.get(biasP).get(ir).i32(16).i32Mul().i32Add().v128Load32Splat(4 * r).set(bv);
    for (let h = 0; h < 2; h++) {
      x.get(p);
      if (load) x.get(p).v128Load(16 * h).get(acc(2 * r + h)).f32x4Add();
      else x.get(acc(2 * r + h));
      if (bias) x.get(bv).f32x4Add();
      if (relu) x.v128Zero().f32x4Pmax();
      x.v128Store(16 * h);
    }
    if (r < 3) x.get(p).get(ldc).i32Add().set(p);
  }
  x.get(ir).i32(1).i32Add().tee(ir).get(mStrips).i32LtU().brIf(0);
  x.end();
  x.get(jr).i32(1).i32Add().tee(jr).get(nStrips).i32LtU().brIf(0);
  x.end();
  return x;
}

// gather(out, src, cols, taps, kc, strips): packs a B panel whose elements are read from memory
// through two offset tables, B(k, j) = f32 at src + cols[j] + taps[k] (bytes): im2col's col matrix
// from a zero-padded copy of the input, cols the positions' corners and taps the kernel's offsets,
// so the matrix is never stored and no bounds are checked. The strips of 8 columns are written as
// packB writes them: out[(j/8)·kc·8 + k·8 + j mod 8].
function gatherKernel(): Code {
  const [out, src, cols, taps, kc, strips] = [0, 1, 2, 3, 4, 5];
  const [s, k, tp, t] = [6, 7, 8, 9];
  const base = (r: number) => 10 + r; // the strip's 8 column offsets, + src
  const x = new Code();
  x.i32(0).set(s);
  x.loop(); // over strips
  for (let r = 0; r < 8; r++) x.get(cols).i32Load(4 * r).get(src).i32Add().set(base(r));
  x.get(taps).set(tp);
  x.get(kc).set(k);
  x.loop(); // over the panel's rows
  x.get(tp).i32Load(0).set(t);
  for (let r = 0; r < 8; r++) x.get(out).get(base(r)).get(t).i32Add().f32Load(0).f32Store(4 * r);
  x.get(out).i32(32).i32Add().set(out);
  x.get(tp).i32(4).i32Add().set(tp);
  x.get(k).i32(1).i32Sub().tee(k).brIf(0);
  x.end();
  x.get(cols).i32(32).i32Add().set(cols);
  x.get(s).i32(1).i32Add().tee(s).get(strips).i32LtU().brIf(0);
  x.end();
  return x;
}

// pad(dst, src, planes, H, W, rowBytes, planeBytes): copies `planes` H×W planes stored one after
// another at src into rows rowBytes apart and planes planeBytes apart from dst (the interior of a
// zero-padded copy): JavaScript hands the planes over with one memcpy per image, and the rows short
// enough that a copy per row from JavaScript would cost more than its floats are placed here.
function placePlanesCode(): Code {
  const [dst, src, planes, H, W, rowBytes, planeBytes] = [0, 1, 2, 3, 4, 5, 6];
  const [row, i, d, j] = [7, 8, 9, 10];
  const x = new Code();
  x.loop(); // over planes
  x.get(dst).set(row);
  x.get(H).set(i);
  x.loop(); // over rows
  x.get(row).set(d);
  x.get(W).set(j);
  x.loop(); // over the row's floats
  x.get(d).get(src).f32Load(0).f32Store(0);
  x.get(src).i32(4).i32Add().set(src);
  x.get(d).i32(4).i32Add().set(d);
  x.get(j).i32(1).i32Sub().tee(j).brIf(0);
  x.end();
  x.get(row).get(rowBytes).i32Add().set(row);
  x.get(i).i32(1).i32Sub().tee(i).brIf(0);
  x.end();
  x.get(dst).get(planeBytes).i32Add().set(dst);
  x.get(planes).i32(1).i32Sub().tee(planes).brIf(0);
  x.end();
  return x;
}

// packA(out, src, ldBytes, strips, kc): the A operand's 4-row strips from rows staged at src (row
// stride ldBytes, the rows past the block's end zeroed by the caller) in the kernels' layout,
// out[(s·kc + k)·4 + r] = src[(4s + r)·ld + k]: the same floats packA in gemm_pack.ts writes.
function packAKernel(): Code {
  const [out, src, ld, strips, kc] = [0, 1, 2, 3, 4];
  const [r0, k] = [5, 6];
  const x = new Code();
  x.loop(); // over strips
  x.get(src).set(r0);
  x.get(kc).set(k);
  x.loop(); // over k: one float from each of the strip's 4 rows
  for (let r = 0; r < 4; r++) {
    x.get(out).get(r0);
    for (let i = 0; i < r; i++) x.get(ld).i32Add();
    x.f32Load(0).f32Store(4 * r);
  }
  x.get(out).i32(16).i32Add().set(out);
  x.get(r0).i32(4).i32Add().set(r0);
  x.get(k).i32(1).i32Sub().tee(k).brIf(0);
  x.end();
  x.get(src).get(ld).i32(4).i32Mul().i32Add().set(src);
  x.get(strips).i32(1).i32Sub().tee(strips).brIf(0);
  x.end();
  return x;
}

// packB(out, src, ldBytes, strips, kc): B's 8-column strips from rows staged at src (row stride
// ldBytes, whole strips) in the kernels' layout, out[(s·kc + k)·8 + c] = src[k·ld + 8s + c]: two
// v128 copies per row of a strip.
function packBKernel(): Code {
  const [out, src, ld, strips, kc] = [0, 1, 2, 3, 4];
  const [r, k] = [5, 6];
  const x = new Code();
  x.loop(); // over strips
  x.get(src).set(r);
  x.get(kc).set(k);
  x.loop(); // over the strip's rows
  x.get(out).get(r).v128Load(0).v128Store(0);
  x.get(out).get(r).v128Load(16).v128Store(16);
  x.get(out).i32(32).i32Add().set(out);
  x.get(r).get(ld).i32Add().set(r);
  x.get(k).i32(1).i32Sub().tee(k).brIf(0);
  x.end();
  x.get(src).i32(32).i32Add().set(src);
  x.get(strips).i32(1).i32Sub().tee(strips).brIf(0);
  x.end();
  return x;
}

// The variants, indexed by load·4 + bias·2 + relu.
const EPILOGUES = [0, 1, 2, 3, 4, 5, 6, 7].map((v) => ({ load: (v & 4) !== 0, bias: (v & 2) !== 0, relu: (v & 1) !== 0 }));

let moduleBytes: Uint8Array | null = null;

/** The module's bytes, built once (what `wasmAvailable` validates and `getInstance` compiles). */
export function gemmModuleBytes(): Uint8Array {
  return moduleBytes ??= wasmModule([
    ...EPILOGUES.map((v, i) => ({
      name: `block${i}`,
      params: [I32, I32, I32, I32, I32, I32, I32, I32],
      locals: [I32, I32, I32, I32, I32, I32, V128, V128, V128, V128, V128, V128, V128, V128, V128, V128, V128, V128],
      body: blockKernel(v.load, v.bias, v.relu),
    })),
    { name: 'gather', params: [I32, I32, I32, I32, I32, I32], locals: new Array<number>(12).fill(I32), body: gatherKernel() },
    { name: 'pad', params: new Array<number>(7).fill(I32), locals: new Array<number>(4).fill(I32), body: placePlanesCode() },
    winogradInputF4Def(),
    winogradOutputF4Def(false),
    winogradOutputF4Def(true),
    { name: 'packA', params: new Array<number>(5).fill(I32), locals: [I32, I32], body: packAKernel() },
    { name: 'packB', params: new Array<number>(5).fill(I32), locals: [I32, I32], body: packBKernel() },
  ]);
}

type BlockFn = (a: number, b: number, c: number, mStrips: number, nStrips: number, kc: number, ldc: number, bias: number) => void;

type GatherFn = (out: number, src: number, cols: number, taps: number, kc: number, strips: number) => void;

type PackAFn = (out: number, src: number, ldBytes: number, strips: number, kc: number) => void;

type PadFn = (dst: number, src: number, planes: number, H: number, W: number, rowBytes: number, planeBytes: number) => void;

type WinogradOutputFn = (m: number, tiles: number, pairs: number, channels: number, kBytes: number, mRowBytes: number, bias: number, y: number, yChannelBytes: number, yRowBytes: number) => void;

type WinogradInputFn = (v: number, src: number, tiles: number, pairs: number, channels: number, planeBytes: number, rowBytes: number, kBytes: number, channelBytes: number) => void;

/** What a GatherSource's load gets to place H×W planes in rows Wp apart, planes Hp·Wp apart (floats). */
export type PlacePlanes = (dst: number, src: number, planes: number, H: number, W: number, Wp: number, planeStride: number) => void;

interface Instance {
  memory: WebAssembly.Memory;
  /** the block kernels, indexed as EPILOGUES */
  blocks: BlockFn[];
  gather: GatherFn;
  pad: PadFn;
  packA: PackAFn;
  packB: PackAFn;
  winogradInput: WinogradInputFn;
  /** without and with ReLU */
  winogradOutput: [WinogradOutputFn, WinogradOutputFn];
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

function getInstance(): Instance {
  if (instance === null) {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(gemmModuleBytes() as BufferSource), { env: { memory } });
    instance = {
      memory, blocks: EPILOGUES.map((_, i) => inst.exports[`block${i}`] as BlockFn), gather: inst.exports.gather as GatherFn, pad: inst.exports.pad as PadFn, packA: inst.exports.packA as PackAFn, packB: inst.exports.packB as PackAFn,
      winogradInput: inst.exports.winogradInputF4 as WinogradInputFn,
      winogradOutput: [inst.exports.winogradOutputF4 as WinogradOutputFn, inst.exports.winogradOutputF4Relu as WinogradOutputFn],
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
function floats(n: number): Float32Array {
  const inst = getInstance();
  if (inst.f32.length < n) {
    const pages = Math.ceil((n * 4 - inst.memory.buffer.byteLength) / 65536);
    inst.memory.grow(pages);
    inst.f32 = new Float32Array(inst.memory.buffer);
  }
  return inst.f32;
}

// The float offset of p's copy in this thread's memory, copied there on first use; −1 when it is
// larger than the arena (then each GEMM copies the blocks it needs). A full arena starts over, so a
// model larger than it copies its filters once per pass rather than once per GEMM.
function resident(p: Panels): number {
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
  return { data: sharedArrayLike(n, new Float32Array(0)) as Float32Array, id: Math.random(), kept };
}

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

/** A (rows × K) in the PackedA layout, into out at offset (rowsPadded·K floats). */
export function packPanels(rows: number, K: number, A: MatRef, out: Float32Array, offset: number): void {
  const rowsPadded = Math.ceil(rows / MR) * MR;
  for (let pc = 0; pc < K; pc += KC) packA(A, 0, pc, rows, Math.min(KC, K - pc), out, offset + pc * rowsPadded);
}

/**
 * A B operand that the WebAssembly kernels gather themselves: `src` (size floats) is copied into
 * memory once per GEMM, then B(k, j) = src[cols(j) + taps[k]] (im2col from a zero-padded input).
 */
export interface GatherSource {
  size: number;
  /** floats of scratch that load may use */
  staging: number;
  /** writes src into mem at `at`; `stage` is the scratch, `place` moves planes staged there into rows */
  load(mem: Float32Array, at: number, stage: number, place: PlacePlanes): void;
  /** the row offsets, K of them */
  taps: Int32Array;
  /** the offsets of columns jc … jc + n − 1 into out[0 … n − 1] */
  cols(jc: number, n: number, out: Int32Array): void;
}

/**
 * The size, staging and load of a zero-padded source: images n0 … n1 of x (N, C, H, W), channels
 * c0 … c0 + Cg, each plane Hp × Wp with the image at (pt, pl). The planes go in with one memcpy per
 * image, and WebAssembly places them in the padded rows.
 */
export function paddedPlanes(
  x: FloatArray, C: number, H: number, W: number, c0: number, Cg: number, n0: number, n1: number, Hp: number, Wp: number, pt: number, pl: number,
): Pick<GatherSource, 'size' | 'staging' | 'load'> {
  const planes = (n1 - n0 + 1) * Cg;
  return {
    size: planes * Hp * Wp,
    staging: planes * H * W,
    load(mem, at, stage, place) {
      mem.fill(0, at, at + planes * Hp * Wp);
      for (let n = n0; n <= n1; n++) mem.set(x.subarray((n * C + c0) * H * W, (n * C + c0 + Cg) * H * W), stage + (n - n0) * Cg * H * W);
      place(at + pt * Wp + pl, stage, planes, H, W, Wp, Hp * Wp);
    },
  };
}

// The place function a source's load gets: planes staged in [stage, stage + staging) into rows
// inside [at, at + size), by the pad kernel, once both ends are checked (an offset past them would
// write over other data without a word).
function placer(inst: Instance, at: number, size: number, stage: number, staging: number, who: string): PlacePlanes {
  return (dst, src, planes, H, W, Wp, planeStride) => {
    if (!(dst >= at && dst + (planes - 1) * planeStride + (H - 1) * Wp + W <= at + size && src >= stage && src + planes * H * W <= stage + staging)) {
      throw new Error(`${who}: placing ${planes} planes of ${H}×${W} would leave the source of ${size} floats`);
    }
    inst.pad(4 * dst, 4 * src, planes, H, W, 4 * Wp, 4 * planeStride);
  };
}

/** Where the tiles of a Winograd input transform come from, and where V goes (floats throughout). */
export interface WinogradSource {
  size: number;
  staging: number;
  load: GatherSource['load'];
  /** per pair of tiles: the offsets of its two corners in the source (the last pair may repeat a
   * tile) and of its place in V */
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

/** Where Winograd's products come from and where the output tiles go (floats throughout). */
export interface WinogradOutput {
  /** M_k (k < 36) of `channels` rows of `rowLength` (≥ 2·pairs) floats, k-major */
  M: Float32Array;
  mOffset: number;
  channels: number;
  rowLength: number;
  /** per pair of tiles: its offset in a row of M and the offsets of its two tiles' corners in the output block */
  tiles: Int32Array;
  /** the output block: `channels` planes of planeStride floats, rows rowStride apart */
  outFloats: number;
  planeStride: number;
  rowStride: number;
  /** per channel, or null */
  bias: Float32Array | null;
  biasOffset: number;
  relu: boolean;
  /** takes the finished block (in WebAssembly memory at `at`) */
  store(mem: Float32Array, at: number): void;
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

// A's block (rows ic…, columns pc…) packed into the kernels' strips at aW. Stored row-major, its rows
// go to WebAssembly memory one memcpy each and the packA function interleaves them there (a
// JavaScript loop writing every fourth float costs ~2.5 ns a float); stored transposed (K × M), the
// TypeScript packA.
function packABlock(inst: Instance, A: MatRef, ic: number, pc: number, mc: number, kc: number, mem: Float32Array, aW: number, stage: number): void {
  if (A.trans || !(A.data instanceof Float32Array)) {
    packA(A, ic, pc, mc, kc, mem, aW);
    return;
  }
  const strips = Math.ceil(mc / MR);
  copyRows(A.data, A.offset + ic * A.ld + pc, A.ld, mem, stage, kc, mc, kc);
  mem.fill(0, stage + mc * kc, stage + strips * MR * kc); // the last strip's missing rows
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


/** Same contract as gemm() in src/ops/gemm.ts, for float32 operands; `packed`, when given, is A
 * already packed (then A itself is not read); `epi`, a bias per row and/or ReLU applied to the result. */
export function gemmSimd(
  M: number, N: number, K: number, A: MatRef, B: MatRef | PanelSource,
  C: Float32Array, cOff: number, ldc: number, accumulate: boolean, packed?: PackedA, epi?: RowEpilogue,
): void {
  const Mp = Math.ceil(M / MR) * MR;
  const inst = getInstance(), blocks = inst.blocks;
  const at = packed === undefined || !packed.panels.kept ? -1 : resident(packed.panels); // before the scratch layout: it may move the arena's end
  const bias = epi?.bias ?? null, relu = epi?.relu ?? false;
  const last = (bias !== null ? 2 : 0) + (relu ? 1 : 0); // the epilogue's variant bits
  // memory layout (floats), above the arena: [a gathered B's source | its staging | its row offsets |
  // its column offsets] C block Mp × ncp | B panel ncp × KC | A block MC × KC | bias Mp | A's rows
  // staged MC × KC | [B's rows staged ncp × KC, when B is not gathered]
  const g = 'packB' in B ? B.gather : undefined;
  const srcW = inst.arenaEnd, stageW = srcW + (g === undefined ? 0 : Math.ceil(g.size / 4) * 4);
  const tapsW = stageW + (g === undefined ? 0 : Math.ceil(g.staging / 4) * 4), colsW = tapsW + (g === undefined ? 0 : K);
  const cW = colsW + (g === undefined ? 0 : NC), bW0 = cW;
  let mem = floats(cW), maxTap = 0;
  if (g !== undefined) {
    g.load(mem, srcW, stageW, placer(inst, srcW, g.size, stageW, g.staging, 'gemm'));
    simdStats.bytesCopied += 4 * g.size;
    const ints = new Int32Array(mem.buffer);
    for (let k = 0; k < K; k++) {
      if (!(g.taps[k] >= 0 && g.taps[k] < g.size)) throw new Error(`gemm: gathered row ${k} at offset ${g.taps[k]} lies outside its source of ${g.size} floats`);
      ints[tapsW + k] = 4 * g.taps[k];
      maxTap = Math.max(maxTap, g.taps[k]);
    }
  }
  for (let jc = 0; jc < N; jc += NC) {
    const nc = Math.min(NC, N - jc);
    const ncp = Math.ceil(nc / NR) * NR;
    const bW = bW0 + Mp * ncp, aW = bW + ncp * KC, biasW = aW + MC * KC, stageA = biasW + Mp, stageB = stageA + MC * KC;
    const end = stageB + (g === undefined ? ncp * KC : 0);
    inst.scratch = Math.max(inst.scratch, end - srcW);
    mem = floats(end);
    if (g !== undefined) {
      const ints = new Int32Array(mem.buffer, 4 * colsW, ncp);
      g.cols(jc, nc, ints);
      ints.fill(ints[nc - 1], nc, ncp); // the padding columns read a real one (their results are dropped)
      for (let j = 0; j < ncp; j++) {
        // every element the kernel reads must lie in the source: an offset past it would read other
        // data (or trap at the end of memory) without a word
        if (!(ints[j] >= 0 && ints[j] + maxTap < g.size)) throw new Error(`gemm: gathered column ${jc + j} at offset ${ints[j]} lies outside its source of ${g.size} floats`);
        ints[j] *= 4; // bytes
      }
    }
    // rows of C in (when accumulating; otherwise the first panel stores)
    if (accumulate) copyRows(C, cOff + jc, ldc, mem, cW, ncp, M, nc);
    if (bias !== null) mem.set(bias.subarray(epi!.biasOff, epi!.biasOff + M), biasW);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = Math.min(KC, K - pc);
      const block = blocks[(accumulate || pc > 0 ? 4 : 0) + (pc + KC >= K ? last : 0)];
      if (g === undefined) packBBlock(inst, B, pc, jc, kc, nc, mem, bW, stageB);
      else inst.gather(4 * bW, 4 * srcW, 4 * colsW, 4 * (tapsW + pc), kc, ncp / NR);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = Math.min(MC, M - ic);
        // the strips of rows row0 + ic … of block pc, where the packed operand keeps them
        const src = packed === undefined ? 0 : packed.offset + pc * packed.rowsPadded + (packed.row0 + ic) * kc;
        let a = aW;
        if (packed === undefined) packABlock(inst, A, ic, pc, mc, kc, mem, aW, stageA);
        else if (at >= 0) a = at + src;
        else mem.set(packed.panels.data.subarray(src, src + Math.ceil(mc / MR) * MR * kc), aW);
        block(4 * a, 4 * bW, 4 * (cW + ic * ncp), Math.ceil(mc / MR), ncp / NR, kc, 4 * ncp, 4 * (biasW + ic));
      }
    }
    copyRows(mem, cW, ncp, C, cOff + jc, ldc, M, nc);
    // C in (when accumulating) and out; each panel of B and block of A in; the bias
    simdStats.bytesCopied += 4 * (M * nc * (accumulate ? 2 : 1) + (g === undefined ? ncp * K : 0) + (at >= 0 ? 0 : Mp * K) + (bias === null ? 0 : M));
  }
}
