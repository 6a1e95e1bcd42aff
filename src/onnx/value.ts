// The values an ONNX graph computes, and what every op shares: attribute access with ONNX's
// defaults, NumPy-style broadcasting, axis normalisation and the memory guard.
//
// A value is a dense row-major array with a shape. Floating-point values are in the run's precision
// (float32 on the fast kernels, or float64, the reference mode); integer and bool values are kept as
// exact numbers in a Float64Array, tagged with their ONNX type, so shape arithmetic (Shape → Gather
// → Concat → Reshape) runs through the same code as data.

import type { OnnxAttribute, OnnxDType, OnnxNode } from '../io/onnx_read.js';
import { showText } from '../tensor/untrusted.js';

export type FloatArray = Float32Array | Float64Array;

export interface Value {
  /** 'float32' | 'float64' for floating point (the run's precision), else the integer or bool type */
  dtype: OnnxDType;
  shape: number[];
  data: FloatArray;
}

export const isFloat = (v: Value): boolean => v.dtype === 'float32' || v.dtype === 'float64';

export class OnnxRunError extends Error {
  override name = 'OnnxRunError';
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** What an op needs from the run: its precision, a checked allocator and a name for messages. */
export interface OpContext {
  /** the run's float precision */
  float: 'float32' | 'float64';
  /** a new zeroed array for `shape`, after the memory guard has agreed (float: the run's precision) */
  alloc(shape: readonly number[], kind: 'float' | 'int'): FloatArray;
  opset: number;
}

/** Round half to even (the default rounding of IEEE and of x86/WebAssembly conversions). */
export function roundHalfEven(v: number): number {
  // |v| < 2⁵¹: v + 1.5·2⁵² lies in (2⁵², 2⁵³), where doubles are the integers, so the addition itself
  // rounds v to an integer, ties to even (1.5·2⁵² is even), and the subtraction is exact. Twice as
  // fast in requantization as the floor and a look at the fraction (MobileOne-S0's INT8 run on 4
  // images: 318 → 162 ms of it).
  if (Math.abs(v) < 2 ** 51) return v === 0 ? v : v + 6755399441055744 - 6755399441055744; // (±0 kept)
  if (!(Math.abs(v) < 2 ** 52)) return v; // an integer already (or ±∞, NaN)
  const f = Math.floor(v), d = v - f; // [2⁵¹, 2⁵²): halves still exist; exact: the fraction of a double is a double
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/** Errors from an op name the node and its type. */
export function nodeError(node: OnnxNode, why: string): OnnxRunError {
  return new OnnxRunError(`onnx: node '${showText(node.name, 80)}' (${showText(node.opType, 40)}): ${why}`);
}

export function attrInt(node: OnnxNode, name: string, dflt: number): number {
  const a = node.attributes.get(name);
  if (a === undefined) return dflt;
  if (a.kind !== 'int') throw nodeError(node, `attribute ${name} must be an int, got ${a.kind}`);
  return a.value;
}

export function attrFloat(node: OnnxNode, name: string, dflt: number): number {
  const a = node.attributes.get(name);
  if (a === undefined) return dflt;
  if (a.kind !== 'float') throw nodeError(node, `attribute ${name} must be a float, got ${a.kind}`);
  return a.value;
}

export function attrInts(node: OnnxNode, name: string): number[] | undefined {
  const a: OnnxAttribute | undefined = node.attributes.get(name);
  if (a === undefined) return undefined;
  if (a.kind !== 'ints') throw nodeError(node, `attribute ${name} must be ints, got ${a.kind}`);
  return a.value;
}

export function attrString(node: OnnxNode, name: string, dflt: string): string {
  const a = node.attributes.get(name);
  if (a === undefined) return dflt;
  if (a.kind !== 'string') throw nodeError(node, `attribute ${name} must be a string, got ${a.kind}`);
  return a.value;
}

/** An input that must be present. */
export function input(node: OnnxNode, xs: (Value | null)[], i: number, what: string): Value {
  const v = xs[i];
  if (v === null || v === undefined) throw nodeError(node, `input ${i} (${what}) is missing`);
  return v;
}

/** An integer-list input (shape, axes, pads, starts, …) as numbers. */
export function intsOf(node: OnnxNode, v: Value, what: string): number[] {
  if (isFloat(v)) throw nodeError(node, `${what} must be an integer tensor, got ${v.dtype}`);
  if (v.shape.length > 1) throw nodeError(node, `${what} must be 1-D, got shape [${v.shape.join(', ')}]`);
  return Array.from(v.data);
}

/** axis in [−rank, rank) → [0, rank) */
export function normAxis(node: OnnxNode, axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw nodeError(node, `${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** Multidirectional (NumPy) broadcasting of two shapes. */
export function broadcastShape(node: OnnxNode, a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw nodeError(node, `shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Row-major strides of `shape` as seen from `out` (0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const st = new Array<number>(out.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1, j = out.length - 1; i >= 0; i--, j--) {
    st[j] = shape[i] === 1 ? 0 : s;
    s *= shape[i];
  }
  return st;
}

/** Cast any value's numbers to the run's float precision (a new array, or the same one). */
export function toFloat(ctx: OpContext, v: Value): Value {
  if (v.dtype === ctx.float) return v;
  const data = ctx.float === 'float32' ? new Float32Array(v.data) : new Float64Array(v.data);
  return { dtype: ctx.float, shape: v.shape, data };
}

/** tensor name → the nodes that read it, in graph order (lists pushed to, not copied: a tensor may have 10⁵ readers). */
export function readersOf(nodes: readonly OnnxNode[]): Map<string, OnnxNode[]> {
  const readers = new Map<string, OnnxNode[]>();
  for (const n of nodes) {
    for (const i of n.inputs) {
      if (i === '') continue;
      const r = readers.get(i);
      if (r === undefined) readers.set(i, [n]);
      else r.push(n);
    }
  }
  return readers;
}
