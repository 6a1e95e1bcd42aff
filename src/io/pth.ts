// PyTorch checkpoints (.pth/.pt/.bin) without Python. Two layouts exist:
//  - zip (torch.save since 1.6): `<prefix>/data.pkl` pickles the object with each storage replaced
//    by a persistent id ('storage', torch.FloatStorage, key, location, numel); the storage's bytes
//    are the record `<prefix>/data/<key>`, little-endian unless `<prefix>/byteorder` says 'big'.
//  - legacy (_use_new_zipfile_serialization=False): five pickles in a row (magic number, protocol
//    1001, sys_info, the object, the sorted storage keys), then for each key an int64 element count
//    and the raw little-endian bytes.
// A tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)`: element
// (i₀, i₁, …) lives at storage[offset + Σ iₖ·strideₖ]. Views share a storage; we copy each tensor
// out contiguous. Nothing in the pickle is ever called (see pickle.ts); only the rebuild functions
// below are implemented, by us.

import { ITEM_SIZE, decodeLE, swapBytes, viewLE, type EntryArray, type SafeDType, type SafeEntry } from './dtypes.js';
import { PickleError, PickleWriter, PyGlobal, type PyValue, unpickle } from './pickle.js';
import { isZip, readZip, writeZip } from './zip.js';
import { describeValue, showText } from '../tensor/untrusted.js';

/** torch.<Name>Storage ↔ element type */
const STORAGE_DTYPE: Readonly<Record<string, SafeDType>> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL', UntypedStorage: 'U8',
};

export class TorchStorage {
  /** raw little-endian bytes; for the legacy layout filled in after the object pickle */
  bytes: Uint8Array | null = null;
  bigEndian = false;
  constructor(readonly key: string, readonly dtype: SafeDType, readonly numel: number) {}
}

export class TorchTensor {
  constructor(readonly storage: TorchStorage, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}

  get dtype(): SafeDType {
    return this.storage.dtype;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * The tensor as a contiguous state-dict entry (F16/BF16 widened to float32). A contiguous,
   * little-endian, aligned tensor is a view into the checkpoint's bytes (no copy); others are copied.
   */
  toEntry(): SafeEntry {
    const { storage: s, offset, shape, stride } = this;
    const item = ITEM_SIZE[s.dtype];
    if (s.bytes === null) throw new PickleError(`pth: storage '${showText(s.key)}' has no data`);
    const n = this.numel;
    let last = 0; // highest element index the view touches, relative to offset
    for (let k = 0; k < shape.length; k++) last += (shape[k] - 1) * stride[k];
    const span = n === 0 ? 0 : last + 1;
    let raw = s.bytes.subarray(offset * item, (offset + span) * item);
    const contiguous = isContiguous(shape, stride);
    const view = contiguous && !s.bigEndian ? viewLE(s.dtype, raw) : null;
    if (view !== null) return { dtype: s.dtype, shape: shape.slice(), data: view };
    if (s.bigEndian) {
      raw = new Uint8Array(raw); // a copy (slice() of Node's buffers is a view: the swap would write into the caller's file bytes)
      swapBytes(raw, item);
    }
    const flat = decodeLE(s.dtype, raw);
    return { dtype: s.dtype, shape: shape.slice(), data: contiguous ? flat : gather(flat, shape, stride, n) };
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    if (shape[k] !== 1 && stride[k] !== expect) return false;
    expect *= shape[k];
  }
  return true;
}

// out[i₀…] = src[Σ iₖ·strideₖ], walking the indices like an odometer (no recursion).
function gather(src: EntryArray, shape: number[], stride: number[], n: number): EntryArray {
  const out = new (src.constructor as new (n: number) => EntryArray)(n);
  const d = shape.length;
  const idx = new Array<number>(d).fill(0);
  let at = 0;
  for (let i = 0; i < n; i++) {
    (out as Float64Array)[i] = (src as Float64Array)[at];
    for (let k = d - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) { at += stride[k]; break; }
      at -= (shape[k] - 1) * stride[k];
      idx[k] = 0;
    }
  }
  return out;
}

const isCount = (v: PyValue): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** PyTorch's own limit on a tensor's dimensions. */
const MAX_RANK = 64;

/** collections.OrderedDict(items): items is a list of (key, value) pairs, or nothing. */
function orderedDict(args: PyValue[]): PyValue {
  const items = args[0];
  if (args.length === 0 || items === null) return new Map();
  if (!Array.isArray(items)) throw new PickleError(`pth: OrderedDict is built from ${describeValue(items)}, not a list of (key, value) pairs`);
  const out = new Map<PyValue, PyValue>();
  for (let i = 0; i < items.length; i++) {
    const kv = items[i];
    if (!Array.isArray(kv) || kv.length !== 2) throw new PickleError(`pth: OrderedDict item ${i} is ${describeValue(kv)}, not a (key, value) pair`);
    out.set(kv[0], kv[1]);
  }
  return out;
}

function rebuildTensor(args: PyValue[]): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) {
    throw new PickleError(`pth: a tensor's storage is ${describeValue(storage)}, which this reader never calls; refused`);
  }
  // Each argument is described by a bounded summary: a size may be a memo DAG or a cycle.
  const bad = (what: string, v: PyValue): never => { throw new PickleError(`pth: a tensor on storage '${showText(storage.key)}' has a malformed ${what}: ${describeValue(v)}`); };
  if (!isCount(offset)) bad('storage offset', offset);
  if (!Array.isArray(size) || size.length > MAX_RANK || !size.every(isCount)) bad('size (want a tuple of at most 64 non-negative integers)', size);
  const shape = size as number[];
  if (!Array.isArray(stride) || stride.length !== shape.length || !stride.every(isCount)) bad(`stride (want ${shape.length} non-negative integers, as the size)`, stride);
  const strides = stride as number[], start = offset as number;
  const t = new TorchTensor(storage, start, shape, strides);
  let last = start;
  for (let k = 0; k < shape.length; k++) last += (shape[k] - 1) * strides[k];
  if (t.numel > 0 && last >= storage.numel) {
    throw new PickleError(`pth: a tensor of shape (${shape.join(', ')}) at offset ${start} with strides (${strides.join(', ')}) reads element ${last} of storage '${showText(storage.key)}', which holds ${storage.numel}`);
  }
  return t;
}

/** The globals a state dict needs, implemented here; every other global stays an inert PyObject. */
const REDUCERS: ReadonlyMap<string, (args: PyValue[]) => PyValue> = new Map<string, (args: PyValue[]) => PyValue>([
  ['collections.OrderedDict', orderedDict],
  ['torch._utils._rebuild_tensor', rebuildTensor],
  ['torch._utils._rebuild_tensor_v2', rebuildTensor],
  ['torch._utils._rebuild_parameter', (args) => args[0]],
  ['torch._utils._rebuild_parameter_with_state', (args) => args[0]],
  // Tensor subclasses: _rebuild_from_type_v2(func, new_type, args, state) → func(*args)
  ['torch._tensor._rebuild_from_type_v2', (args) => {
    const [fn, , inner] = args;
    if (args.length < 3) throw new PickleError(`pth: _rebuild_from_type_v2 takes (func, type, args, state), got ${args.length} argument(s)`);
    const impl = fn instanceof PyGlobal ? REDUCERS.get(fn.qualname) : undefined;
    if (impl === undefined) throw new PickleError(`pth: a tensor is rebuilt by ${describeValue(fn)}, which this reader never calls; refused`);
    if (!Array.isArray(inner)) throw new PickleError(`pth: _rebuild_from_type_v2's arguments are ${describeValue(inner)}, not a tuple`);
    return impl(inner);
  }],
]);

function storageFrom(pid: PyValue, storages: Map<string, TorchStorage>): TorchStorage {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new PickleError(`pth: unsupported persistent id ${describeValue(pid)} (expected a ('storage', type, key, location, numel) tuple)`);
  const [, type, key, , numel] = pid as PyValue[];
  if (!(type instanceof PyGlobal)) throw new PickleError(`pth: storage type is ${describeValue(type)}, not a torch storage class`);
  const dtype = type.module === 'torch' && Object.hasOwn(STORAGE_DTYPE, type.name) ? STORAGE_DTYPE[type.name] : undefined;
  if (dtype === undefined) throw new PickleError(`pth: storage type ${type.summary} is not a torch storage this reader knows (${Object.keys(STORAGE_DTYPE).map((s) => 'torch.' + s).join(', ')})`);
  if (typeof key !== 'string' || !isCount(numel)) throw new PickleError(`pth: storage id with key ${describeValue(key)} and size ${describeValue(numel)} is malformed`);
  if (pid.length > 5 && pid[5] !== null) throw new PickleError(`pth: storage '${showText(key)}' is a storage view (a pre-1.0 checkpoint); re-save it with a current torch`);
  const old = storages.get(key);
  if (old !== undefined) {
    if (old.dtype !== dtype) throw new PickleError(`pth: storage '${showText(key)}' is used as both ${old.dtype} and ${dtype}`);
    return old;
  }
  const s = new TorchStorage(key, dtype, numel);
  storages.set(key, s);
  return s;
}

export type PthFormat = 'pth-zip' | 'pth-legacy';

/**
 * How a legacy torch.save stream begins: PROTO n (2 to 5; `pickle_protocol=` chooses it), from
 * protocol 4 on a FRAME (0x95 and an 8-byte length), then the magic number 0x1950a86a20f9469cfc6c as
 * LONG1 (0x8a, 10 bytes, little-endian).
 */
const LEGACY_MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function isLegacyPth(bytes: Uint8Array): boolean {
  if (bytes.length < 2 || bytes[0] !== 0x80 || bytes[1] < 2 || bytes[1] > 5) return false;
  const at = bytes[1] >= 4 && bytes[2] === 0x95 ? 11 : 2;
  return bytes.length >= at + LEGACY_MAGIC.length && LEGACY_MAGIC.every((b, i) => bytes[at + i] === b);
}

export function pthFormat(bytes: Uint8Array): PthFormat | null {
  if (isZip(bytes)) return 'pth-zip';
  if (isLegacyPth(bytes)) return 'pth-legacy';
  return null;
}

/**
 * The unpickled object, with tensors as TorchTensor (copied out by toEntry()); for a legacy stream
 * also its sys_info pickle (inert records only, as everything else here).
 */
export function readPth(bytes: Uint8Array): { value: PyValue; format: PthFormat; sysInfo?: PyValue } {
  const format = pthFormat(bytes);
  if (format === 'pth-zip') return { value: readZipPth(bytes), format };
  if (format === 'pth-legacy') return { ...readLegacyPth(bytes), format };
  throw new PickleError('pth: neither a zip archive (torch.save since 1.6) nor a legacy torch.save stream (magic number)');
}

function readZipPth(bytes: Uint8Array): PyValue {
  const records = readZip(bytes);
  const pkls = [...records.keys()].filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pkls.length !== 1) throw new PickleError(`pth: the archive has ${pkls.length} data.pkl records (expected one; records: ${[...records.keys()].slice(0, 5).map((n) => `'${showText(n)}'`).join(', ')})`);
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const order = records.get(prefix + 'byteorder');
  const bigEndian = order !== undefined && new TextDecoder().decode(order).trim() === 'big';
  const storages = new Map<string, TorchStorage>();
  const { value } = unpickle(records.get(pkls[0])!, { reducers: REDUCERS, persistentLoad: (pid) => storageFrom(pid, storages) });
  for (const s of storages.values()) {
    const rec = `${prefix}data/${s.key}`;
    const data = records.get(rec);
    if (data === undefined) throw new PickleError(`pth: storage '${showText(s.key)}' has no record '${showText(rec)}' in the archive`);
    if (data.length < s.numel * ITEM_SIZE[s.dtype]) throw new PickleError(`pth: record '${showText(rec)}' holds ${data.length} bytes, but storage '${showText(s.key)}' declares ${s.numel} ${s.dtype} elements (${s.numel * ITEM_SIZE[s.dtype]} bytes)`);
    s.bytes = data;
    s.bigEndian = bigEndian;
  }
  return value;
}

function readLegacyPth(bytes: Uint8Array): { value: PyValue; sysInfo: PyValue } {
  let at = unpickle(bytes).end; // the magic number
  const proto = unpickle(bytes, {}, at);
  if (proto.value !== 1001) throw new PickleError(`pth: legacy protocol version ${describeValue(proto.value)} at byte offset ${at}, expected 1001`);
  const info = unpickle(bytes, {}, proto.end);
  const bigEndian = info.value instanceof Map && info.value.get('little_endian') === false;
  const storages = new Map<string, TorchStorage>();
  const main = unpickle(bytes, { reducers: REDUCERS, persistentLoad: (pid) => storageFrom(pid, storages), baseOffset: 0 }, info.end);
  const keys = unpickle(bytes, {}, main.end);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) throw new PickleError(`pth: legacy storage key list at byte offset ${main.end} is not a list of strings`);
  at = keys.end;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys.value as string[]) {
    const s = storages.get(key);
    if (s === undefined) throw new PickleError(`pth: legacy storage '${showText(key)}' is listed but no tensor uses it`);
    if (at + 8 > bytes.length) throw new PickleError(`pth: legacy storage '${showText(key)}' size at byte offset ${at} runs past the end of the ${bytes.length}-byte file (truncated?)`);
    const n = dv.getBigInt64(at, !bigEndian);
    if (n !== BigInt(s.numel)) throw new PickleError(`pth: legacy storage '${showText(key)}' at byte offset ${at} holds ${n} elements, but the pickle declares ${s.numel}`);
    const nbytes = s.numel * ITEM_SIZE[s.dtype];
    if (at + 8 + nbytes > bytes.length) throw new PickleError(`pth: legacy storage '${showText(key)}' (${nbytes} bytes from byte offset ${at + 8}) runs past the end of the ${bytes.length}-byte file (truncated?)`);
    s.bytes = bytes.subarray(at + 8, at + 8 + nbytes);
    s.bigEndian = bigEndian;
    at += 8 + nbytes;
  }
  for (const s of storages.values()) if (s.bytes === null) throw new PickleError(`pth: legacy storage '${showText(s.key)}' is used but not in the storage list`);
  return { value: main.value, sysInfo: info.value };
}

const DTYPE_STORAGE: Partial<Record<SafeDType, string>> = { F32: 'FloatStorage', F64: 'DoubleStorage', I64: 'LongStorage', I32: 'IntStorage', I16: 'ShortStorage', I8: 'CharStorage', U8: 'ByteStorage', BOOL: 'BoolStorage' };

/**
 * A state dict as torch.save writes it (zip layout, pickle protocol 2): an OrderedDict of
 * `_rebuild_tensor_v2` calls, one storage record per tensor. `torch.load(path, weights_only=True)`
 * reads it back as a plain state dict; every global used is on its allow-list.
 */
export function serializePth(entries: Map<string, SafeEntry>, prefix = 'archive'): Uint8Array {
  const w = new PickleWriter();
  w.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  const records: [string, Uint8Array][] = [];
  let key = 0;
  for (const [name, e] of entries) {
    const storage = DTYPE_STORAGE[e.dtype];
    if (storage === undefined) throw new PickleError(`pth: writing ${e.dtype} is not supported (tensor '${name}')`);
    const numel = e.shape.reduce((a, b) => a * b, 1);
    if (e.data.length !== numel) throw new PickleError(`pth: tensor '${name}' has ${e.data.length} elements but shape (${e.shape.join(', ')})`);
    const strides = e.shape.map((_, k) => e.shape.slice(k + 1).reduce((a, b) => a * b, 1));
    w.unicode(name).global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().unicode('storage').global('torch', storage).unicode(String(key)).unicode('cpu').int(numel).tuple().binpersid();
    w.int(0).mark().ints(e.shape).tuple().mark().ints(strides).tuple().bool(false);
    w.global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
    records.push([`${prefix}/data/${key}`, new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength)]);
    key++;
  }
  w.setItems().stop();
  const enc = new TextEncoder();
  return writeZip([[`${prefix}/data.pkl`, w.bytes()], [`${prefix}/byteorder`, enc.encode('little')], ...records, [`${prefix}/version`, enc.encode('3\n')]]);
}
