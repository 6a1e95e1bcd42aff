// IDX files (MNIST / Fashion-MNIST): magic 0x00 0x00 type ndim, ndim big-endian u32 sizes, raw data.
// Gzipped files are inflated with the web-standard DecompressionStream (Node ≥ 18 and browsers).

import { Tensor } from '../tensor/tensor.js';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export function parseIdx(bytes: Uint8Array, what = 'IDX file'): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new Error(`${what}: bad magic at byte offset 0 (expected 00 00 type ndim)`);
  if (bytes[2] !== 0x08) throw new Error(`${what}: element type 0x${bytes[2].toString(16)} at byte offset 2 is not unsigned byte (0x08)`);
  const ndim = bytes[3];
  const dataStart = 4 + 4 * ndim;
  if (bytes.length < dataStart) throw new Error(`${what}: file ends inside the ${ndim} dimension sizes (byte offset ${bytes.length})`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    shape.push(dv.getUint32(4 + 4 * i, false));
    count *= shape[i];
  }
  if (bytes.length - dataStart !== count) {
    throw new Error(`${what}: shape [${shape.join(', ')}] needs ${count} bytes from byte offset ${dataStart}, file has ${bytes.length - dataStart}`);
  }
  return { shape, data: bytes.subarray(dataStart) };
}

/**
 * Gunzip when the bytes are gzip (1f 8b), streaming: as soon as the IDX header (magic, ndim, sizes)
 * has come out, the output may not grow past the header plus the data it declares, so a gzip bomb
 * is refused after a few chunks instead of filling memory.
 */
export async function gunzipIfNeeded(bytes: Uint8Array, what = 'IDX file'): Promise<Uint8Array> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const reader = new Blob([bytes.slice()]).stream().pipeThrough(new DecompressionStream('gzip')).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0, limit = Infinity;
  const head = new Uint8Array(4 + 4 * 255);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (total < head.length) head.set(value.subarray(0, head.length - total), total);
    total += value.length;
    chunks.push(value);
    if (limit === Infinity && total >= 4 && total >= 4 + 4 * head[3]) {
      const dv = new DataView(head.buffer);
      let n = 1;
      for (let i = 0; i < head[3]; i++) n *= dv.getUint32(4 + 4 * i, false);
      limit = 4 + 4 * head[3] + n;
    }
    if (total > limit) {
      await reader.cancel();
      throw new Error(`${what}: the gzip decompresses past the ${limit} bytes its IDX header declares; refused (a gzip bomb or a corrupt file)`);
    }
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

/** Images (N, rows, cols) as float32 (N, 1, rows, cols) scaled to [0, 1]; labels as Int32Array. */
export function idxToDataset(images: IdxArray, labels: IdxArray): { x: Tensor; y: Int32Array } {
  if (images.shape.length !== 3) throw new Error(`IDX images: expected 3 dimensions (N, rows, cols), got [${images.shape.join(', ')}]`);
  if (labels.shape.length !== 1 || labels.shape[0] !== images.shape[0]) {
    throw new Error(`IDX labels: shape [${labels.shape.join(', ')}] does not match ${images.shape[0]} images`);
  }
  const [N, R, C] = images.shape;
  const x = new Float32Array(N * R * C);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i] / 255;
  return { x: new Tensor(x, [N, 1, R, C]), y: Int32Array.from(labels.data) };
}
