import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SafetensorsError, entryOf, int64Scalar, parseSafetensors, serializeSafetensors, tensorOf } from '../../src/io/safetensors.js';
import { NpyError, parseNpy, parseNpyAdopting, serializeNpy } from '../../src/io/npy.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { fixturePath } from '../helpers.js';

const enc = new TextEncoder();
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint): Uint8Array {
  const h = enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips F32, F64, I64 scalars and metadata', () => {
    const a = uniform([2, 3], new Rng(1));
    const b = uniform([4], new Rng(2), 0, 1, 'float64');
    const bytes = serializeSafetensors({ a: entryOf(a), b: entryOf(b), n: int64Scalar(42) }, { format: 'pt' });
    expect(new DataView(bytes.buffer).getBigUint64(0, true) % 8n).toBe(0n);
    const f = parseSafetensors(bytes);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(tensorOf(f.tensors.get('a')!, 'a').data).toEqual(a.data);
    expect(tensorOf(f.tensors.get('b')!, 'b').data).toEqual(b.data);
    expect(f.tensors.get('n')!.shape).toEqual([]);
    expect(f.tensors.get('n')!.data[0]).toBe(42n);
  });

  it('aligned tensors are views into the file (no copy); a misaligned one is copied, with the same values', () => {
    const w = Float32Array.from([1.5, -2, 3.25]);
    const h = JSON.stringify({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } });
    const pad = (8 - ((8 + h.length) % 8)) % 8; // data starts at 8 + header length
    const even = rawFile(h + ' '.repeat(pad), new Uint8Array(w.buffer)), odd = rawFile(h + ' '.repeat(pad + 1), new Uint8Array(w.buffer));
    const v = parseSafetensors(even).tensors.get('w')!.data, c = parseSafetensors(odd).tensors.get('w')!.data;
    expect([v.buffer === even.buffer, c.buffer === odd.buffer]).toEqual([true, false]);
    expect([Array.from(v as Float32Array), Array.from(c as Float32Array)]).toEqual([[1.5, -2, 3.25], [1.5, -2, 3.25]]);
  });

  it('reads F16 and BF16 into float32 exactly as PyTorch converts them', () => {
    const f = parseSafetensors(new Uint8Array(readFileSync(fixturePath('torch/io_dtypes.safetensors'))));
    expect(f.tensors.get('f16')!.data).toEqual(f.tensors.get('f16_as_f32')!.data);
    expect(f.tensors.get('bf16')!.data).toEqual(f.tensors.get('bf16_as_f32')!.data);
    expect(f.tensors.get('f64')!.data).toBeInstanceOf(Float64Array);
    expect(f.tensors.get('i64_scalar')!.data[0]).toBe(7n);
    expect(() => tensorOf(f.tensors.get('i64_scalar')!, 'i64_scalar')).toThrow("'i64_scalar' has integer dtype I64");
  });

  const four = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
  it.each([
    ['a truncated file', new Uint8Array(5), /5 bytes, too short/],
    ['an absurd header length', rawFile({}, new Uint8Array(0), 1n << 60n), /header length 1152921504606846976 at byte offset 0 exceeds/],
    ['a header longer than the file', rawFile({}, new Uint8Array(0), 1000n), /header length 1000 at byte offset 0 runs past the end/],
    ['a header that is not JSON', rawFile('{not json'), /not valid UTF-8 JSON/],
    ['a header that is an array', rawFile([1, 2]), /not a JSON object/],
    ['an unknown dtype', rawFile({ t: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, four.subarray(0, 4)), /tensor 't' has unsupported dtype 'Q7'/],
    ['offsets out of range', rawFile({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 32] } }, four), /'t' data_offsets \[0, 32\] run past the 16-byte data buffer \(file byte offset/],
    ['overlapping offsets', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, four), /overlap/],
    ['a hole in the buffer', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, four), /bytes 0..8 of the data buffer belong to no tensor/],
    ['a shape that disagrees with its bytes', rawFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, four), /'t' shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 16\] hold 16/],
    ['a shape that would exhaust memory', rawFile({ t: { dtype: 'F32', shape: [1e9, 1e9], data_offsets: [0, 16] } }, four), /needs 4000000000000000000 bytes/],
    ['a negative dimension', rawFile({ t: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, four), /invalid shape \[-4\]/],
  ])('rejects %s with an error naming it', (_what, bytes, msg) => {
    expect(() => parseSafetensors(bytes)).toThrow(SafetensorsError);
    expect(() => parseSafetensors(bytes)).toThrow(msg);
  });

  it('fuzz: arbitrary bytes and mutated valid files throw only SafetensorsError', () => {
    const valid = serializeSafetensors({ a: entryOf(uniform([3, 2], new Rng(3))), n: int64Scalar(1) });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      try { parseSafetensors(b); } catch (e) { expect(e).toBeInstanceOf(SafetensorsError); }
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(valid.length), (muts, cut) => {
      const b = valid.slice(0, Math.max(cut, valid.length - 3));
      for (const [i, v] of muts) if (i < b.length) b[i] = v;
      try { parseSafetensors(b); } catch (e) { expect(e).toBeInstanceOf(SafetensorsError); }
    }), { numRuns: 1000 });
  });
});

describe('npy', () => {
  it('reads NumPy-written float32, float64, 0-d arrays', () => {
    const a = parseNpy(new Uint8Array(readFileSync(fixturePath('npy/f4_2x3x4.npy'))));
    expect(a.shape).toEqual([2, 3, 4]);
    expect(a.data[23]).toBe(Math.fround(23 / 7));
    const b = parseNpy(new Uint8Array(readFileSync(fixturePath('npy/f8_5.npy'))));
    expect(b.data).toBeInstanceOf(Float64Array);
    expect(Array.from(b.data)).toEqual([-1, -0.5, 0, 0.5, 1]);
    const s = parseNpy(new Uint8Array(readFileSync(fixturePath('npy/f4_scalar.npy'))));
    expect(s.shape).toEqual([]);
    expect(s.data[0]).toBe(2.5);
    expect(() => parseNpy(new Uint8Array(readFileSync(fixturePath('npy/f4_fortran.npy'))))).toThrow('fortran_order arrays are not supported');
  });
  it('writes what it reads, 64-byte aligned, byte-identical to NumPy for the same array', () => {
    const np = new Uint8Array(readFileSync(fixturePath('npy/f4_2x3x4.npy')));
    const t = parseNpy(np);
    expect(serializeNpy(t)).toEqual(np);
    const t1 = new Tensor(new Float64Array([1, 2, 3]), [3]);
    expect(parseNpy(serializeNpy(t1)).data).toEqual(t1.data);
  });
  it('reads data that is not 4-byte aligned in its buffer, or big-endian, element by element', () => {
    // independent values: the fixture's element i is float32(i / 7)
    const np = new Uint8Array(readFileSync(fixturePath('npy/f4_2x3x4.npy')));
    const expected = Array.from({ length: 24 }, (_, i) => Math.fround(i / 7));
    const shifted = new Uint8Array(np.length + 1).subarray(1); // data at an odd address
    shifted.set(np);
    expect(Array.from(parseNpy(shifted).data)).toEqual(expected);
    const big = np.slice();
    big.set(enc.encode('>f4'), big.indexOf(0x3c)); // '<f4' → '>f4', then each element's bytes reversed
    const at = big.length - 24 * 4;
    for (let i = 0; i < 24; i++) big.subarray(at + 4 * i, at + 4 * i + 4).reverse();
    expect(Array.from(parseNpy(big).data)).toEqual(expected);
    const shared = parseNpy(np, true); // where the worker pool reads it in place
    expect(shared.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Array.from(shared.data)).toEqual(expected);
  });
  it('adopts bytes given away (a file just read) where it can view them, and copies where it cannot', () => {
    // independent values: the fixture's element i is float32(i / 7)
    const np = new Uint8Array(readFileSync(fixturePath('npy/f4_2x3x4.npy')));
    const expected = Array.from({ length: 24 }, (_, i) => Math.fround(i / 7));
    const plain = new Uint8Array(np.length);
    plain.set(np);
    const viewed = parseNpyAdopting(plain);
    expect(viewed.data.buffer).toBe(plain.buffer); // no copy: the tensor views the file's data
    expect(Array.from(viewed.data)).toEqual(expected);
    const sab = new Uint8Array(new SharedArrayBuffer(np.length));
    sab.set(np);
    const sharedView = parseNpyAdopting(sab, true);
    expect(sharedView.data.buffer).toBe(sab.buffer);
    expect(Array.from(sharedView.data)).toEqual(expected);
    // the wrong kind of buffer, or data at an odd address: a copy of the kind asked for
    const toShared = parseNpyAdopting(plain, true);
    expect(toShared.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Array.from(toShared.data)).toEqual(expected);
    const toPlain = parseNpyAdopting(sab, false);
    expect(toPlain.data.buffer).toBeInstanceOf(ArrayBuffer);
    expect(Array.from(toPlain.data)).toEqual(expected);
    const shifted = new Uint8Array(np.length + 1).subarray(1);
    shifted.set(np);
    const copied = parseNpyAdopting(shifted);
    expect(copied.data.buffer).not.toBe(shifted.buffer);
    expect(Array.from(copied.data)).toEqual(expected);
    // parseNpy itself never keeps the caller's bytes
    expect(parseNpy(plain).data.buffer).not.toBe(plain.buffer);
  });
  it('rejects bad files naming the byte offset', () => {
    expect(() => parseNpy(new Uint8Array(4))).toThrow('magic at byte offset 0');
    const good = serializeNpy(new Tensor(new Float32Array(6), [2, 3]));
    expect(() => parseNpy(good.subarray(0, good.length - 4))).toThrow(/needs 24 data bytes from byte offset 128, file has 20/);
    const bad = good.slice();
    bad.set(enc.encode("'<i2'"), bad.indexOf(0x27, 10) + 9); // descr value
    expect(() => parseNpy(bad)).toThrow(NpyError);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 150 }), fc.nat(good.length), (noise, at) => {
      const b = good.slice();
      b.set(noise.subarray(0, Math.max(0, b.length - at)), at);
      try { parseNpy(b); } catch (e) { expect(e).toBeInstanceOf(NpyError); }
    }), { numRuns: 500 });
  });
});
