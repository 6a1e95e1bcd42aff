// safetensors (https://huggingface.co/docs/safetensors): 8-byte little-endian header length n,
// n bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the byte buffer the offsets index (relative to its start). Pure: bytes in, bytes out.

import { Tensor } from '../tensor/tensor.js';
import { ITEM_SIZE, decodeLE, type SafeDType, type SafeEntry, viewLE } from './dtypes.js';
import { describeValue, showText } from '../tensor/untrusted.js';

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

/** A real header nests 3 deep (object → entry → shape); JSON.parse recurses, so depth is checked first. */
const MAX_DEPTH = 32;

/** The deepest [ / { nesting of JSON text outside strings, in one pass; the offset where it passes `limit`, or -1. */
function tooDeep(b: Uint8Array, start: number, end: number, limit: number): number {
  let depth = 0, inString = false;
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) { if (++depth > limit) return i; }
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return -1;
}

/**
 * A safetensors file's tensors and metadata, every offset and size checked. Aligned float32/float64/
 * integer tensors are views into `input` (no copy: they change if it does; copy before mutating
 * either), F16/BF16 are widened to float32 and misaligned ones copied.
 */
export function parseSafetensors(input: Uint8Array | ArrayBuffer): SafeFile {
  const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : input;
  if (!(bytes instanceof Uint8Array)) throw new SafetensorsError(`safetensors: expected a Uint8Array or ArrayBuffer, got ${typeof input}`);
  if (bytes.length < 8) throw new SafetensorsError(`safetensors: file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) throw new SafetensorsError(`safetensors: header length ${n64} at byte offset 0 exceeds the ${MAX_HEADER}-byte limit`);
  const n = Number(n64);
  if (8 + n > bytes.length) throw new SafetensorsError(`safetensors: header length ${n} at byte offset 0 runs past the end of the ${bytes.length}-byte file`);
  const deep = tooDeep(bytes, 8, 8 + n, MAX_DEPTH);
  if (deep >= 0) throw new SafetensorsError(`safetensors: header nests deeper than ${MAX_DEPTH} levels at byte offset ${deep} (a real header nests 3)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(`safetensors: header (bytes 8..${8 + n}) is not valid UTF-8 JSON: ${showText((e as Error).message, 120)}`);
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
        if (typeof v !== 'string') throw new SafetensorsError(`safetensors: __metadata__ value for '${showText(k)}' is ${describeValue(v)}, not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const name = showText(key);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SafetensorsError(`safetensors: entry '${name}' is ${describeValue(raw)}, not an object`);
    const { dtype, shape, data_offsets: offs } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE)) {
      throw new SafetensorsError(`safetensors: tensor '${name}' has ${dtype === undefined ? 'no dtype' : `unsupported dtype ${describeValue(dtype)}`} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`safetensors: tensor '${name}' has ${shape === undefined ? 'no shape' : `an invalid shape ${describeValue(shape)}`}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      throw new SafetensorsError(`safetensors: tensor '${name}' has ${offs === undefined ? 'no data_offsets' : `invalid data_offsets ${describeValue(offs)}`}`);
    }
    const [begin, end] = offs as [number, number];
    if (end > bufLen) {
      throw new SafetensorsError(`safetensors: tensor '${name}' data_offsets [${begin}, ${end}] run past the ${bufLen}-byte data buffer (file byte offset ${bufStart + end})`);
    }
    const item = ITEM_SIZE[dtype as SafeDType];
    let count = 1;
    for (const d of shape as number[]) count *= d;
    if (count * item !== end - begin) {
      throw new SafetensorsError(`safetensors: tensor '${name}' shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${count * item} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    spans.push({ key, begin, end });
    tensors.set(key, { dtype: dtype as SafeDType, shape: (shape as number[]).slice(), data: new Float32Array(0) });
  }
  // The buffer must be indexed entirely, without overlaps or holes.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of spans) {
    if (s.begin < at) throw new SafetensorsError(`safetensors: tensor '${showText(s.key)}' data_offsets [${s.begin}, ${s.end}] overlap the previous tensor (ending at ${at})`);
    if (s.begin > at) throw new SafetensorsError(`safetensors: bytes ${at}..${s.begin} of the data buffer belong to no tensor (before '${showText(s.key)}')`);
    at = s.end;
  }
  if (at !== bufLen) throw new SafetensorsError(`safetensors: data buffer is ${bufLen} bytes but the tensors index only ${at}`);
  // Aligned little-endian tensors are views into the file's bytes (no copy, as the .pth reader's);
  // F16/BF16 widen, and a misaligned offset is copied.
  for (const s of spans) {
    const e = tensors.get(s.key)!;
    const raw = bytes.subarray(bufStart + s.begin, bufStart + s.end);
    e.data = viewLE(e.dtype, raw) ?? decodeLE(e.dtype, raw);
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
    throw new SafetensorsError(`safetensors: tensor '${showText(key)}' has integer dtype ${e.dtype}, expected a float tensor`);
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
