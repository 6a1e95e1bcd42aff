// A reference evaluator for ONNX graphs of CNNs: runOnnx(model, inputs) → outputs.
// Every op is checked before anything runs (unsupported ops are listed with their node names, so
// there is no partial run); then nodes run in topological order, each value freed after its last
// reader. float32 runs on the engine's fast kernels (threads, WebAssembly); float64 is the reference
// mode (every float initializer and input widened exactly). Memory is estimated before each
// allocation: the live values plus the new one must stay under the limit, else the run is refused
// naming the node and the estimate.

import type { OnnxModel, OnnxNode } from '../io/onnx_read.js';
import type { ConvAlgorithm } from '../ops/conv2d.js';
import { type Tensor, sharedArray } from '../tensor/tensor.js';
import { getThreads } from '../backend/threads.js';
import { showText } from '../tensor/untrusted.js';
import { MATH_OPS } from './ops_math.js';
import { NN_OPS } from './ops_nn.js';
import { QUANT_OPS } from './ops_quant.js';
import { integerQdq } from './qdq.js';
import { attributeProblems } from './attributes.js';
import { SHAPE_OPS, valueOfTensor } from './ops_shape.js';
import { type FloatArray, type OpContext, OnnxRunError, type Value, nodeError, numel, readersOf } from './value.js';

export { OnnxRunError } from './value.js';
export type { Value } from './value.js';

type Ctx = OpContext & { algorithm: ConvAlgorithm; reluAfter?: OnnxNode; cacheConvs?: boolean };
type Op = (ctx: Ctx, node: OnnxNode, xs: (Value | null)[]) => Value[];

/** Initializer values per model and precision, made once: a second run reuses them (and the convs their prepared filters). */
const INITS = new WeakMap<OnnxModel, Map<string, Map<string, Value>>>();
/** Each model's QDQ patterns as integer ops (src/onnx/qdq.ts), made once. */
const QDQ = new WeakMap<OnnxModel, OnnxModel>();

const OPS: Readonly<Record<string, Op>> = { ...MATH_OPS, ...SHAPE_OPS, ...NN_OPS, ...QUANT_OPS };

/** The op types runOnnx executes (default domain). */
export const SUPPORTED_OPS: readonly string[] = Object.keys(OPS).sort();

export interface RunOnnxOptions {
  /** float32 (default: the fast kernels) or float64 (the reference mode) */
  dtype?: 'float32' | 'float64';
  /** the convolution algorithm, as conv2d's (default 'auto'; pin one so that no timing decides the bits) */
  algorithm?: ConvAlgorithm;
  /** bytes the live values may take at once before the run is refused (default 8 GiB) */
  memoryLimit?: number;
  /**
   * Keep the initializers' values (widened to the run's precision) and the convs' prepared filters
   * with the model for the next run (default true). false: each initializer is made when first read
   * and freed after its last reader, so a run holds little more than one layer's weights in float64
   * beside the model (fuse-onnx's probe check of a large graph).
   */
  cache?: boolean;
  /**
   * QDQ patterns (DequantizeLinear → Conv/MatMul → QuantizeLinear): 'integer' (default) runs each as
   * QLinearConv/QLinearMatMul, as onnxruntime does; 'float' runs the graph as written (src/onnx/qdq.ts).
   */
  qdq?: 'integer' | 'float';
  /** called after each node with its index, the node count and the node's input and output values (progress, counting) */
  onNode?: (index: number, count: number, node: OnnxNode, inputs: (Value | null)[], outputs: Value[]) => void;
}

/** The nodes whose op this evaluator does not run (every one, with its name): empty when the model runs. */
export function unsupportedNodes(model: OnnxModel): OnnxNode[] {
  return model.nodes.filter((n) => (n.domain !== '' && n.domain !== 'ai.onnx') || !Object.hasOwn(OPS, n.opType));
}

/**
 * Run `model` on `inputs` (graph input name → tensor, or an array in the graph's input order).
 * Returns every graph output by name as a Value { dtype, shape, data }: floats in the run's precision,
 * integers and bools as exact numbers in a Float64Array.
 */
export function runOnnx(model: OnnxModel, inputs: Record<string, Tensor> | Map<string, Tensor> | Tensor[], opts: RunOnnxOptions = {}): Map<string, Value> {
  if ((opts.qdq ?? 'integer') === 'integer') {
    let rewritten = QDQ.get(model);
    if (rewritten === undefined) QDQ.set(model, rewritten = integerQdq(model));
    if (rewritten !== model) return runOnnx(rewritten, inputs, { ...opts, qdq: 'float' });
  }
  const bad = unsupportedNodes(model);
  if (bad.length > 0) {
    const list = bad.slice(0, 8).map((n) => `${showText(n.domain === '' ? n.opType : `${n.domain}.${n.opType}`, 60)} ('${showText(n.name, 60)}')`).join(', ');
    throw new OnnxRunError(`onnx: ${bad.length} node(s) use ops this evaluator does not run: ${list}${bad.length > 8 ? ', …' : ''}; nothing was run`);
  }
  const unread = attributeProblems(model);
  if (unread.length > 0) throw new OnnxRunError(`onnx: ${unread.slice(0, 4).join('; ')}${unread.length > 4 ? `; and ${unread.length - 4} more` : ''}; nothing was run`);
  const float = opts.dtype ?? 'float32';
  const limit = opts.memoryLimit ?? 8 * 2 ** 30;
  // Bytes held: every buffer some live name refers to (counted once however many names share it, as
  // Reshape's output shares its input's), plus what the running node has allocated so far.
  let live = 0, scratch = 0;
  const refs = new Map<FloatArray, number>();
  const env = new Map<string, Value>();
  const hold = (name: string, v: Value) => {
    env.set(name, v);
    const r = refs.get(v.data) ?? 0;
    if (r === 0) live += v.data.byteLength;
    refs.set(v.data, r + 1);
  };
  const release = (name: string) => {
    const v = env.get(name)!;
    env.delete(name);
    const r = refs.get(v.data)! - 1;
    if (r === 0) { refs.delete(v.data); live -= v.data.byteLength; } else refs.set(v.data, r);
  };
  const shared = getThreads() > 1;
  const ctx: Ctx = {
    float, opset: model.opset, algorithm: opts.algorithm ?? 'auto',
    alloc(shape, kind) {
      const n = numel(shape);
      const bytes = n * (kind === 'float' && float === 'float32' ? 4 : 8);
      if (!Number.isSafeInteger(n) || live + scratch + bytes > limit) {
        throw new OnnxRunError(`onnx: a value of shape [${shape.join(', ')}] would bring the memory held to ${((live + scratch + bytes) / 2 ** 30).toFixed(2)} GiB, over the ${(limit / 2 ** 30).toFixed(1)} GiB limit; refused before allocating (use a smaller input)`);
      }
      scratch += bytes;
      // floats in shared memory when the pool has workers: a conv's output is then written where they
      // write it, and read where the next conv's workers read it (no copies into and out of the pool)
      if (kind === 'float' && shared) return sharedArray(float, n);
      return kind === 'float' && float === 'float32' ? new Float32Array(n) : new Float64Array(n) as FloatArray;
    },
  };

  const cache = opts.cache ?? true;
  ctx.cacheConvs = cache;
  let inits = INITS.get(model)?.get(float);
  if (cache && inits === undefined) {
    inits = new Map([...model.initializers].map(([name, t]) => [name, valueOfTensor(ctx, t)]));
    if (!INITS.has(model)) INITS.set(model, new Map());
    INITS.get(model)!.set(float, inits);
  }
  if (cache) for (const [name, v] of inits!) { hold(name, v); scratch = 0; }
  // a Conv whose output only a Relu reads runs the ReLU in its output pass; that Relu passes its input on
  const readers = readersOf(model.nodes);
  const outputs = new Set(model.outputs.map((o) => o.name));
  const reluOf = new Map<OnnxNode, OnnxNode>();
  for (const n of model.nodes) {
    const r = readers.get(n.outputs[0]);
    if (n.opType === 'Conv' && r?.length === 1 && r[0].opType === 'Relu' && !outputs.has(n.outputs[0])) reluOf.set(n, r[0]);
  }
  const fusedRelus = new Set(reluOf.values());
  const given = inputs instanceof Map ? inputs : Array.isArray(inputs) ? new Map(model.inputs.map((v, i) => [v.name, inputs[i]])) : new Map(Object.entries(inputs));
  for (const v of model.inputs) {
    const t = given.get(v.name);
    if (t === undefined) throw new OnnxRunError(`onnx: no value given for graph input '${showText(v.name)}' (inputs: ${model.inputs.map((i) => `'${showText(i.name)}'`).join(', ')})`);
    if (v.dims !== null && (v.dims.length !== t.shape.length || v.dims.some((d, i) => typeof d === 'number' && d !== t.shape[i]))) {
      throw new OnnxRunError(`onnx: input '${showText(v.name)}' has shape [${t.shape.join(', ')}], but the graph declares [${v.dims.map((d) => d ?? '?').join(', ')}]`);
    }
    const data = ctx.alloc(t.shape, 'float');
    data.set(t.data);
    hold(v.name, { dtype: float, shape: t.shape.slice(), data });
    scratch = 0;
  }
  for (const k of given.keys()) if (!model.inputs.some((v) => v.name === k)) throw new OnnxRunError(`onnx: '${showText(k)}' is not an input of this graph (inputs: ${model.inputs.map((i) => `'${showText(i.name)}'`).join(', ')})`);

  // last reader of each value, so it can be released once read (graph outputs are kept)
  const lastUse = new Map<string, number>();
  model.nodes.forEach((n, i) => { for (const x of n.inputs) if (x !== '') lastUse.set(x, i); });
  const keep = new Set(model.outputs.map((o) => o.name));

  model.nodes.forEach((node, i) => {
    if (!cache) { // an initializer is made when first read (and freed after its last reader, below)
      for (const name of node.inputs) if (!env.has(name) && model.initializers.has(name)) hold(name, valueOfTensor(ctx, model.initializers.get(name)!));
    }
    const xs = node.inputs.map((name) => (name === '' ? null : env.get(name) ?? null));
    let ys: Value[];
    scratch = 0;
    try {
      ctx.reluAfter = reluOf.has(node) ? node : undefined;
      ys = fusedRelus.has(node) ? [xs[0]!] : OPS[node.opType](ctx, node, xs);
    } catch (e) {
      if (e instanceof OnnxRunError) throw e;
      throw nodeError(node, (e as Error).message);
    }
    node.outputs.forEach((name, k) => {
      if (name === '') return;
      if (ys[k] === undefined) throw nodeError(node, `produced no output ${k} ('${showText(name)}')`);
      hold(name, ys[k]);
    });
    scratch = 0;
    for (const x of node.inputs) if (x !== '' && lastUse.get(x) === i && !keep.has(x) && (!cache || !model.initializers.has(x)) && env.has(x)) release(x);
    opts.onNode?.(i, model.nodes.length, node, xs, ys);
  });
  const out = new Map<string, Value>();
  for (const o of model.outputs) out.set(o.name, env.get(o.name) ?? valueOfTensor(ctx, model.initializers.get(o.name)!));
  return out;
}
