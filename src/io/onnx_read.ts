// Reading ONNX models (onnx/onnx.proto, IR 3-10): ModelProto → GraphProto → NodeProto /
// TensorProto (initializers) / ValueInfoProto, with attributes. The bytes are walked once with the
// protobuf module's reader (no recursion, offsets in every error); tensors are checked against their
// declared dims before anything is allocated, so a 10⁹-element dim in a 100-byte file is refused,
// not attempted. External data (the > 2 GiB convention: data_location = EXTERNAL, entries location,
// offset, length) is fetched through a caller's function, which the CLI confines to the model's
// folder. Subgraphs (If, Loop, Scan attributes) are kept as byte spans and never decoded: the
// evaluator refuses those ops up front, so a deeply nested subgraph costs nothing.

import { bfloat16ToFloat, halfToFloat as halfFloat } from './dtypes.js';
import { type ProtoField, ProtoError, int64Of, int64sOf, int64sRawOf, protoFields, stringOf } from './protobuf.js';
import { showText } from '../tensor/untrusted.js';

export class OnnxError extends Error {
  override name = 'OnnxError';
}

/** TensorProto.DataType → our element type name. */
export const ONNX_DTYPES: Readonly<Record<number, OnnxDType>> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};
export type OnnxDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'bool';
const BYTES: Readonly<Record<OnnxDType, number>> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, uint16: 2, uint32: 4, uint64: 8, bool: 1,
};

/**
 * A tensor's values: float32 and float64 as themselves; float16/bfloat16 widened exactly to float32;
 * 8-32-bit integers and bool in their own typed arrays; int64/uint64 as numbers (Float64Array), exact
 * up to 2^53 and saturated beyond (Slice's sentinels).
 */
export type OnnxData = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array | Uint32Array;

export interface OnnxTensor {
  name: string;
  /** the declared type (float16 data is widened, but remembered) */
  dtype: OnnxDType;
  dims: number[];
  data: OnnxData;
}

export type OnnxAttribute =
  | { kind: 'float'; value: number } | { kind: 'int'; value: number } | { kind: 'string'; value: string }
  | { kind: 'floats'; value: number[] } | { kind: 'ints'; value: number[] } | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: OnnxTensor } | { kind: 'graph' | 'other'; value: null };

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
  /** byte offset of the NodeProto, for messages */
  at: number;
}

export interface OnnxValueInfo {
  name: string;
  dtype: OnnxDType | null;
  /** per dimension: a size, a symbolic name, or null (unknown); null for no shape */
  dims: (number | string | null)[] | null;
}

export interface OnnxModel {
  irVersion: number;
  /** the default domain's (ai.onnx) opset */
  opset: number;
  /** other domains' opsets (ai.onnx.ml, com.microsoft, …) */
  otherOpsets: Map<string, number>;
  producer: string;
  graphName: string;
  /** in topological order (checked, re-sorted if the file was not) */
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  /** graph inputs that are not initializers: what a caller feeds */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfo: Map<string, OnnxValueInfo>;
}

export interface ReadOnnxOptions {
  /**
   * External data: (location as written in the file, offset, length or -1 for "to the end") → bytes,
   * given away: a tensor views them where they are aligned to its item size (no second copy).
   */
  externalData?: (location: string, offset: number, length: number) => Uint8Array;
  /**
   * The caller gives `bytes` away (default false): tensors become views of it instead of copies, each
   * one's bytes first moved down by at most 7 to align them (which overwrites protobuf headers already
   * read). A 470 MiB model then takes 470 MiB, not twice that. Never pass true for bytes you use again.
   */
  adoptBytes?: boolean;
}

/** A tensor whose raw bytes, in the adopted buffer, become its data after the parse. */
interface Pending {
  tensor: OnnxTensor;
  src: Uint8Array;
}
interface ReadState extends ReadOnnxOptions {
  pending?: Pending[];
}

const VIEWS: Partial<Record<OnnxDType, new (b: ArrayBuffer, at: number, n: number) => OnnxData>> = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int16: Int16Array, uint16: Uint16Array, uint32: Uint32Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array,
};

// In file order, each raw span moves down to the next multiple of its item size below it, unless
// that would reach into the span before it (as moved), in which case it is copied as before. The
// bytes it moves over are the protobuf tags and lengths in front of it, which the parse has read.
function adoptSpans(pending: Pending[]): void {
  pending.sort((a, b) => a.src.byteOffset - b.src.byteOffset);
  let end = 0; // where the previous span ends, as placed
  for (const { tensor, src } of pending) {
    const item = BYTES[tensor.dtype], n = src.length / item;
    const at = src.byteOffset - (src.byteOffset % item);
    const View = VIEWS[tensor.dtype]!;
    if (at >= end) {
      if (at !== src.byteOffset) new Uint8Array(src.buffer).copyWithin(at, src.byteOffset, src.byteOffset + src.length);
      tensor.data = new View(src.buffer as ArrayBuffer, at, n);
      end = at + src.length;
    } else {
      tensor.data = new View(new Uint8Array(src).buffer, 0, n);
      end = Math.max(end, src.byteOffset + src.length);
    }
  }
}

// 22–26: what changed for the ops the evaluator runs is in src/onnx/attributes.ts. ONNX 1.22's
// opset 27 is not read until its changes are checked the same way.
const ONNX_OPSET_RANGE = [11, 26] as const;

/** out.push(...xs) without spreading: a packed field of 10⁶ values would overflow the call stack. */
function append<T>(out: T[], xs: readonly T[]): void {
  for (const x of xs) out.push(x);
}

const q = (s: string) => `'${showText(s, 80)}'`;

/** Parse a ModelProto. Every error names the node, tensor or byte offset at fault. */
export function readOnnx(bytes: Uint8Array, opts: ReadOnnxOptions = {}): OnnxModel {
  try {
    const state: ReadState = { ...opts, pending: opts.adoptBytes === true ? [] : undefined };
    const model = readModel(bytes, state);
    if (state.pending !== undefined) adoptSpans(state.pending);
    return model;
  } catch (e) {
    if (e instanceof ProtoError) throw new OnnxError(`onnx: ${e.message.replace(/^protobuf: /, '')}`);
    throw e;
  }
}

function readModel(bytes: Uint8Array, opts: ReadState): OnnxModel {
  let irVersion = 0, graph: ProtoField | null = null, producer = '';
  let opset: number | null = null;
  const otherOpsets = new Map<string, number>();
  for (const f of protoFields(bytes, 0, bytes.length, 0, 'ModelProto')) {
    if (f.field === 1) irVersion = int64Of(f, 'ir_version');
    else if (f.field === 2) producer = stringOf(f, 'producer_name');
    else if (f.field === 7) graph = f;
    else if (f.field === 8) {
      let domain = '', version = 0;
      for (const g of protoFields(f.bytes, 0, f.bytes.length, f.bytesAt, 'OperatorSetIdProto')) {
        if (g.field === 1) domain = stringOf(g, 'opset domain');
        else if (g.field === 2) version = int64Of(g, 'opset version');
      }
      if (domain === '' || domain === 'ai.onnx') opset = version;
      else otherOpsets.set(domain, version);
    }
  }
  if (graph === null || graph.wire !== 2) throw new OnnxError('onnx: the file has no graph (not an ONNX ModelProto, or truncated)');
  // IR 11–13 (opsets 23–26) add element types (refused where a tensor uses them) and fields for
  // multi-device execution, which an evaluator on one device skips
  if (irVersion < 3 || irVersion > 13) throw new OnnxError(`onnx: IR version ${irVersion} is not one this reader knows (3 to 13)`);
  if (opset === null) throw new OnnxError('onnx: the model imports no opset of the default domain (ai.onnx)');
  if (opset < ONNX_OPSET_RANGE[0] || opset > ONNX_OPSET_RANGE[1]) throw new OnnxError(`onnx: opset ${opset} is outside the supported ${ONNX_OPSET_RANGE[0]} to ${ONNX_OPSET_RANGE[1]} (re-export with opset_version=17)`);
  return { irVersion, opset, otherOpsets, producer, ...readGraph(graph, opts) };
}

function readGraph(g: ProtoField, opts: ReadState): Omit<OnnxModel, 'irVersion' | 'opset' | 'otherOpsets' | 'producer'> {
  const nodes: OnnxNode[] = [];
  const initializers = new Map<string, OnnxTensor>();
  const declaredInputs: OnnxValueInfo[] = [], outputs: OnnxValueInfo[] = [];
  const valueInfo = new Map<string, OnnxValueInfo>();
  let graphName = '';
  for (const f of protoFields(g.bytes, 0, g.bytes.length, g.bytesAt, 'GraphProto')) {
    if (f.field === 1) nodes.push(readNode(f, opts));
    else if (f.field === 2) graphName = stringOf(f, 'graph name');
    else if (f.field === 5) {
      const t = readTensor(f, opts);
      if (initializers.has(t.name)) throw new OnnxError(`onnx: initializer ${q(t.name)} appears twice (byte offset ${f.at})`);
      initializers.set(t.name, t);
    } else if (f.field === 15) throw new OnnxError(`onnx: sparse initializers (byte offset ${f.at}) are not supported`);
    else if (f.field === 11) declaredInputs.push(readValueInfo(f));
    else if (f.field === 12) outputs.push(readValueInfo(f));
    else if (f.field === 13) { const v = readValueInfo(f); valueInfo.set(v.name, v); }
  }
  const inputs = declaredInputs.filter((v) => !initializers.has(v.name));
  for (const v of declaredInputs) {
    const t = initializers.get(v.name);
    if (t !== undefined && v.dims !== null && (v.dims.length !== t.dims.length || v.dims.some((d, i) => typeof d === 'number' && d !== t.dims[i]))) {
      throw new OnnxError(`onnx: input ${q(v.name)} is declared with shape [${v.dims.join(', ')}] but its initializer has [${t.dims.join(', ')}]`);
    }
  }
  return { graphName, nodes: topologicalOrder(nodes, initializers, inputs, outputs), initializers, inputs, outputs, valueInfo };
}

/**
 * Nodes in an order where every input is produced before it is read (Kahn's algorithm over tensor
 * names). Refuses a name produced twice, an input that nothing produces (dangling) and a cycle,
 * naming the node.
 */
function topologicalOrder(nodes: OnnxNode[], initializers: Map<string, OnnxTensor>, inputs: OnnxValueInfo[], outputs: OnnxValueInfo[]): OnnxNode[] {
  const producer = new Map<string, number>();
  const sources = new Set<string>([...initializers.keys(), ...inputs.map((v) => v.name)]);
  nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (o === '') continue;
      if (producer.has(o) || sources.has(o)) throw new OnnxError(`onnx: tensor ${q(o)} is produced twice (node ${q(n.name)} and ${producer.has(o) ? `node ${q(nodes[producer.get(o)!].name)}` : 'a graph input or initializer'})`);
      producer.set(o, i);
    }
  });
  const waiting = new Array<number>(nodes.length).fill(0);
  const readers = new Map<number, number[]>();
  nodes.forEach((n, i) => {
    for (const x of n.inputs) {
      if (x === '' || sources.has(x)) continue;
      const p = producer.get(x);
      if (p === undefined) throw new OnnxError(`onnx: node ${q(n.name)} (${showText(n.opType, 40)}) reads ${q(x)}, which no node, input or initializer produces (a dangling input)`);
      waiting[i]++;
      if (!readers.has(p)) readers.set(p, []);
      readers.get(p)!.push(i);
    }
  });
  const ready = nodes.map((_, i) => i).filter((i) => waiting[i] === 0).reverse();
  const order: OnnxNode[] = [];
  while (ready.length > 0) {
    const i = ready.pop()!;
    order.push(nodes[i]);
    const rs = readers.get(i) ?? [];
    for (let k = rs.length - 1; k >= 0; k--) if (--waiting[rs[k]] === 0) ready.push(rs[k]);
  }
  if (order.length < nodes.length) {
    const stuck = nodes.findIndex((_, i) => waiting[i] > 0);
    throw new OnnxError(`onnx: the graph has a cycle through node ${q(nodes[stuck].name)} (${showText(nodes[stuck].opType, 40)})`);
  }
  for (const o of outputs) if (!producer.has(o.name) && !sources.has(o.name)) throw new OnnxError(`onnx: graph output ${q(o.name)} is produced by no node`);
  return order;
}

function readNode(f: ProtoField, opts: ReadState): OnnxNode {
  const n: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: new Map(), at: f.at };
  for (const g of protoFields(f.bytes, 0, f.bytes.length, f.bytesAt, 'NodeProto')) {
    if (g.field === 1) n.inputs.push(stringOf(g, 'node input'));
    else if (g.field === 2) n.outputs.push(stringOf(g, 'node output'));
    else if (g.field === 3) n.name = stringOf(g, 'node name');
    else if (g.field === 4) n.opType = stringOf(g, 'op_type');
    else if (g.field === 7) n.domain = stringOf(g, 'node domain');
    else if (g.field === 5) {
      const a = readAttribute(g, opts);
      n.attributes.set(a.name, a.value);
    }
  }
  if (n.opType === '') throw new OnnxError(`onnx: the node at byte offset ${f.at} has no op_type`);
  if (n.name === '') n.name = `${n.opType}@${f.at}`; // unnamed nodes are legal; messages still need a name
  return n;
}

const ATTR_KIND: Readonly<Record<number, OnnxAttribute['kind']>> = { 1: 'float', 2: 'int', 3: 'string', 4: 'tensor', 5: 'graph', 6: 'floats', 7: 'ints', 8: 'strings' };

function readAttribute(f: ProtoField, opts: ReadState): { name: string; value: OnnxAttribute } {
  let name = '', type = 0, fl = 0, i = 0, s = '', t: OnnxTensor | null = null;
  const floats: number[] = [], ints: number[] = [], strings: string[] = [];
  for (const g of protoFields(f.bytes, 0, f.bytes.length, f.bytesAt, 'AttributeProto')) {
    if (g.field === 1) name = stringOf(g, 'attribute name');
    else if (g.field === 20) type = int64Of(g, 'attribute type');
    else if (g.field === 2) fl = float32At(g, 'attribute f');
    else if (g.field === 3) i = int64Of(g, 'attribute i');
    else if (g.field === 4) s = stringOf(g, 'attribute s');
    else if (g.field === 5) t = readTensor(g, opts);
    else if (g.field === 7) append(floats, float32s(g, 'attribute floats'));
    else if (g.field === 8) append(ints, int64sOf(g, 'attribute ints'));
    else if (g.field === 9) strings.push(stringOf(g, 'attribute strings'));
  }
  const kind = ATTR_KIND[type] ?? 'other';
  const value: OnnxAttribute = kind === 'float' ? { kind, value: fl } : kind === 'int' ? { kind, value: i } : kind === 'string' ? { kind, value: s }
    : kind === 'floats' ? { kind, value: floats } : kind === 'ints' ? { kind, value: ints } : kind === 'strings' ? { kind, value: strings }
      : kind === 'tensor' ? (t === null ? (() => { throw new OnnxError(`onnx: tensor attribute ${q(name)} at byte offset ${f.at} holds no tensor`); })() : { kind, value: t })
        : { kind: kind === 'graph' ? 'graph' : 'other', value: null };
  return { name, value };
}

function readValueInfo(f: ProtoField): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', dtype: null, dims: null };
  for (const g of protoFields(f.bytes, 0, f.bytes.length, f.bytesAt, 'ValueInfoProto')) {
    if (g.field === 1) v.name = stringOf(g, 'value name');
    else if (g.field === 2) {
      for (const tp of protoFields(g.bytes, 0, g.bytes.length, g.bytesAt, 'TypeProto')) {
        if (tp.field !== 1) continue; // tensor_type; sequences and maps are not values a CNN has
        for (const tt of protoFields(tp.bytes, 0, tp.bytes.length, tp.bytesAt, 'TypeProto.Tensor')) {
          if (tt.field === 1) v.dtype = ONNX_DTYPES[int64Of(tt, 'elem_type')] ?? null;
          else if (tt.field === 2) {
            v.dims = [];
            for (const d of protoFields(tt.bytes, 0, tt.bytes.length, tt.bytesAt, 'TensorShapeProto')) {
              if (d.field !== 1) continue;
              let dim: number | string | null = null;
              for (const x of protoFields(d.bytes, 0, d.bytes.length, d.bytesAt, 'Dimension')) {
                if (x.field === 1) dim = int64Of(x, 'dim_value');
                else if (x.field === 2) dim = stringOf(x, 'dim_param');
              }
              v.dims.push(dim);
            }
          }
        }
      }
    }
  }
  return v;
}

function float32At(g: ProtoField, what: string): number {
  if (g.wire !== 5) throw new ProtoError(`protobuf: ${what} at byte offset ${g.at} has wire type ${g.wire}, expected a 4-byte float`);
  return new DataView(g.bytes.buffer, g.bytes.byteOffset, 4).getFloat32(0, true);
}

function float32s(g: ProtoField, what: string): number[] {
  if (g.wire === 5) return [float32At(g, what)];
  if (g.wire !== 2 || g.bytes.length % 4 !== 0) throw new ProtoError(`protobuf: ${what} at byte offset ${g.at} is not packed 4-byte floats`);
  const dv = new DataView(g.bytes.buffer, g.bytes.byteOffset, g.bytes.length);
  return Array.from({ length: g.bytes.length / 4 }, (_, k) => dv.getFloat32(4 * k, true));
}

/** A TensorProto: dims, type, and its data from raw_data, a typed field or external data, checked against the dims. */
function readTensor(f: ProtoField, opts: ReadState): OnnxTensor {
  const dims: number[] = [];
  let type = 0, name = '', raw: ProtoField | null = null, location = 0;
  const typed: ProtoField[] = [];
  const external = new Map<string, string>();
  for (const g of protoFields(f.bytes, 0, f.bytes.length, f.bytesAt, 'TensorProto')) {
    if (g.field === 1) append(dims, int64sOf(g, 'tensor dims'));
    else if (g.field === 2) type = int64Of(g, 'tensor data_type');
    else if (g.field === 8) name = stringOf(g, 'tensor name');
    else if (g.field === 9) raw = g;
    else if (g.field === 4 || g.field === 5 || g.field === 7 || g.field === 10 || g.field === 11) typed.push(g);
    else if (g.field === 6) throw new OnnxError(`onnx: tensor at byte offset ${f.at} holds strings, which no CNN op here reads`);
    else if (g.field === 3) throw new OnnxError(`onnx: tensor at byte offset ${f.at} is segmented, which is not supported`);
    else if (g.field === 13) {
      let k = '', v = '';
      for (const e of protoFields(g.bytes, 0, g.bytes.length, g.bytesAt, 'StringStringEntryProto')) {
        if (e.field === 1) k = stringOf(e, 'external_data key');
        else if (e.field === 2) v = stringOf(e, 'external_data value');
      }
      external.set(k, v);
    } else if (g.field === 14) location = int64Of(g, 'data_location');
  }
  const who = `tensor ${q(name)} (byte offset ${f.at})`;
  const dtype = ONNX_DTYPES[type];
  if (dtype === undefined) throw new OnnxError(`onnx: ${who} has data type ${type}, which is not supported`);
  if (dims.some((d) => d < 0)) throw new OnnxError(`onnx: ${who} has a negative dimension [${dims.join(', ')}]`);
  const numel = dims.reduce((a, b) => a * b, 1);
  const item = BYTES[dtype];
  let src: Uint8Array | null = raw?.bytes ?? null;
  if (location === 1) {
    const where = external.get('location');
    if (where === undefined) throw new OnnxError(`onnx: ${who} is stored externally but names no location`);
    if (opts.externalData === undefined) throw new OnnxError(`onnx: ${who} is stored in the external file ${q(where)}, and this reader was given no folder to read it from`);
    const offset = external.has('offset') ? nonNegative(external.get('offset')!, `${who}: external offset`) : 0;
    const length = external.has('length') ? nonNegative(external.get('length')!, `${who}: external length`) : -1;
    if (length >= 0 && length !== numel * item) throw new OnnxError(`onnx: ${who} has shape [${dims.join(', ')}] of ${dtype} (${numel * item} bytes) but its external length is ${length}`);
    src = opts.externalData(where, offset, length < 0 ? numel * item : length);
  }
  if (src !== null) {
    if (src.length !== numel * item) throw new OnnxError(`onnx: ${who} has shape [${dims.join(', ')}] of ${dtype}: ${numel * item} bytes, but its data holds ${src.length}`);
    if (opts.pending !== undefined && location !== 1 && VIEWS[dtype] !== undefined) {
      const tensor: OnnxTensor = { name, dtype, dims, data: new Uint8Array(0) }; // its data is set once the parse is done
      opts.pending.push({ tensor, src });
      return tensor;
    }
    // external data arrives in a fresh array of its own: a typed view of it, not a second copy
    if (location === 1 && VIEWS[dtype] !== undefined && src.byteOffset % BYTES[dtype] === 0) return { name, dtype, dims, data: new VIEWS[dtype]!(src.buffer as ArrayBuffer, src.byteOffset, numel) };
    return { name, dtype, dims, data: decodeRaw(dtype, src, who) };
  }
  return { name, dtype, dims, data: decodeTyped(dtype, typed, numel, who) };
}

function nonNegative(s: string, what: string): number {
  if (!/^\d{1,15}$/.test(s)) throw new OnnxError(`onnx: ${what} is '${showText(s, 30)}', not a byte count`);
  return Number(s);
}

/**
 * Little-endian bytes → the tensor's values, copied: the file's bytes need not be aligned, and the copy
 * is made by `new Uint8Array(b)`, never `b.slice()`, which on Node's buffers (readFileSync's) is a view
 * of the whole file, not a copy.
 */
function decodeRaw(dtype: OnnxDType, b: Uint8Array, who: string): OnnxData {
  const n = b.length / BYTES[dtype];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (dtype) {
    case 'float32': return new Float32Array(new Uint8Array(b).buffer);
    case 'float64': return new Float64Array(new Uint8Array(b).buffer);
    case 'int32': return new Int32Array(new Uint8Array(b).buffer);
    case 'int16': return new Int16Array(new Uint8Array(b).buffer);
    case 'uint16': return new Uint16Array(new Uint8Array(b).buffer);
    case 'uint32': return new Uint32Array(new Uint8Array(b).buffer);
    case 'int8': return new Int8Array(new Uint8Array(b).buffer);
    case 'uint8': case 'bool': return new Uint8Array(b);
    case 'float16': case 'bfloat16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dtype, dv.getUint16(2 * i, true));
      return out;
    }
    case 'int64': case 'uint64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = exactInt(dtype === 'int64' ? dv.getBigInt64(8 * i, true) : dv.getBigUint64(8 * i, true));
      return out;
    }
  }
}

// int64 beyond ±2^53 only appears as Slice's "from/to the end" sentinels (INT64_MAX, INT64_MIN + 1,
// …): saturated to ±(2^53 − 1), which every consumer clamps the same way. A shape that large is
// refused where it is used (its element count is checked before anything is allocated).
function exactInt(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (v < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(v);
}

function halfToFloat(dtype: 'float16' | 'bfloat16', h: number): number {
  return dtype === 'bfloat16' ? bfloat16ToFloat(h) : halfFloat(h);
}

/** The typed fields (float_data, int32_data, int64_data, double_data, uint64_data), each checked for its element count. */
function decodeTyped(dtype: OnnxDType, fields: ProtoField[], numel: number, who: string): OnnxData {
  const want = dtype === 'float32' ? 4 : dtype === 'float64' ? 10 : dtype === 'int64' ? 7 : dtype === 'uint32' || dtype === 'uint64' ? 11 : 5;
  const values: number[] = [];
  for (const g of fields) {
    if (g.field !== want) throw new OnnxError(`onnx: ${who} is ${dtype} but stores its values in field ${g.field}`);
    if (want === 4) append(values, float32s(g, 'float_data'));
    else if (want === 10) {
      if (g.wire === 1) values.push(new DataView(g.bytes.buffer, g.bytes.byteOffset, 8).getFloat64(0, true));
      else if (g.wire === 2 && g.bytes.length % 8 === 0) { const dv = new DataView(g.bytes.buffer, g.bytes.byteOffset, g.bytes.length); for (let k = 0; k < g.bytes.length; k += 8) values.push(dv.getFloat64(k, true)); }
      else throw new OnnxError(`onnx: ${who}: double_data at byte offset ${g.at} is not packed 8-byte floats`);
    } else if (want === 7) append(values, int64sRawOf(g, `${who} values`).map(exactInt)); // Slice's sentinels saturate, as from raw_data
    else append(values, int64sOf(g, `${who} values`));
    if (values.length > numel) break;
  }
  if (values.length !== numel) throw new OnnxError(`onnx: ${who} has ${numel} elements by its dims but stores ${values.length > numel ? 'more' : values.length}`);
  switch (dtype) {
    case 'float32': return Float32Array.from(values);
    case 'float64': case 'int64': case 'uint64': return Float64Array.from(values);
    case 'int32': return Int32Array.from(values);
    case 'int16': return Int16Array.from(values);
    case 'uint16': return Uint16Array.from(values);
    case 'uint32': return Uint32Array.from(values);
    case 'int8': return Int8Array.from(values);
    case 'uint8': case 'bool': return Uint8Array.from(values);
    case 'float16': case 'bfloat16': return Float32Array.from(values, (v) => halfToFloat(dtype, v & 0xffff));
  }
}
