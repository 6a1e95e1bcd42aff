// Element types a checkpoint can hold, and their decoding from little-endian bytes. Shared by the
// safetensors and PyTorch readers, so a dtype means the same thing whichever file it came from.

/** safetensors' names; PyTorch's storages map onto them (FloatStorage → F32, LongStorage → I64, …). */
export type SafeDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export type EntryArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface SafeEntry {
  dtype: SafeDType;
  shape: number[];
  /** F64 → Float64Array; F32, F16, BF16 → Float32Array (widened); I64 → BigInt64Array; I32, I16, I8 → Int32/16/8Array; U8, BOOL → Uint8Array */
  data: EntryArray;
}

export const ITEM_SIZE: Readonly<Record<SafeDType, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// IEEE 754 binary16 → number: sign, 5-bit exponent (bias 15), 10-bit fraction.
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f === 0 ? s * Infinity : NaN;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** bfloat16 → number: the top half of a float32. */
export function bfloat16ToFloat(h: number): number {
  return BF16_VIEW_F32[(BF16_VIEW_U32[0] = h << 16, 0)];
}
const BF16_VIEW_U32 = new Uint32Array(1), BF16_VIEW_F32 = new Float32Array(BF16_VIEW_U32.buffer);

// A binary format of `fraction` fraction bits and `exponent` exponent bits (IEEE-style: bias
// 2^(exponent−1) − 1, subnormals, ∞, NaN): the bits of v rounded to nearest, ties to even, from v's
// exact value (never through float32, which would round twice). NaN is the quiet NaN.
function smallFloatBits(v: number, fraction: number, exponent: number): number {
  const emax = 2 ** (exponent - 1) - 1, emin = 1 - emax;
  const sign = v < 0 || Object.is(v, -0) ? 1 << (fraction + exponent) : 0, inf = ((1 << exponent) - 1) << fraction;
  if (Number.isNaN(v)) return inf | (1 << (fraction - 1));
  const a = Math.abs(v);
  if (a === Infinity) return sign | inf;
  // the exponent of a's leading bit, at least emin (below it: subnormal, one spacing 2^(emin − fraction))
  let e = Math.max(emin, Math.floor(Math.log2(a)));
  if (e > emin && 2 ** e > a) e--; // log2 rounded up at a power of two's edge
  else if (2 ** (e + 1) <= a) e++;
  const scaled = a / 2 ** (e - fraction); // exact: a division by a power of two
  let m = Math.floor(scaled);
  const rest = scaled - m;
  if (rest > 0.5 || (rest === 0.5 && (m & 1) === 1)) m++;
  // m counts spacings: a normal number has m ∈ [2^fraction, 2^(fraction+1)), a subnormal m < 2^fraction;
  // m = 2^(fraction+1) carries into the next exponent, and past emax is ∞
  if (m === 2 ** (fraction + 1)) { m /= 2; e++; }
  if (e > emax) return sign | inf;
  const biased = m < 2 ** fraction ? 0 : e - emin + 1;
  return sign | (biased << fraction) | (m & ((1 << fraction) - 1));
}

/** The binary16 bits of v, rounded to nearest even (ONNX's float16 in raw_data). */
export function halfBits(v: number): number {
  return smallFloatBits(v, 10, 5);
}

/** The bfloat16 bits of v, rounded to nearest even. */
export function bfloat16Bits(v: number): number {
  return smallFloatBits(v, 7, 8);
}

/** The float types a file stores weights in. */
export type StoredFloat = 'float64' | 'float32' | 'float16' | 'bfloat16';

/** Values rounded once to a file's float type, held as a float32 one holds them (float16 and
 * bfloat16 widened exactly) or as float64: what the file will hold, before it is written. */
export function storedFloats(dtype: StoredFloat, values: ArrayLike<number>, into?: Float32Array | Float64Array): Float32Array | Float64Array {
  const out = into ?? (dtype === 'float64' ? new Float64Array(values.length) : new Float32Array(values.length));
  if (dtype === 'float16') for (let i = 0; i < values.length; i++) out[i] = halfToFloat(halfBits(values[i]));
  else if (dtype === 'bfloat16') for (let i = 0; i < values.length; i++) out[i] = bfloat16ToFloat(bfloat16Bits(values[i]));
  else out.set(values); // a float32 array rounds each value to nearest even as it stores it
  return out;
}

type ArrayOf = new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => EntryArray;

/** The typed array each dtype is stored in as it is (F16/BF16 are widened instead). */
const STORED: Partial<Record<SafeDType, ArrayOf>> = {
  F64: Float64Array, F32: Float32Array, I64: BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
};

/**
 * Little-endian bytes → an owned typed array (a copy: slicing a pooled Node buffer would share
 * memory, and the copy is aligned). F16 and BF16 widen to float32 exactly (bfloat16 is the top
 * half of a float32).
 */
export function decodeLE(dtype: SafeDType, b: Uint8Array): EntryArray {
  if (!LITTLE_ENDIAN) throw new Error('big-endian hosts are not supported');
  const copy = new Uint8Array(b);
  const Stored = STORED[dtype];
  if (Stored !== undefined) return new Stored(copy.buffer);
  const h = new Uint16Array(copy.buffer);
  if (dtype === 'F16') {
    const out = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) out[i] = halfToFloat(h[i]);
    return out;
  }
  const u = new Uint32Array(h.length); // BF16
  for (let i = 0; i < h.length; i++) u[i] = h[i] << 16;
  return new Float32Array(u.buffer);
}

/**
 * A typed-array view of little-endian bytes, without a copy, where the host order and the alignment
 * allow it and no widening is needed (not F16/BF16); otherwise null (use decodeLE).
 */
export function viewLE(dtype: SafeDType, b: Uint8Array): EntryArray | null {
  const Stored = STORED[dtype];
  if (!LITTLE_ENDIAN || Stored === undefined || b.byteOffset % ITEM_SIZE[dtype] !== 0) return null;
  return new Stored(b.buffer, b.byteOffset, b.length / ITEM_SIZE[dtype]);
}

/** Reverse the bytes of every item in place (a big-endian file read on a little-endian host). */
export function swapBytes(b: Uint8Array, itemSize: number): void {
  for (let i = 0; i + itemSize <= b.length; i += itemSize) {
    for (let lo = i, hi = i + itemSize - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}
