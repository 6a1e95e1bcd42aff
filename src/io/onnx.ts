// ONNX export of a RepVGG or MobileOne in eval mode (onnx.proto: ModelProto → GraphProto → NodeProto, TensorProto).
//   deploy:          [Conv(3×3, bias) → Relu] per block → GlobalAveragePool → Flatten → Gemm
//   training-time:   per block Conv→BatchNormalization (3×3), Conv→BatchNormalization (1×1),
//                    BatchNormalization (identity), Add, Relu — the unfused graph, for backends that
//                    want to test their own fusion against ours.
// MobileOne the same way: per block its branches (Conv→BatchNormalization each, the skip BN), Add,
// then the SE (GlobalAveragePool → Conv → Relu → Conv → Sigmoid → Mul) and Relu; deployed, Conv (+ SE) + Relu.
// Initializers carry the state-dict names and raw little-endian data; the batch, height and width
// of the input are symbolic ('N', 'H', 'W'), so one file serves every batch size and image size.

import type { Tensor } from '../tensor/tensor.js';
import { LITTLE_ENDIAN, bfloat16Bits, halfBits } from './dtypes.js';
import { ProtoMessage } from './protobuf.js';
import { RepVGGBlock, type RepVGG } from '../nn/repvgg.js';
import { BatchNorm2d, Conv2d } from '../nn/layers.js';
import { BranchBlock, FusedBlock } from '../nn/branch_block.js';
import type { MobileOne } from '../nn/mobileone.js';
import type { SqueezeExcite } from '../nn/squeeze_excite.js';
import { VERSION } from '../version.js';
import { ONNX_DTYPES, type OnnxAttribute, type OnnxModel, type OnnxTensor, type OnnxValueInfo } from './onnx_read.js';
import { showText } from '../tensor/untrusted.js';

/** opset → the IR version that introduced it (onnx/docs/Versioning.md). */
const IR_VERSION: Readonly<Record<number, number>> = { 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };
const ONNX_OPSETS = Object.keys(IR_VERSION).map(Number);
export const DEFAULT_OPSET = 17;

const FLOAT = 1, DOUBLE = 11; // TensorProto.DataType
const ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS = 7; // AttributeProto.AttributeType

type Attr = [name: string, value: number | number[], kind?: 'float'];

function attribute([name, value, kind]: Attr): ProtoMessage {
  const a = new ProtoMessage().string(1, name);
  if (Array.isArray(value)) {
    for (const v of value) a.varint(8, v);
    return a.varint(20, ATTR_INTS);
  }
  return kind === 'float' ? a.float(2, value).varint(20, ATTR_FLOAT) : a.varint(3, value).varint(20, ATTR_INT);
}

class GraphBuilder {
  readonly graph = new ProtoMessage();
  private readonly elemType: number;

  constructor(readonly dtype: 'float32' | 'float64') {
    this.elemType = dtype === 'float64' ? DOUBLE : FLOAT;
  }

  node(op: string, name: string, inputs: string[], output: string, attrs: Attr[] = []): string {
    const n = new ProtoMessage();
    for (const i of inputs) n.string(1, i);
    n.string(2, output).string(3, name).string(4, op);
    for (const a of attrs) n.message(5, attribute(a));
    this.graph.message(1, n);
    return output;
  }

  initializer(name: string, t: Tensor): string {
    const p = new ProtoMessage();
    for (const d of t.shape) p.varint(1, d);
    p.varint(2, this.elemType).string(8, name);
    p.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    this.graph.message(5, p);
    return name;
  }

  // ValueInfoProto{name, TypeProto{tensor_type{elem_type, shape{dim: value | param}}}}
  valueInfo(field: 11 | 12, name: string, dims: (number | string)[]): void {
    const shape = new ProtoMessage();
    for (const d of dims) shape.message(1, typeof d === 'number' ? new ProtoMessage().varint(1, d) : new ProtoMessage().string(2, d));
    const tensorType = new ProtoMessage().varint(1, this.elemType).message(2, shape);
    this.graph.message(field, new ProtoMessage().string(1, name).message(2, new ProtoMessage().message(1, tensorType)));
  }

  conv(prefix: string, c: Conv2d, x: string, out: string): string {
    const [, , kh, kw] = c.weight.data.shape;
    const pad = (kh - 1) / 2; // RepVGG's convs: 3×3 with padding 1, 1×1 with padding 0
    const s = typeof c.stride === 'number' ? c.stride : c.stride[0];
    const inputs = [x, this.initializer(`${prefix}.weight`, c.weight.data)];
    if (c.bias !== null) inputs.push(this.initializer(`${prefix}.bias`, c.bias.data));
    return this.node('Conv', prefix, inputs, out, [['kernel_shape', [kh, kw]], ['pads', [pad, pad, pad, pad]], ['strides', [s, s]], ['dilations', [1, 1]], ['group', c.groups]]);
  }

  batchNorm(prefix: string, bn: BatchNorm2d, x: string): string {
    const inputs = [x, this.initializer(`${prefix}.weight`, bn.weight.data), this.initializer(`${prefix}.bias`, bn.bias.data),
      this.initializer(`${prefix}.running_mean`, bn.runningMean), this.initializer(`${prefix}.running_var`, bn.runningVar)];
    return this.node('BatchNormalization', prefix, inputs, `${prefix}.out`, [['epsilon', bn.eps, 'float']]);
  }

  // y = ReLU(Σ branches), or ReLU(conv + b) for a deploy block
  block(prefix: string, b: RepVGGBlock, x: string): string {
    if (b.rbrReparam !== null) return this.node('Relu', `${prefix}.relu`, [this.conv(`${prefix}.rbr_reparam`, b.rbrReparam, x, `${prefix}.rbr_reparam.out`)], `${prefix}.out`);
    const branches = [this.batchNorm(`${prefix}.rbr_dense.bn`, b.rbrDense!.bn, this.conv(`${prefix}.rbr_dense.conv`, b.rbrDense!.conv, x, `${prefix}.rbr_dense.conv.out`))];
    if (b.rbr1x1 !== null) branches.push(this.batchNorm(`${prefix}.rbr_1x1.bn`, b.rbr1x1.bn, this.conv(`${prefix}.rbr_1x1.conv`, b.rbr1x1.conv, x, `${prefix}.rbr_1x1.conv.out`)));
    if (b.rbrIdentity !== null) branches.push(this.batchNorm(`${prefix}.rbr_identity`, b.rbrIdentity, x));
    let sum = branches[0];
    for (let i = 1; i < branches.length; i++) sum = this.node('Add', `${prefix}.add${i}`, [sum, branches[i]], `${prefix}.sum${i}`);
    return this.node('Relu', `${prefix}.relu`, [sum], `${prefix}.out`);
  }

  // s = σ(up(ReLU(down(mean_hw x)))), y = x ⊙ s (broadcast over H, W)
  squeezeExcite(prefix: string, se: SqueezeExcite, x: string): string {
    const pooled = this.node('GlobalAveragePool', `${prefix}.pool`, [x], `${prefix}.pool.out`);
    const h = this.node('Relu', `${prefix}.relu`, [this.conv(`${prefix}.${se.names[0]}`, se.down, pooled, `${prefix}.${se.names[0]}.out`)], `${prefix}.relu.out`);
    const s = this.node('Sigmoid', `${prefix}.sigmoid`, [this.conv(`${prefix}.${se.names[1]}`, se.up, h, `${prefix}.${se.names[1]}.out`)], `${prefix}.sigmoid.out`);
    return this.node('Mul', `${prefix}.mul`, [x, s], `${prefix}.out`);
  }

  // a family block: act(SE(Σ branches)) with every branch a chain of convs and BNs, or act(SE(conv(x) + b)) fused
  familyBlock(prefix: string, b: BranchBlock | FusedBlock, x: string): string {
    let sum: string;
    if (b instanceof FusedBlock) sum = this.conv(`${prefix}.${b.children()[0][0]}`, b.conv, x, `${prefix}.${b.children()[0][0]}.out`);
    else {
      if (b.postBN !== null) throw new Error(`onnx: block '${prefix}' has a BN after its sum; this exporter writes MobileOne and RepVGG`);
      const named = b.linearBranches().branches;
      const outs = named.map((chain) => chain.reduce((h, [n, m]) => {
        if (m instanceof Conv2d) return this.conv(`${prefix}.${n}`, m, h, `${prefix}.${n}.out`);
        if (m instanceof BatchNorm2d) return this.batchNorm(`${prefix}.${n}`, m, h);
        throw new Error(`onnx: block '${prefix}' stage '${n}' (${m.constructor.name}) is not a conv or BN`);
      }, x));
      sum = outs[0];
      for (let i = 1; i < outs.length; i++) sum = this.node('Add', `${prefix}.add${i}`, [sum, outs[i]], `${prefix}.sum${i}`);
    }
    if (b.se !== null) sum = this.squeezeExcite(`${prefix}.${b.seName}`, b.se, sum);
    if (b.activation !== 'relu') throw new Error(`onnx: block '${prefix}' ends in ${b.activation}; this exporter writes ReLU blocks`);
    return this.node('Relu', `${prefix}.relu`, [sum], `${prefix}.out`);
  }
}

export interface OnnxOptions {
  /** ONNX operator set, 11 to 21 (default 17) */
  opset?: number;
}

/**
 * A RepVGG or MobileOne (deploy or training-time; always exported as in eval mode) as an ONNX model:
 * input 'input' (N, C, H, W) → output 'logits' (N, num_classes), in the model's dtype.
 */
export function toOnnx(model: RepVGG | MobileOne, opts: OnnxOptions = {}): Uint8Array {
  return onnxModelProto(model, opts).encode();
}

/** The ModelProto, unencoded: .chunks() streams it (initializers are views of the weights), .size() measures it. */
export function onnxModelProto(model: RepVGG | MobileOne, opts: OnnxOptions = {}): ProtoMessage {
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!(opset in IR_VERSION)) throw new Error(`onnx: opset ${opset} is not supported (supported: ${ONNX_OPSETS[0]} to ${ONNX_OPSETS[ONNX_OPSETS.length - 1]})`);
  if (!LITTLE_ENDIAN) throw new Error('onnx: big-endian hosts are not supported (raw_data is little-endian)');
  const g = new GraphBuilder(model.dtype);
  g.graph.string(2, `${'stages' in model ? 'repvgg' : 'mobileone'}_${model.deploy ? 'deploy' : 'train_eval'}`);
  let h = 'input', head = 'linear';
  for (const [name, m] of model.children()) {
    if (m instanceof RepVGGBlock) h = g.block(name, m, h);
    else if (m instanceof BranchBlock || m instanceof FusedBlock) h = g.familyBlock(name, m, h);
    else head = name; // the classifier, last: 'linear' or timm's 'head.fc'
  }
  h = g.node('GlobalAveragePool', 'gap', [h], 'gap.out');
  h = g.node('Flatten', 'flatten', [h], 'features', [['axis', 1]]);
  g.node('Gemm', head, [h, g.initializer(`${head}.weight`, model.linear.weight.data), g.initializer(`${head}.bias`, model.linear.bias.data)], 'logits', [['transB', 1]]);
  g.valueInfo(11, 'input', ['N', model.inChannels, 'H', 'W']);
  g.valueInfo(12, 'logits', ['N', model.numClasses]);
  return new ProtoMessage()
    .varint(1, IR_VERSION[opset])
    .string(2, 'repvgg-ts')
    .string(3, VERSION)
    .message(7, g.graph)
    .message(8, new ProtoMessage().string(1, '').varint(2, opset));
}

// ---- any graph read by readOnnx, written back (fuse-onnx's output) --------------------------------

const DTYPE_CODE: Readonly<Record<string, number>> = Object.fromEntries(Object.entries(ONNX_DTYPES).map(([code, name]) => [name, Number(code)]));

/** A tensor as TensorProto: dims, type, name, little-endian raw_data (int64 from exact numbers;
 * float16 and bfloat16, held widened, rounded to nearest even: exact for values read from a file). */
function tensorProto(t: OnnxTensor): ProtoMessage {
  const p = new ProtoMessage();
  for (const d of t.dims) p.varint(1, d);
  p.varint(2, DTYPE_CODE[t.dtype]).string(8, t.name);
  const d = t.data;
  const raw = t.dtype === 'int64' ? BigInt64Array.from(d as Float64Array, (v) => BigInt(v))
    : t.dtype === 'uint64' ? BigUint64Array.from(d as Float64Array, (v) => BigInt(v))
    : t.dtype === 'float16' ? Uint16Array.from(d, halfBits)
    : t.dtype === 'bfloat16' ? Uint16Array.from(d, bfloat16Bits) : d;
  return p.bytes(9, new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
}

function attributeProto(name: string, a: OnnxAttribute): ProtoMessage {
  const m = new ProtoMessage().string(1, name);
  switch (a.kind) {
    case 'float': return m.float(2, a.value).varint(20, 1);
    case 'int': return m.varint(3, a.value).varint(20, 2);
    case 'string': return m.string(4, a.value).varint(20, 3);
    case 'tensor': return m.message(5, tensorProto(a.value)).varint(20, 4);
    case 'floats': for (const v of a.value) m.float(7, v); return m.varint(20, 6);
    case 'ints': for (const v of a.value) m.varint(8, v); return m.varint(20, 7);
    case 'strings': for (const v of a.value) m.string(9, v); return m.varint(20, 8);
    default: throw new Error(`onnx: attribute '${showText(name)}' holds a subgraph or a type this writer does not keep`);
  }
}

function valueInfoProto(v: OnnxValueInfo): ProtoMessage {
  const m = new ProtoMessage().string(1, v.name);
  if (v.dtype === null) return m;
  const tensorType = new ProtoMessage().varint(1, DTYPE_CODE[v.dtype]);
  if (v.dims !== null) {
    const shape = new ProtoMessage();
    for (const d of v.dims) shape.message(1, typeof d === 'number' ? new ProtoMessage().varint(1, d) : typeof d === 'string' ? new ProtoMessage().string(2, d) : new ProtoMessage());
    tensorType.message(2, shape);
  }
  return m.message(2, new ProtoMessage().message(1, tensorType));
}

/** An OnnxModel (as readOnnx returns it, possibly rewritten) as a ModelProto. */
export function onnxProtoOf(model: OnnxModel, producer = 'repvgg-ts'): ProtoMessage {
  const g = new ProtoMessage();
  for (const n of model.nodes) {
    const m = new ProtoMessage();
    for (const i of n.inputs) m.string(1, i);
    for (const o of n.outputs) m.string(2, o);
    m.string(3, n.name).string(4, n.opType);
    if (n.domain !== '') m.string(7, n.domain);
    for (const [k, a] of n.attributes) m.message(5, attributeProto(k, a));
    g.message(1, m);
  }
  g.string(2, model.graphName);
  for (const t of model.initializers.values()) g.message(5, tensorProto(t));
  for (const v of model.inputs) g.message(11, valueInfoProto(v));
  for (const v of model.outputs) g.message(12, valueInfoProto(v));
  for (const v of model.valueInfo.values()) g.message(13, valueInfoProto(v));
  const m = new ProtoMessage().varint(1, model.irVersion).string(2, producer).string(3, VERSION).message(7, g)
    .message(8, new ProtoMessage().string(1, '').varint(2, model.opset));
  for (const [domain, version] of model.otherOpsets) m.message(8, new ProtoMessage().string(1, domain).varint(2, version));
  return m;
}
