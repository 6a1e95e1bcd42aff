// conv2d with torch.nn.functional.conv2d semantics (cross-correlation, NCHW, groups), three
// algorithms, and its backward. The output's array type follows the input's.

import { Tensor, addInto, allocLike, type FloatArray } from '../tensor/tensor.js';
import { sharedWorkspaceLike, workspaceLike } from '../tensor/workspace.js';
import { expectSameDtype, fmtShape } from '../tensor/check.js';
import { type ConvGeometry, type KernelGeometry, type Padding, type Pair, convGeometry, convMacs } from './conv2d_geometry.js';
import { getBackend } from '../backend/backend.js';
import { flippedFiltersOnKernel } from '../backend/gemm.js';
import { backgroundPossible, convCouldSplit, defineKernel, getThreads, isShared, onOneThread, parallel, partRange, runInBackground, shareForBackground } from '../backend/threads.js';
import { conv2dBackwardDirect, conv2dDirect } from './conv2d_direct.js';
import { conv2dBackwardIm2col, conv2dIm2col, im2colAddsDx } from './conv2d_im2col.js';
import { type WinogradTile, conv2dWinograd, winogradWeights } from './conv2d_winograd.js';
import { PreparedConv } from './conv2d_prepared.js';

export type ConvAlgorithm = 'auto' | 'direct' | 'im2col' | 'winograd';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Padding;
  dilation?: Pair;
  groups?: number;
  /** 'auto' (default) picks the fastest applicable algorithm; the others throw where they do not apply. */
  algorithm?: ConvAlgorithm;
  /** Winograd output tile: 4 for F(4×4,3×3) (default), 2 for F(2×2,3×3). */
  winogradTile?: WinogradTile;
  /**
   * The weights change between calls (training): 'auto' then times each candidate with its filter
   * preparation (Winograd's transform, im2col's packing) inside the call, as training pays it, and
   * keeps that choice apart from the one for fixed weights.
   */
  weightsChange?: boolean;
  /** 'auto': the calls the caller has made itself (a module's count; see autoAlgorithm) */
  autoCalls?: number;
  /** `w` prepared for the algorithms (PreparedConv.for(w, version): a module keeps one per conv); must be for `w`. */
  prepared?: PreparedConv;
  /** Write the result here instead of a new tensor (shape (N, F, Ho, Wo), x's dtype; must not alias x). */
  out?: Tensor;
  /** Apply ReLU in the output pass (bias and ReLU in one pass: the deploy epilogue); bits as relu(conv2d(…)). */
  relu?: boolean;
}

/**
 * The one rule for where Winograd runs, forward and backward, in ops, modules, plans and 'auto':
 * a 3×3 kernel, stride 1, dilation 1, and padding ≤ 2 per side (dx is the 3×3 conv of dy padded by
 * 2 − p, which needs p ≤ 2).
 */
export function winogradApplies(g: KernelGeometry): boolean {
  return g.KH === 3 && g.KW === 3 && g.sh === 1 && g.sw === 1 && g.dh === 1 && g.dw === 1 && g.pt <= 2 && g.pb <= 2 && g.pl <= 2 && g.pr <= 2;
}

/** 'winograd' asked of a whole model (or graph) means Winograd where it applies and im2col elsewhere. */
export function algorithmFor(requested: ConvAlgorithm, g: KernelGeometry): ConvAlgorithm {
  return requested === 'winograd' && !winogradApplies(g) ? 'im2col' : requested;
}

export const winogradRule = '3×3 kernel, stride 1, dilation 1 and padding ≤ 2 per side';
const describeGeometry = (g: KernelGeometry) => `kernel ${g.KH}×${g.KW}, stride ${g.sh}×${g.sw}, dilation ${g.dh}×${g.dw}, padding [${g.pt}, ${g.pb}, ${g.pl}, ${g.pr}]`;

export interface AlgorithmChoice {
  algorithm: 'im2col' | 'winograd';
  winogradTile: WinogradTile;
}

/**
 * 'auto' measures once per layer shape, dtype and weight regime (fixed, or changing every call as in
 * training), then reuses the choice for the rest of the process (see bench/ for the tables). Timing
 * costs tens of calls, so a conv is timed only once it has run AUTO_AFTER times: a short run (a CLI
 * call, a few forwards) runs im2col, the most accurate and the one that needs no filter transform,
 * and never pays for trials (nor keeps the candidates' filters) it cannot win back. The choice is visible
 * (measuredAlgorithm; RepVGG.algorithmPlan) and a model can be pinned to a plan
 * (RepVGG.setAlgorithmPlan), so timing never has to decide numerics.
 */
const measured = new Map<string, AlgorithmChoice>();
/** calls per shape key before it is timed (functional conv2d calls; modules count their own) */
const calls = new Map<string, number>();
/**
 * Calls of a conv before 'auto' times it. Timing costs ~20 calls' worth (three candidates, each
 * warmed up and sampled), so timing earlier could not pay back on a short run. A module counts its
 * own forwards; functional conv2d calls count per shape, where 24 is still more than the deepest zoo
 * stage's equal layers (RepVGG-B3's stage 3: 15).
 */
export const AUTO_AFTER = 24;
/** im2col: what 'auto' runs before a shape is timed. */
const UNTIMED: AlgorithmChoice = { algorithm: 'im2col', winogradTile: 4 };

// per backend too: the WebAssembly GEMM moves the balance between im2col and Winograd
function shapeKey(g: ConvGeometry, dtype: string, weightsChange: boolean): string {
  return [dtype, dtype === 'float32' ? getBackend() : 'js', weightsChange ? 'train' : 'eval', g.N, g.C, g.H, g.W, g.F, g.KH, g.KW, g.groups, g.sh, g.sw, g.dh, g.dw, g.pt, g.pb, g.pl, g.pr].join(',');
}

/** The measured choice for this geometry, if 'auto' has timed it already. */
export function measuredAlgorithm(g: ConvGeometry, dtype: string, weightsChange = false): AlgorithmChoice | undefined {
  return measured.get(shapeKey(g, dtype, weightsChange));
}

/**
 * What 'auto' runs for this call: the measured choice, im2col while fewer than AUTO_AFTER calls have
 * been made, or undefined when it is time to measure (conv2d then times the candidates and runs the
 * winner). `callerCalls`: this caller's own count (a module counts its forwards, so that the 13 equal
 * layers of a stage do not add up to a long run in two forwards); without it, the calls of the
 * shape are counted here.
 */
export function autoAlgorithm(g: ConvGeometry, dtype: string, weightsChange = false, callerCalls?: number): AlgorithmChoice | undefined {
  const key = shapeKey(g, dtype, weightsChange);
  const m = measured.get(key);
  if (m !== undefined) return m;
  let n = callerCalls;
  if (n === undefined) {
    n = (calls.get(key) ?? 0) + 1;
    calls.set(key, n);
  }
  return n <= AUTO_AFTER ? UNTIMED : undefined;
}

/** In order of preference when their times are within AUTO_MARGIN: fewer roundings first. */
const CANDIDATES: AlgorithmChoice[] = [
  { algorithm: 'im2col', winogradTile: 4 },
  { algorithm: 'winograd', winogradTile: 2 },
  { algorithm: 'winograd', winogradTile: 4 },
];

/** A more accurate algorithm is kept unless another is faster by more than this fraction. */
export const AUTO_MARGIN = 0.05;
/** Timed runs per candidate (after the warm-up), interleaved, compared by their fastest. */
const AUTO_SAMPLES = 5;
/** Warm-up calls per candidate at most (see measureAndRun). */
const AUTO_WARMUP = 10;
/** After two timed runs each, a candidate this much faster than every other is chosen at once. */
const AUTO_CLEAR_LEAD = 0.3;

// Steady-state cost, as the caller pays it. Fixed weights (eval): filters are transformed and packed
// once, before timing, and kept in WebAssembly memory as a module keeps its own (then released, so
// that the arena holds only what modules keep). Changing weights (training): each timed call
// transforms or packs its filters itself, as every training step does. The candidates run on this
// thread alone, so the choice (and the bits that follow from it) does not depend on the thread count
// and timings are not disturbed by workers or the other cores' load. Candidates are interleaved
// (a, b, c, a, b, c, …) and each is judged by its fastest run: interference only ever adds time and
// often lasts longer than a run. A faster candidate must beat the preferred one by AUTO_MARGIN; a
// clear lead after two timed runs (AUTO_CLEAR_LEAD) ends the measurement early. What each of these
// rules fixed, measured: docs/performance.md. y ends up holding the chosen algorithm's output.
function measureAndRun(g: ConvGeometry, x: Tensor, w: Tensor, b: FloatArray | null, y: FloatArray, relu: boolean, weightsChange: boolean): void {
  const candidates = CANDIDATES.filter((c) => c.algorithm !== 'winograd' || winogradApplies(g));
  // fixed weights: each candidate's filters prepared once, as a module keeps them (im2col's only when
  // there is a choice to time: alone it runs once, and preparing for one call would only add a copy)
  const prepared = weightsChange ? null : new PreparedConv(true).for(w, 0);
  // with the epilogue the caller asked for: it costs the algorithms differently (a branch per
  // output in Winograd's TypeScript output pass, a vector max in the SIMD GEMM's)
  const run = (c: AlgorithmChoice) => {
    if (c.algorithm === 'im2col') conv2dIm2col(g, x.data, w.data, b, y, relu, candidates.length > 1 ? prepared?.im2colFilters(g) : undefined);
    else conv2dWinograd(g, x.data, prepared?.winogradFilters(g, c.winogradTile) ?? winogradWeights(w.data, g.F, g.Cg, g.groups, c.winogradTile), b, y, relu);
  };
  let best = candidates[0];
  if (candidates.length > 1) onOneThread(() => {
    const samples = candidates.map(() => [] as number[]);
    // Warm-up until two calls in a row come no more than 10% under the fastest before them: a
    // candidate's first calls in a process run code V8 has not optimised yet.
    for (const c of candidates) {
      let fastest = Infinity;
      for (let i = 0, flat = 0; i < AUTO_WARMUP && flat < 2; i++) {
        const t = performance.now();
        run(c);
        const dt = performance.now() - t;
        flat = dt < 0.9 * fastest ? 0 : flat + 1;
        fastest = Math.min(fastest, dt);
      }
    }
    for (let s = 0; s < AUTO_SAMPLES; s++) {
      candidates.forEach((c, i) => {
        const t = performance.now();
        run(c);
        samples[i].push(performance.now() - t);
      });
      if (s === 1) {
        const fastest2 = samples.map((v) => Math.min(...v)), lead = Math.min(...fastest2);
        if (fastest2.filter((t) => t <= lead * (1 + AUTO_CLEAR_LEAD)).length === 1) break;
      }
    }
    best = chooseWithMargin(candidates, samples.map((v) => Math.min(...v)));
  });
  measured.set(shapeKey(g, x.dtype, weightsChange), best);
  run(best);
  prepared?.release(); // only what modules keep stays in the kernels' memory
}

/** The fastest, unless a candidate earlier in the list is within AUTO_MARGIN of it. */
export function chooseWithMargin<T>(candidates: readonly T[], times: readonly number[]): T {
  const fastest = Math.min(...times);
  const i = times.findIndex((m) => m <= fastest * (1 + AUTO_MARGIN));
  return candidates[i];
}

function checkConvArgs(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry): void {
  expectSameDtype(x, w, 'conv2d input', 'conv2d weight');
  if (bias !== null) {
    expectSameDtype(x, bias, 'conv2d input', 'conv2d bias');
    if (bias.shape.length !== 1 || bias.shape[0] !== g.F) {
      throw new Error(`conv2d: bias shape ${fmtShape(bias.shape)} does not match ${g.F} output channels`);
    }
  }
}

function checkedOut(out: Tensor, x: Tensor, g: ConvGeometry): FloatArray {
  const want = [g.N, g.F, g.Ho, g.Wo];
  if (out.dtype !== x.dtype || out.shape.length !== 4 || out.shape.some((d, i) => d !== want[i])) {
    throw new Error(`conv2d: out has shape ${fmtShape(out.shape)} ${out.dtype}, expected ${fmtShape(want)} ${x.dtype}`);
  }
  if (out.data.buffer === x.data.buffer) throw new Error('conv2d: out must not share memory with the input');
  return out.data;
}

// x: (N, C, H, W), w: (F, C/g, kH, kW), bias: (F) | null → y: (N, F, Ho, Wo)
// An unbatched x: (C, H, W) gives y: (F, Ho, Wo), as in PyTorch.
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  if (x.shape.length === 3) {
    const y = conv2d(x.reshape([1, ...x.shape]), w, bias, opts);
    return y.reshape(y.shape.slice(1));
  }
  const g = convGeometry(x.shape, w.shape, opts);
  checkConvArgs(x, w, bias, g);
  const y = opts.out === undefined ? allocLike(x.data, g.N * g.F * g.Ho * g.Wo) : checkedOut(opts.out, x, g);
  const b = bias === null ? null : bias.data;
  let algo = opts.algorithm ?? 'auto';
  let tile = opts.winogradTile;
  if (algo === 'auto') {
    const m = autoAlgorithm(g, x.dtype, opts.weightsChange === true, opts.autoCalls);
    if (m === undefined) {
      measureAndRun(g, x, w, b, y, opts.relu === true, opts.weightsChange === true);
      return new Tensor(y, [g.N, g.F, g.Ho, g.Wo]);
    }
    algo = m.algorithm;
    tile = m.winogradTile;
  }
  switch (algo) {
    case 'direct': // the reference: ReLU as its own pass
      conv2dDirect(g, x.data, w.data, b, y);
      if (opts.relu === true) for (let i = 0; i < y.length; i++) if (y[i] < 0) y[i] = 0;
      break;
    case 'im2col': {
      // with threads, the weights where the workers read them (prepared once, not copied per call)
      const wPool = opts.prepared !== undefined && getThreads() > 1 ? opts.prepared.poolWeights().data : w.data;
      conv2dIm2col(g, x.data, wPool, b, y, opts.relu === true, opts.prepared?.im2colFilters(g));
      break;
    }
    case 'winograd': {
      if (!winogradApplies(g)) {
        throw new Error(`conv2d: Winograd needs a ${winogradRule}, got ${describeGeometry(g)}`);
      }
      const t = tile ?? 4;
      if (t !== 2 && t !== 4) throw new Error(`conv2d: winogradTile must be 2 or 4, got ${String(t)}`);
      const U = opts.prepared?.winogradFilters(g, t) ?? winogradWeights(w.data, g.F, g.Cg, g.groups, t);
      if (U.F !== g.F || U.Cg !== g.Cg || U.groups !== g.groups) throw new Error('conv2d: the prepared Winograd filters do not match the weight shape or groups');
      conv2dWinograd(g, x.data, U, b, y, opts.relu === true);
      break;
    }
    default:
      throw new Error(`conv2d: unknown algorithm '${String(algo)}' (expected auto, direct, im2col or winograd)`);
  }
  return new Tensor(y, [g.N, g.F, g.Ho, g.Wo]);
}

export interface Conv2dGrads {
  dx: Tensor | null;
  dw: Tensor | null;
  db: Tensor | null;
}

// dy: (N, F, Ho, Wo) → dx: (N, C, H, W), dw: (F, C/g, kH, kW), db: (F)
// want.dwInto: write dw there (every element; a parameter's cleared gradient) instead of a new array;
// want.dxInto: likewise dx (every element is written, whatever it held); want.dxAdd: dx added to what
// that array holds (dxAdd[i] += dx[i], one f32 add an element: a later branch's dx onto a block's),
// in im2col's col2im where it can, else through a workspace
export function conv2dBackward(
  dy: Tensor, x: Tensor, w: Tensor, opts: Conv2dOptions = {},
  want: { dx?: boolean; dw?: boolean; db?: boolean; dwInto?: FloatArray; dxInto?: FloatArray; dxAdd?: FloatArray } = {},
): Conv2dGrads {
  const g = backwardGeometry(dy, x, w, opts);
  if (want.dxInto !== undefined && want.dxAdd !== undefined) throw new Error('conv2d backward: dxInto and dxAdd are two places for one dx');
  const dx = want.dx === false ? null : intoChecked(want.dxAdd ?? want.dxInto, x.size, want.dxAdd === undefined ? 'dxInto' : 'dxAdd', x) ?? allocLike(x.data, x.size);
  const adds = dx !== null && want.dxAdd !== undefined;
  intoChecked(want.dwInto, w.size, 'dwInto', x);
  const dW = want.dw === false ? null : want.dwInto ?? allocLike(x.data, w.size);
  const db = want.db === false ? null : allocLike(x.data, g.F);
  const algo = opts.algorithm ?? 'auto';
  // dx made whole in a workspace, then added (the paths that store dx rather than add it in a kernel)
  const added = (f: (into: FloatArray) => void): void => {
    const own = workspaceLike('conv.dxAdded', dx!.length, dx!).subarray(0, dx!.length);
    f(own);
    addInto(dx!, own);
  };
  if (algo === 'direct') {
    if (adds) added((own) => conv2dBackwardDirect(g, x.data, w.data, dy.data, own, dW, db));
    else conv2dBackwardDirect(g, x.data, w.data, dy.data, dx, dW, db);
  } else if (algo === 'im2col' || algo === 'auto' || algo === 'winograd') {
    if (algo === 'winograd' && !winogradApplies(g)) throw new Error(`conv2d backward: Winograd dx needs a ${winogradRule}, got ${describeGeometry(g)}`);
    const m = algo === 'auto' ? measuredAlgorithm(g, x.dtype, opts.weightsChange === true) : undefined; // what forward ran: Winograd's dx only after it
    const winoDx = dx !== null && (algo === 'winograd' || m?.algorithm === 'winograd');
    const flipDx = dx !== null && !winoDx && flippedConvApplies(g);
    // dx from Winograd or the flipped conv (stored whole), else from col2im within im2col's backward,
    // which also makes dW and db
    const grads = (into: FloatArray | null, add: boolean) => {
      if (winoDx) conv2dInputGradWinograd(g, w, dy, into!, opts.winogradTile ?? m?.winogradTile ?? 4);
      else if (flipDx) conv2dIm2col(flippedGeometry(g, dy.shape), dy.data, flippedKernel(g, w.data), null, into!);
      conv2dBackwardIm2col(g, x.data, w.data, dy.data, winoDx || flipDx ? null : into, dW, db, add);
    };
    if (adds && (winoDx || flipDx || !im2colAddsDx(g, x.data))) added((own) => grads(own, false));
    else grads(dx, adds);
  } else {
    throw new Error(`conv2d backward: unknown algorithm '${String(algo)}' (expected auto, direct, im2col or winograd)`);
  }
  return {
    dx: dx === null ? null : new Tensor(dx, x.shape),
    dw: dW === null ? null : new Tensor(dW, w.shape),
    db: db === null ? null : new Tensor(db, [g.F]),
  };
}

// The geometry of conv2dBackward's operands, checked: dtypes alike, dy shaped as the output.
function backwardGeometry(dy: Tensor, x: Tensor, w: Tensor, opts: Conv2dOptions): ConvGeometry {
  const g = convGeometry(x.shape, w.shape, opts);
  expectSameDtype(x, w, 'conv2d input', 'conv2d weight');
  expectSameDtype(x, dy, 'conv2d input', 'conv2d grad_output');
  if (dy.shape.length !== 4 || dy.shape[0] !== g.N || dy.shape[1] !== g.F || dy.shape[2] !== g.Ho || dy.shape[3] !== g.Wo) {
    throw new Error(`conv2d backward: grad_output shape ${fmtShape(dy.shape)} does not match output shape ${fmtShape([g.N, g.F, g.Ho, g.Wo])}`);
  }
  return g;
}

// `a` (a caller's array for a gradient named `name`), checked to hold n values of x's dtype
function intoChecked(a: FloatArray | undefined, n: number, name: string, x: Tensor): FloatArray | undefined {
  if (a !== undefined && (a.length !== n || (a instanceof Float64Array) !== (x.data instanceof Float64Array))) {
    throw new Error(`conv2d backward: ${name} holds ${a.length} ${a instanceof Float64Array ? 'float64' : 'float32'} values, expected ${n} ${x.dtype}`);
  }
  return a;
}

interface WeightGradArgs { g: ConvGeometry; x: FloatArray; dy: FloatArray; dW: FloatArray }

// conv2dBackward's dW alone (im2col's, as every algorithm but direct computes it; W is not read),
// whole on this thread: its chunks and GEMMs are the ones conv2dBackward runs, so the same bits.
const weightGradKernel = defineKernel('conv.backward.weights', (a: WeightGradArgs) => {
  onOneThread(() => conv2dBackwardIm2col(a.g, a.x, a.x, a.dy, null, a.dW, null));
});

/**
 * dw of conv2dBackward(dy, x, w, opts) written into dwInto (every element) by a worker while this
 * thread goes on, where it can: inside a backgroundScope (threads.ts), a backward too small to split
 * among the threads, not 'direct'. The caller leaves dy and x as they are until the scope ends (what
 * is not in shared memory is copied there once per scope); dwInto is written by the time the scope
 * returns. Returns whether it was queued (else nothing was done, and the caller computes dw itself).
 */
export function conv2dWeightGradInBackground(dy: Tensor, x: Tensor, w: Tensor, opts: Conv2dOptions, dwInto: FloatArray): boolean {
  if (!backgroundPossible() || opts.algorithm === 'direct' || x.shape.length !== 4) return false;
  const g = backwardGeometry(dy, x, w, opts);
  intoChecked(dwInto, w.size, 'dwInto', x);
  if (convCouldSplit(convMacs(g))) return false;
  const dW = shareForBackground(dwInto, false);
  const args = { g, x: shareForBackground(x.data, true), dy: shareForBackground(dy.data, true), dW };
  return runInBackground(weightGradKernel, args, dW === dwInto ? undefined : () => dwInto.set(dW));
}

// dx of a stride-1 conv is itself one: dx = dy ⊛ W', W'[c, f] = W[f, c] rotated 180° (within each
// group), with padding k − 1 − p on each side. So it runs on the forward kernels (Winograd, or
// im2col's gather and GEMM: no col2im scatter).
function flippedConvApplies(g: ConvGeometry): boolean {
  return g.sh === 1 && g.sw === 1 && g.dh === 1 && g.dw === 1 && g.KH * g.KW > 1 &&
    Math.max(g.pt, g.pb) <= g.KH - 1 && Math.max(g.pl, g.pr) <= g.KW - 1;
}

// W (F, C/g, kH, kW) → W' (C, F/g, kH, kW), W'[c, f, i, j] = W[f, c, kH − 1 − i, kW − 1 − j] per group.
// Into a workspace, shared with threads (the conv that reads it copies nothing into the pool), and
// written by the pool's threads where W is shared too (a model built with workers): a transpose at
// ~2 ns a weight, 16–19 ms of A0's training step on the calling thread alone.
function flippedKernel(g: ConvGeometry, w: FloatArray): FloatArray {
  const threads = getThreads() > 1;
  const wT = (threads ? sharedWorkspaceLike : workspaceLike)('conv.flipped', w.length, w).subarray(0, w.length);
  const args = { g, w, wT };
  if (threads && isShared(w)) parallel(flipKernel, args, Math.floor(w.length / MIN_FLIPPED_PER_PART));
  else flipRows(args, 0, g.groups * g.Cg);
  return wT;
}

/** Weights below which a part of the flip is not worth a worker's message (~0.1 ms of transposing). */
const MIN_FLIPPED_PER_PART = 1 << 16;

interface FlipArgs { g: ConvGeometry; w: FloatArray; wT: FloatArray }

// rows r = gi·C/g + c of W' for r in [r0, r1) (float32 on 'wasm': the same moves on the SIMD kernel)
function flipRows({ g, w, wT }: FlipArgs, r0: number, r1: number): void {
  const { Cg, Fg, KH, KW } = g;
  const T = KH * KW;
  if (flippedFiltersOnKernel(w, wT, Cg, Fg, T, r0, r1)) return;
  for (let r = r0; r < r1; r++) {
    const gi = Math.floor(r / Cg), c = r - gi * Cg;
    for (let fl = 0; fl < Fg; fl++) {
      const src = ((gi * Fg + fl) * Cg + c) * T, dst = (r * Fg + fl) * T;
      for (let k = 0; k < T; k++) wT[dst + k] = w[src + T - 1 - k];
    }
  }
}

const flipKernel = defineKernel('conv.flippedKernel', (a: FlipArgs, part: number, parts: number) => {
  const [r0, r1] = partRange(a.g.groups * a.g.Cg, part, parts);
  flipRows(a, r0, r1);
});

// the conv dy → dx with the flipped kernel
function flippedGeometry(g: ConvGeometry, dyShape: readonly number[]): ConvGeometry {
  const gT = convGeometry(dyShape, [g.C, g.Fg, g.KH, g.KW], {
    groups: g.groups, padding: [[g.KH - 1 - g.pt, g.KH - 1 - g.pb], [g.KW - 1 - g.pl, g.KW - 1 - g.pr]],
  });
  if (gT.Ho !== g.H || gT.Wo !== g.W || gT.C !== g.F) throw new Error('conv2d backward: internal shape mismatch in the input gradient');
  return gT;
}

function conv2dInputGradWinograd(g: ConvGeometry, w: Tensor, dy: Tensor, dx: FloatArray, tile: WinogradTile): void {
  conv2dWinograd(flippedGeometry(g, dy.shape), dy.data, winogradWeights(flippedKernel(g, w.data), g.C, g.Fg, g.groups, tile), null, dx);
}

export type { ConvGeometry, Padding, Pair } from './conv2d_geometry.js';
export { convGeometry, convMacs } from './conv2d_geometry.js';
