// Checking a rewritten graph against its original: both run in float64 (the reference mode) on one
// random probe batch drawn from the graph input's declared shape.

import type { OnnxModel, OnnxNode } from '../io/onnx_read.js';
import { Rng, uniform } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import { releaseWorkspaces } from '../tensor/workspace.js';
import { onOneThread } from '../backend/threads.js';
import { type Value, runOnnx } from './run.js';
import { attrInt, numel } from './value.js';
import type { FuseOnnxResult } from './fuse.js';
import { showText } from '../tensor/untrusted.js';
import type { StoredFloat } from '../io/dtypes.js';

/** The probe's shape: the input's declared dims, a symbolic batch as 2 and other symbolic sizes as `size`. */
export function probeShape(model: OnnxModel, size = 32): number[] {
  if (model.inputs.length !== 1) throw new Error(`the graph has ${model.inputs.length} inputs; the probe feeds graphs with one`);
  const dims = model.inputs[0].dims;
  if (dims === null) throw new Error(`input '${showText(model.inputs[0].name)}' declares no shape; the probe needs one`);
  return dims.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? 2 : size));
}

/** The probe batch: uniform in [−1, 1], float64, refused before allocating when over 1 GiB (static dims no --probe-size can shrink). */
export function probeInput(model: OnnxModel, size = 32, seed = 0): Tensor {
  const shape = probeShape(model, size);
  const bytes = shape.reduce((a, b) => a * b, 8);
  if (!(bytes <= 2 ** 30)) throw new Error(`the probe input [${shape.join(', ')}] would take ${(bytes / 2 ** 30).toPrecision(3)} GiB in float64; refused before allocating (a graph this large is not probed)`);
  return uniform(shape, new Rng(seed), -1, 1, 'float64');
}

/** One graph's outputs on the probe batch, in float64, and its multiply-adds. */
export interface ProbeRun {
  outputs: Map<string, Value>;
  /** of its Conv, ConvTranspose, Gemm and MatMul nodes */
  macs: number;
  shape: number[];
}

/**
 * Run a graph on the probe batch (float64, im2col). No cache: each weight exists in float64 only
 * while its layer runs (a B3 graph is 470 MiB in float32), and the scratch the run grew is released
 * after it. opts.progress: called after each node (index, count).
 */
export function probeRun(model: OnnxModel, opts: { size?: number; seed?: number; progress?: (i: number, n: number) => void } = {}): ProbeRun {
  const x = probeInput(model, opts.size, opts.seed);
  let macs = 0;
  const onNode = (i: number, n: number, node: OnnxNode, xs: (Value | null)[], ys: Value[]) => {
    macs += multiplyAdds(node, xs, ys);
    opts.progress?.(i, n);
  };
  try {
    // one thread: a probe batch is small against the weights (B3: 0.6 multiply-adds per weight byte), so
    // workers would mostly copy float64 weights into shared memory: on two threads B3's probes took 2.4×
    // as long and peaked at 1.7 GB instead of 0.74 GB (the result is the same bits on any thread count)
    const outputs = onOneThread(() => runOnnx(model, [x], { dtype: 'float64', algorithm: 'im2col', cache: false, onNode }));
    return { outputs, macs, shape: x.shape.slice() };
  } finally {
    releaseWorkspaces();
  }
}

// A node's multiply-adds: a conv's output elements × (C/groups)·k…; a transposed conv's input elements
// × (F/groups)·k… (each input element meets its whole kernel slice); a Gemm's or MatMul's output
// elements × the summed dimension.
function multiplyAdds(node: OnnxNode, xs: (Value | null)[], ys: Value[]): number {
  const [a, w] = xs, y = ys[0];
  if (a === null || a === undefined || w === null || w === undefined || y === undefined) return 0;
  switch (node.opType) {
    case 'Conv': return y.data.length * numel(w.shape.slice(1));
    case 'ConvTranspose': return a.data.length * numel(w.shape.slice(1));
    case 'Gemm': return y.data.length * a.shape[attrInt(node, 'transA', 0) === 1 ? 0 : 1];
    case 'MatMul': return y.data.length * a.shape[a.shape.length - 1];
    default: return 0;
  }
}

/** The fused graph's probe run against the original's, held to fuseBound. */
export function compareProbes(original: ProbeRun, fused: ProbeRun, result: FuseOnnxResult): FuseCheck {
  let diff = 0, big = 0;
  for (const [name, ya] of original.outputs) {
    const yb = fused.outputs.get(name)!;
    for (let i = 0; i < ya.data.length; i++) {
      diff = Math.max(diff, Math.abs(ya.data[i] - yb.data[i]));
      big = Math.max(big, Math.abs(ya.data[i]));
      if (Number.isNaN(ya.data[i]) !== Number.isNaN(yb.data[i])) diff = Infinity;
    }
  }
  // the coarsest float type the graph stores (a float16 graph's fused weights are float16)
  const floats = [...result.model.initializers.values()].map((t) => t.dtype).filter((d): d is StoredFloat => d in UNIT_ROUNDOFF);
  const stored = floats.reduce<StoredFloat>((a, d) => (UNIT_ROUNDOFF[d] > UNIT_ROUNDOFF[a] ? d : a), floats.length === 0 ? 'float32' : floats[0]);
  return { maxAbsDiff: diff, bound: fuseBound(result.fused.length, stored, big), maxAbsOutput: big, probeShape: original.shape, macsBefore: original.macs, macsAfter: fused.macs };
}

/** opts.progress: called after each node of each graph ('original' or 'fused', index, count). */
export function checkFused(original: OnnxModel, result: FuseOnnxResult, opts: { size?: number; seed?: number; progress?: (graph: string, i: number, n: number) => void } = {}): FuseCheck {
  const a = probeRun(original, { size: opts.size, seed: opts.seed, progress: (i, n) => opts.progress?.('original', i, n) });
  const b = probeRun(result.model, { size: opts.size, seed: opts.seed, progress: (i, n) => opts.progress?.('fused', i, n) });
  return compareProbes(a, b, result);
}

export interface FuseCheck {
  /** largest |fused − original| over the outputs on the probe batch, both run in float64 */
  maxAbsDiff: number;
  /** the bound it is held to (see fuseBound) */
  bound: number;
  maxAbsOutput: number;
  probeShape: number[];
  /** the convolutions' multiply-adds on the probe batch */
  macsBefore: number;
  macsAfter: number;
}

/** The unit roundoff u (half a spacing at 1) of each float type a graph stores weights in. */
const UNIT_ROUNDOFF: Readonly<Record<StoredFloat, number>> = { float64: 2 ** -53, float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };

/**
 * The error model for a fused graph against its original, both evaluated in float64 on one probe:
 * the fused weights are computed in float64 and stored once in the file's precision (u = 2⁻²⁴ for
 * float32 files, 2⁻⁵³ for float64, 2⁻¹¹ for float16, 2⁻⁸ for bfloat16), so each fused layer's output
 * moves by at most u·(|K| ⊛ |x| + |b|); taking |K| ⊛ |x| + |b| ≤ 16·max|y| per layer (cancellation in
 * a conv rarely exceeds 16×) and L fused layers adding up, the bound is 16·L·u·max|y| plus the float64
 * evaluation's own 1e-12·max|y|. `stored`: the weights' type (true: float64, false: float32, as before).
 */
export function fuseBound(fusedLayers: number, stored: StoredFloat | boolean, maxAbsOutput: number): number {
  const u = UNIT_ROUNDOFF[stored === true ? 'float64' : stored === false ? 'float32' : stored];
  return 16 * Math.max(1, fusedLayers) * u * maxAbsOutput + 1e-12 * maxAbsOutput;
}
