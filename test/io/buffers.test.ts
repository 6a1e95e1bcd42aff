// The readers take a Node Buffer (what readFileSync returns; small ones lie in a shared pool at any
// byte offset) exactly as they take a plain Uint8Array. A Buffer's slice() is a view of its memory,
// not a copy as a typed array's is: a reader that copied with slice() read ONNX initializers
// silently wrong from a Buffer (or threw on a length that was not a multiple of the item size).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readOnnx } from '../../src/io/onnx_read.js';
import { parseRawCheckpoint } from '../../src/io/checkpoint.js';
import { parseNpy } from '../../src/io/npy.js';
import { fixturePath } from '../helpers.js';

const values = (m: Map<string, { data: ArrayLike<unknown> }>) => [...m].map(([k, t]) => [k, Array.from(t.data, String)]);

// as readFileSync gives it, and the same bytes at an odd offset of a larger Buffer
function buffers(path: string): [string, Uint8Array][] {
  const file = readFileSync(path);
  const pooled = Buffer.alloc(file.length + 3);
  pooled.set(file, 3);
  return [['readFileSync', file], ['at an odd offset', pooled.subarray(3)]];
}

describe('readers take a Node Buffer as a Uint8Array, and leave it as it was', () => {
  const cases: [string, (b: Uint8Array) => unknown][] = [
    ['onnx/yolov6_stack_opset11.onnx', (b) => values(readOnnx(b).initializers)],
    ['onnx/acb_block_opset17_f64.onnx', (b) => values(readOnnx(b).initializers)],
    ['pth/layouts.pth', (b) => values(parseRawCheckpoint(b).entries)],
    ['pth/layouts_legacy.pth', (b) => values(parseRawCheckpoint(b).entries)],
    ['pth/official_bigendian.pth', (b) => values(parseRawCheckpoint(b).entries)], // its storages byte-swapped on a copy
    ['onnx/neck.safetensors', (b) => values(parseRawCheckpoint(b).entries)],
    ['npy/f8_5.npy', (b) => Array.from(parseNpy(b).data, String)],
  ];
  it.each(cases)('%s', (name, read) => {
    const path = fixturePath(name);
    const plain = read(new Uint8Array(readFileSync(path))); // a plain copy: the path the fixtures' tests check against PyTorch
    for (const [how, b] of buffers(path)) {
      const before = Uint8Array.from(b);
      expect(read(b), how).toEqual(plain);
      expect(Buffer.from(b).equals(Buffer.from(before)), `${how}: the caller's bytes unchanged`).toBe(true);
    }
  });
});
