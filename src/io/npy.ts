// NumPy .npy (format versions 1.0–3.0): magic "\x93NUMPY", version, header length (u16 for 1.0,
// u32 after), a Python-literal dict {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded so the data starts on a 64-byte boundary, then the raw C-order data.

import { Tensor, sharedArray } from '../tensor/tensor.js';
import { viewLE } from './dtypes.js';

export class NpyError extends Error {
  override name = 'NpyError';
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

// shared: the data in a SharedArrayBuffer (where one exists), which the worker pool reads in place
export function parseNpy(bytes: Uint8Array, shared = false): Tensor {
  return decodeNpy(bytes, shared, false);
}

/** parseNpy of bytes the caller gives away (a file just read): where the data can be viewed in place
 * (little-endian, aligned, in the kind of buffer `shared` asks for), the tensor views them instead of
 * a copy (a one-shot call's 2.4 MB input: a copy and ~600 freshly touched pages fewer). */
export function parseNpyAdopting(bytes: Uint8Array, shared = false): Tensor {
  return decodeNpy(bytes, shared, true);
}

function decodeNpy(bytes: Uint8Array, shared: boolean, adopt: boolean): Tensor {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) throw new NpyError('npy: missing the \\x93NUMPY magic at byte offset 0');
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number, hstart: number;
  if (major === 1) { hlen = dv.getUint16(8, true); hstart = 10; }
  else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyError('npy: file ends inside the header length at byte offset 8');
    hlen = dv.getUint32(8, true); hstart = 12;
  } else throw new NpyError(`npy: unsupported format version ${major}.${bytes[7]} at byte offset 6`);
  if (hstart + hlen > bytes.length) throw new NpyError(`npy: header length ${hlen} at byte offset 8 runs past the end of the ${bytes.length}-byte file`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(hstart, hstart + hlen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeStr = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeStr === undefined) {
    throw new NpyError(`npy: header is not a dict with descr, fortran_order and shape: ${JSON.stringify(header.trim())}`);
  }
  if (fortran === 'True') throw new NpyError('npy: fortran_order arrays are not supported; save a C-order array (np.ascontiguousarray)');
  const shape = shapeStr.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const d = Number(s.replace(/L$/, ''));
    if (!Number.isSafeInteger(d) || d < 0) throw new NpyError(`npy: invalid dimension '${s}' in shape (${shapeStr})`);
    return d;
  });
  let item: number;
  let little: boolean;
  if (descr === '<f4' || descr === '>f4') { item = 4; little = descr[0] === '<'; }
  else if (descr === '<f8' || descr === '>f8') { item = 8; little = descr[0] === '<'; }
  else throw new NpyError(`npy: unsupported dtype '${descr}' (supported: float32 '<f4', float64 '<f8')`);
  let count = 1;
  for (const d of shape) count *= d;
  const dataStart = hstart + hlen;
  const need = count * item;
  if (bytes.length - dataStart !== need) {
    throw new NpyError(`npy: shape (${shape.join(', ')}) of '${descr}' needs ${need} data bytes from byte offset ${dataStart}, file has ${bytes.length - dataStart}`);
  }
  const dtype = item === 4 ? 'float32' : 'float64';
  // little-endian data the host can view in place (its order, aligned): adopted, or one copy (memcpy),
  // else element by element
  const view = little ? viewLE(item === 4 ? 'F32' : 'F64', bytes.subarray(dataStart)) as Float32Array | Float64Array | null : null;
  const canShare = shared && typeof SharedArrayBuffer === 'function';
  if (adopt && view !== null && (view.buffer instanceof ArrayBuffer) !== canShare) return new Tensor(view, shape);
  const data = shared ? sharedArray(dtype, count) : dtype === 'float32' ? new Float32Array(count) : new Float64Array(count);
  if (view !== null) data.set(view); // F32, F64: float views
  else {
    for (let i = 0; i < count; i++) {
      data[i] = item === 4 ? dv.getFloat32(dataStart + 4 * i, little) : dv.getFloat64(dataStart + 8 * i, little);
    }
  }
  return new Tensor(data, shape);
}

export function serializeNpy(t: Tensor): Uint8Array {
  const descr = t.data instanceof Float64Array ? '<f8' : '<f4';
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const hb = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + hb.length + t.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1; out[7] = 0;
  new DataView(out.buffer).setUint16(8, hb.length, true);
  out.set(hb, 10);
  const dv = new DataView(out.buffer, 10 + hb.length);
  const item = t.data instanceof Float64Array ? 8 : 4;
  for (let i = 0; i < t.data.length; i++) {
    if (item === 8) dv.setFloat64(8 * i, t.data[i], true);
    else dv.setFloat32(4 * i, t.data[i], true);
  }
  return out;
}
