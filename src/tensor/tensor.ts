// Tensor: a contiguous row-major (NCHW for images) view over a Float32Array or Float64Array.
// float32 is the default everywhere; float64 is the reference mode. Ops keep the input's array type.

export type FloatArray = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';

export class Tensor {
  readonly data: FloatArray;
  readonly shape: readonly number[];

  constructor(data: FloatArray, shape: readonly number[]) {
    if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
      throw new Error('Tensor: data must be a Float32Array or a Float64Array');
    }
    if (!Array.isArray(shape)) throw new Error('Tensor: shape must be an array of non-negative integers');
    let size = 1;
    for (let i = 0; i < shape.length; i++) {
      const d = shape[i];
      if (!Number.isInteger(d) || d < 0) {
        throw new Error(`Tensor: shape [${shape.join(', ')}] has an invalid dimension ${String(d)} at index ${i}`);
      }
      size *= d;
    }
    if (size !== data.length) {
      throw new Error(`Tensor: shape [${shape.join(', ')}] holds ${size} elements but data has ${data.length}`);
    }
    this.data = data;
    // a frozen shape (another tensor's) is shared as it is: nobody can change it; ~300 tensors a
    // training step of the demo are made from another's shape
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze(shape.slice());
  }

  get dtype(): DType {
    return this.data instanceof Float64Array ? 'float64' : 'float32';
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A new tensor sharing this one's data, with another shape of the same size. */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape);
  }

  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }

  /** A copy in the given dtype (float64 → float32 rounds to nearest). */
  to(dtype: DType): Tensor {
    return new Tensor(dtype === 'float64' ? Float64Array.from(this.data) : Float32Array.from(this.data), this.shape);
  }
}

let allocated = 0;

/** Bytes allocated for tensor data since start (for the allocation benchmark). */
export function allocatedBytes(): number {
  return allocated;
}

export function allocArray(dtype: DType, n: number): FloatArray {
  allocated += dtype === 'float64' ? 8 * n : 4 * n;
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

/** An array of the same type as `like`, of length n. */
export function allocLike(like: FloatArray, n: number): FloatArray {
  return allocArray(like instanceof Float64Array ? 'float64' : 'float32', n);
}

/** A zeroed array of n elements of dtype in shared memory, which the worker pool's workers see (a
 * plain one where SharedArrayBuffer does not exist). */
export function sharedArray(dtype: DType, n: number): FloatArray {
  const f64 = dtype === 'float64';
  if (typeof SharedArrayBuffer !== 'function') return f64 ? new Float64Array(n) : new Float32Array(n);
  return f64 ? new Float64Array(new SharedArrayBuffer(n * 8)) : new Float32Array(new SharedArrayBuffer(n * 4));
}

/** sharedArray of the same type as `like`. */
export function sharedArrayLike(n: number, like: FloatArray): FloatArray {
  return sharedArray(like instanceof Float64Array ? 'float64' : 'float32', n);
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i];
  return n;
}

export function zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(allocArray(dtype, shapeSize(shape)), shape);
}

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  const t = zeros(shape, dtype);
  t.data.fill(value);
  return t;
}

// s[i] += t[i] for every i < s.length, float32 arrays by their own loop: a loop that has seen both
// element types runs at ~2.4 ns an element in V8, one that sees only Float32Array at ~1.2.
export function addInto(s: FloatArray, t: FloatArray): void {
  if (s instanceof Float32Array && t instanceof Float32Array) addFloat32(s, t);
  else for (let i = 0; i < s.length; i++) s[i] += t[i];
}
function addFloat32(s: Float32Array, t: Float32Array): void {
  const n = s.length;
  for (let i = 0; i < n; i++) s[i] += t[i];
}

// rows × len floats from src (row stride srcLd) to dst (dstLd): one TypedArray.set (a memcpy) where
// both sides' rows lie back to back, else a set per row for long rows and a loop for short ones. A
// subarray and set cost ~40–75 ns a row whatever its length (and leave a view for the collector); the
// loop ~2.5 ns a float where it sees both element types, ~1.9 where it sees float32 only (its own
// function): they cross near 16 and 40 floats.
export function copyRows(src: FloatArray, srcOff: number, srcLd: number, dst: FloatArray, dstOff: number, dstLd: number, rows: number, len: number): void {
  if (srcLd === len && dstLd === len) {
    dst.set(src.subarray(srcOff, srcOff + rows * len), dstOff);
    return;
  }
  if (src instanceof Float32Array && dst instanceof Float32Array) {
    copyRowsFloat32(src, srcOff, srcLd, dst, dstOff, dstLd, rows, len);
    return;
  }
  if (len >= 16) {
    for (let i = 0; i < rows; i++) dst.set(src.subarray(srcOff + i * srcLd, srcOff + i * srcLd + len), dstOff + i * dstLd);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const s = srcOff + i * srcLd, d = dstOff + i * dstLd;
    for (let j = 0; j < len; j++) dst[d + j] = src[s + j];
  }
}
function copyRowsFloat32(src: Float32Array, srcOff: number, srcLd: number, dst: Float32Array, dstOff: number, dstLd: number, rows: number, len: number): void {
  if (len >= 40) {
    for (let i = 0; i < rows; i++) dst.set(src.subarray(srcOff + i * srcLd, srcOff + i * srcLd + len), dstOff + i * dstLd);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const s = srcOff + i * srcLd, d = dstOff + i * dstLd;
    for (let j = 0; j < len; j++) dst[d + j] = src[s + j];
  }
}
