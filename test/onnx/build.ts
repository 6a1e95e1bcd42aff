// Small ONNX graphs for tests, written with the engine's protobuf writer (onnx.proto field numbers).
import { ProtoMessage } from '../../src/io/protobuf.js';

export const P = () => new ProtoMessage();
export const FLOAT = 1, UINT8 = 2, INT8 = 3, INT32 = 6, INT64 = 7;
export type NodeSpec = { op: string; inputs: string[]; outputs: string[]; name?: string; attrs?: ProtoMessage[] };

export const node = (n: NodeSpec) => {
  const m = P();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name ?? `${n.op}_${n.outputs[0]}`).string(4, n.op);
  for (const a of n.attrs ?? []) m.message(5, a);
  return m;
};
export const intAttr = (name: string, v: number) => P().string(1, name).varint(3, v).varint(20, 2);
export const intsAttr = (name: string, vs: number[]) => { const m = P().string(1, name); for (const v of vs) m.varint(8, v); return m.varint(20, 7); };
export const floatAttr = (name: string, v: number) => P().string(1, name).float(2, v).varint(20, 1);
export const strAttr = (name: string, v: string) => P().string(1, name).bytes(4, new TextEncoder().encode(v)).varint(20, 3);
export const tensor = (name: string, dims: number[], type: number, raw: Uint8Array | null, extra?: (m: ProtoMessage) => void) => {
  const m = P();
  for (const d of dims) m.varint(1, d);
  m.varint(2, type).string(8, name);
  if (raw !== null) m.bytes(9, raw);
  extra?.(m);
  return m;
};
export const valueInfo = (name: string, dims: (number | string)[] | null, elemType = FLOAT) => {
  const type = P().varint(1, elemType);
  if (dims !== null) {
    const shape = P();
    for (const d of dims) shape.message(1, typeof d === 'number' ? P().varint(1, d) : P().string(2, d));
    type.message(2, shape);
  }
  return P().string(1, name).message(2, P().message(1, type));
};
export function model(nodes: NodeSpec[], opts: { inits?: ProtoMessage[]; inputs?: ProtoMessage[]; outputs?: string[]; outputInfos?: ProtoMessage[]; opset?: number; ir?: number } = {}): Uint8Array {
  const g = P();
  for (const n of nodes) g.message(1, node(n));
  g.string(2, 'g');
  for (const t of opts.inits ?? []) g.message(5, t);
  for (const v of opts.inputs ?? [valueInfo('x', [1, 2])]) g.message(11, v);
  for (const v of opts.outputInfos ?? (opts.outputs ?? [nodes.at(-1)?.outputs[0] ?? 'x']).map((o) => valueInfo(o, []))) g.message(12, v);
  return P().varint(1, opts.ir ?? 8).string(2, 'test').message(7, g).message(8, P().string(1, '').varint(2, opts.opset ?? 17)).encode();
}
export const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);
export const i64 = (...v: number[]) => new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer);
