// safetensors (https://huggingface.co/docs/safetensors): 8-byte little-endian header length n,
// n bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the byte buffer the offsets index (relative to its start). Pure: bytes in, bytes out.

import { Tensor } from '../tensor/tensor.js';
import { ITEM_SIZE, decodeLE, type SafeDType, type SafeEntry } from './dtypes.js';

export type { SafeDType, SafeEntry };

export interface SafeFile {
  tensors: Map<string, SafeEntry>;
  metadata: Record<string, string>;
}

/** The reference implementation's limit; a larger header is not a real checkpoint. */
const MAX_HEADER = 100_000_000;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export function parseSafetensors(input: Uint8Array | ArrayBuffer): SafeFile {
  const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : input;
  if (!(bytes instanceof Uint8Array)) throw new SafetensorsError(`safetensors: expected a Uint8Array or ArrayBuffer, got ${typeof input}`);
  if (bytes.length < 8) throw new SafetensorsError(`safetensors: file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) throw new SafetensorsError(`safetensors: header length ${n64} at byte offset 0 exceeds the ${MAX_HEADER}-byte limit`);
  const n = Number(n64);
  if (8 + n > bytes.length) throw new SafetensorsError(`safetensors: header length ${n} at byte offset 0 runs past the end of the ${bytes.length}-byte file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(`safetensors: header (bytes 8..${8 + n}) is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new SafetensorsError('safetensors: header is not a JSON object');
  }
  const bufStart = 8 + n;
  const bufLen = bytes.length - bufStart;
  const metadata: Record<string, string> = {};
  const spans: { key: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, SafeEntry>();
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SafetensorsError('safetensors: __metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(`safetensors: __metadata__ value for '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object') throw new SafetensorsError(`safetensors: entry '${key}' is not an object`);
    const { dtype, shape, data_offsets: offs } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE)) {
      throw new SafetensorsError(`safetensors: tensor '${key}' has unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`safetensors: tensor '${key}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      throw new SafetensorsError(`safetensors: tensor '${key}' has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end > bufLen) {
      throw new SafetensorsError(`safetensors: tensor '${key}' data_offsets [${begin}, ${end}] run past the ${bufLen}-byte data buffer (file byte offset ${bufStart + end})`);
    }
    const item = ITEM_SIZE[dtype as SafeDType];
    let count = 1;
    for (const d of shape as number[]) count *= d;
    if (count * item !== end - begin) {
      throw new SafetensorsError(`safetensors: tensor '${key}' shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${count * item} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    spans.push({ key, begin, end });
    tensors.set(key, { dtype: dtype as SafeDType, shape: (shape as number[]).slice(), data: new Float32Array(0) });
  }
  // The buffer must be indexed entirely, without overlaps or holes.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of spans) {
    if (s.begin < at) throw new SafetensorsError(`safetensors: tensor '${s.key}' data_offsets [${s.begin}, ${s.end}] overlap the previous tensor (ending at ${at})`);
    if (s.begin > at) throw new SafetensorsError(`safetensors: bytes ${at}..${s.begin} of the data buffer belong to no tensor (before '${s.key}')`);
    at = s.end;
  }
  if (at !== bufLen) throw new SafetensorsError(`safetensors: data buffer is ${bufLen} bytes but the tensors index only ${at}`);
  for (const s of spans) {
    const e = tensors.get(s.key)!;
    e.data = decodeLE(e.dtype, bytes.subarray(bufStart + s.begin, bufStart + s.end));
  }
  return { tensors, metadata };
}

/** A float tensor as a safetensors entry (F32 or F64 by its array type). */
export function entryOf(t: Tensor): SafeEntry {
  return { dtype: t.data instanceof Float64Array ? 'F64' : 'F32', shape: t.shape.slice(), data: t.data };
}

/** A 0-D I64 entry, as PyTorch's num_batches_tracked. */
export function int64Scalar(v: number): SafeEntry {
  return { dtype: 'I64', shape: [], data: new BigInt64Array([BigInt(v)]) };
}

/** A float entry as a Tensor (F64 stays float64; F32/F16/BF16 are float32); throws on integer dtypes. */
export function tensorOf(e: SafeEntry, key: string): Tensor {
  if (!(e.data instanceof Float32Array) && !(e.data instanceof Float64Array)) {
    throw new SafetensorsError(`safetensors: tensor '${key}' has integer dtype ${e.dtype}, expected a float tensor`);
  }
  return new Tensor(e.data, e.shape);
}

export function serializeSafetensors(entries: Map<string, SafeEntry> | Record<string, SafeEntry>, metadata?: Record<string, string>): Uint8Array {
  const list = entries instanceof Map ? [...entries] : Object.entries(entries);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let at = 0;
  for (const [key, e] of list) {
    if (e.dtype === 'F16' || e.dtype === 'BF16') throw new SafetensorsError(`safetensors: writing ${e.dtype} is not supported (tensor '${key}')`);
    const nbytes = e.data.byteLength;
    header[key] = { dtype: e.dtype, shape: e.shape, data_offsets: [at, at + nbytes] };
    at += nbytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8; // the reference writer pads the header with spaces to 8 bytes
  if (pad > 0) {
    const p = new Uint8Array(json.length + pad).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let off = 8 + json.length;
  for (const [, e] of list) {
    out.set(new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength), off);
    off += e.data.byteLength;
  }
  return out;
}
