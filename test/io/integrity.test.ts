// Every integrity check of every container, on every entry and at both ends of the size range: a
// check that runs on some entries only (the big ones, all but the first, the non-empty ones) passes a
// test that corrupts one typical entry, so each test below corrupts each entry in turn, including the
// smallest (a 2-byte `version`, a 0-d tensor, an empty entry) and the largest.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readZip, writeZip } from '../../src/io/zip.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { parseNpy } from '../../src/io/npy.js';
import { type PyValue, unpickle } from '../../src/io/pickle.js';
import { readOnnx } from '../../src/io/onnx_read.js';
import { gunzipIfNeeded, parseIdx } from '../../src/train/idx.js';
import { FLOAT, model, tensor } from '../onnx/build.js';
import { fixturePath } from '../helpers.js';

const fixture = (name: string) => new Uint8Array(readFileSync(fixturePath(name)));

/** f must throw an Error whose message matches msg (and is one line). */
function refused(f: () => unknown, msg: RegExp, what: string): void {
  let err: Error | undefined;
  try { f(); } catch (e) { err = e as Error; }
  expect(err, `${what}: it must be refused`).toBeInstanceOf(Error);
  expect(err!.message, what).not.toMatch(/\n/);
  expect(err!.message, what).toMatch(msg);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// The central directory walked by hand (APPNOTE 4.3.12), independently of src/io/zip.ts: each entry's
// name, its CRC-32 field's byte offset and its compression method.
function centralEntries(b: Uint8Array): { name: string; crcAt: number; method: number }[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let eocd = b.length - 22;
  while (dv.getUint32(eocd, true) !== 0x06054b50) eocd--;
  let count = dv.getUint16(eocd + 10, true), at = dv.getUint32(eocd + 16, true);
  if (at === 0xffffffff) { // zip64: the locator just before the end record points at the zip64 end record
    const rec = Number(dv.getBigUint64(eocd - 20 + 8, true));
    count = Number(dv.getBigUint64(rec + 32, true));
    at = Number(dv.getBigUint64(rec + 48, true));
  }
  const out = [];
  for (let e = 0; e < count; e++) {
    const n = dv.getUint16(at + 28, true);
    out.push({ name: new TextDecoder().decode(b.subarray(at + 46, at + 46 + n)), crcAt: at + 16, method: dv.getUint16(at + 10, true) });
    at += 46 + n + dv.getUint16(at + 30, true) + dv.getUint16(at + 32, true);
  }
  return out;
}

describe('zip: the CRC-32 of every entry is checked', () => {
  // torch.save's archive (data.pkl, a 2-byte version, one record per storage), Python zipfile's zip64
  // re-pack, the big-endian one with its 3-byte byteorder record, and the layouts archive (40 storages).
  for (const file of ['pth/official_train.pth', 'pth/official_zip64.pth', 'pth/official_bigendian.pth', 'pth/layouts.pth']) {
    it(`${file}: a flipped bit in any entry's first, middle or last byte, or in its recorded CRC, is refused naming the entry`, () => {
      const good = fixture(file);
      const records = readZip(good);
      const entries = centralEntries(good);
      expect(entries.map((e) => e.name)).toEqual([...records.keys()]);
      const sizes = [...records.values()].map((d) => d.length);
      expect(Math.min(...sizes)).toBeLessThanOrEqual(5); // version (and byteorder) are among them
      for (const { name, crcAt } of entries) {
        const data = records.get(name)!;
        const start = data.byteOffset - good.byteOffset;
        const msg = new RegExp(`entry '${escapeRe(name)}' .*fails its CRC-32 check`);
        for (const i of new Set([0, data.length >> 1, data.length - 1])) {
          const bad = good.slice();
          bad[start + i] ^= 0x10;
          refused(() => readZip(bad), msg, `${file} ${name} byte ${i}`);
        }
        const bad = good.slice();
        bad[crcAt] ^= 0x01;
        refused(() => readZip(bad), msg, `${file} ${name} recorded CRC`);
      }
    });
  }

  it('an empty entry (CRC 0 by definition) with any other recorded CRC is refused; a deflated entry is refused by name before its bytes are trusted', () => {
    const good = writeZip([['a/empty', new Uint8Array(0)], ['a/data.pkl', new Uint8Array([0x80, 2, 0x4e, 0x2e])]]);
    expect(readZip(good).get('a/empty')!.length).toBe(0);
    const [empty] = centralEntries(good);
    expect(new DataView(good.buffer).getUint32(empty.crcAt, true)).toBe(0);
    const bad = good.slice();
    bad[empty.crcAt + 3] = 0x80;
    refused(() => readZip(bad), /entry 'a\/empty' .*fails its CRC-32 check/, 'empty entry');
    const deflated = fixture('pth/official_deflate.pth');
    expect(centralEntries(deflated).every((e) => e.method === 8)).toBe(true);
    refused(() => readZip(deflated), /entry '.*data\.pkl' is compressed \(method 8, deflate\)/, 'deflated');
  });
});

describe('safetensors: every tensor\'s byte count, and the buffer as a whole', () => {
  // A file built by hand: 8-byte little-endian header length, the JSON header, the data.
  function file(header: Record<string, unknown>, dataLen: number): Uint8Array {
    const h = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + h.length + dataLen);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
    out.set(h, 8);
    return out;
  }
  type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };
  // A 0-element tensor, a 0-d scalar, a vector and the largest, in file order.
  const base: Record<string, Entry> = {
    empty: { dtype: 'F32', shape: [3, 0], data_offsets: [0, 0] },
    scalar: { dtype: 'I64', shape: [], data_offsets: [0, 8] },
    vec: { dtype: 'F16', shape: [3], data_offsets: [8, 14] },
    big: { dtype: 'F64', shape: [4, 5, 6], data_offsets: [14, 974] },
  };
  const copy = () => JSON.parse(JSON.stringify(base)) as Record<string, Entry>;

  it('the good file reads; each tensor with a shape that needs one element more or fewer, or offsets one byte off, is refused naming it', () => {
    expect([...parseSafetensors(file(base, 974)).tensors.keys()]).toEqual(['empty', 'scalar', 'vec', 'big']);
    for (const key of Object.keys(base)) {
      const grow = copy();
      const s = grow[key].shape;
      if (s.length === 0) grow[key].shape = [2];
      else s[s.length - 1] += 1;
      refused(() => parseSafetensors(file(grow, 974)), new RegExp(`tensor '${key}' shape .* needs \\d+ bytes`), `${key} grown`);
      if (base[key].shape.every((d) => d > 0) && base[key].shape.length > 0) {
        const shrink = copy();
        shrink[key].shape[0] -= 1;
        refused(() => parseSafetensors(file(shrink, 974)), new RegExp(`tensor '${key}' shape .* needs \\d+ bytes`), `${key} shrunk`);
      }
      const off = copy();
      off[key].data_offsets[1] += 1;
      refused(() => parseSafetensors(file(off, 975)), new RegExp(`tensor '${key}'`), `${key} end offset`);
    }
  });

  it('a byte more or fewer in the data buffer, a hole and an overlap are refused', () => {
    refused(() => parseSafetensors(file(base, 975)), /data buffer is 975 bytes but the tensors index only 974/, 'extra byte');
    refused(() => parseSafetensors(file(base, 973)), /tensor 'big' data_offsets \[14, 974\] run past the 973-byte data buffer/, 'short');
    const hole = copy();
    hole.big.data_offsets = [16, 976];
    refused(() => parseSafetensors(file(hole, 976)), /bytes 14\.\.16 of the data buffer belong to no tensor/, 'hole');
    const overlap = copy();
    overlap.vec.data_offsets = [6, 12];
    overlap.big.data_offsets = [12, 972];
    refused(() => parseSafetensors(file(overlap, 972)), /tensor 'vec' .* overlap the previous tensor/, 'overlap');
  });
});

describe('npy and IDX: the data length against the header\'s shape, one byte either way', () => {
  it('each NumPy-written fixture (the 0-d scalar to the 2×3×4 array) refuses a byte more or fewer', () => {
    for (const name of ['f4_scalar.npy', 'f8_5.npy', 'f4_2x3x4.npy']) {
      const good = fixture(`npy/${name}`);
      parseNpy(good);
      refused(() => parseNpy(good.subarray(0, good.length - 1)), /needs \d+ data bytes from byte offset \d+, file has/, `${name} short`);
      const long = new Uint8Array(good.length + 1);
      long.set(good);
      refused(() => parseNpy(long), /needs \d+ data bytes from byte offset \d+, file has/, `${name} long`);
    }
  });

  it('IDX: the real 10 000 labels and a hand-made 1-item file refuse a byte more or fewer; a gzip with a bad CRC or length is refused', async () => {
    const gz = fixture('fashion-mnist/t10k-labels-idx1-ubyte.gz');
    const labels = await gunzipIfNeeded(gz);
    const tiny = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 1, 7]);
    for (const [what, good] of [['t10k labels', labels], ['one label', tiny]] as const) {
      expect(parseIdx(good).data.length).toBe(good.length - 8);
      refused(() => parseIdx(good.subarray(0, good.length - 1)), /needs \d+ bytes from byte offset 8, file has/, `${what} short`);
      const long = new Uint8Array(good.length + 1);
      long.set(good);
      refused(() => parseIdx(long), /needs \d+ bytes from byte offset 8, file has/, `${what} long`);
    }
    // gzip's trailer: CRC-32 then ISIZE, little-endian, in the last 8 bytes (RFC 1952).
    const small = gzipSync(tiny);
    expect(await gunzipIfNeeded(small)).toEqual(tiny);
    for (const at of [small.length - 8, small.length - 4]) {
      const bad = small.slice();
      bad[at] ^= 1;
      await expect(gunzipIfNeeded(bad)).rejects.toThrow(/check|length|incorrect|corrupt/i);
    }
  });
});

describe('pickle: every truncation is refused', () => {
  it('prefixes of a torch.save data.pkl (every one within 64 bytes of either end) and every prefix of the smallest pickle (None) are refused, never read as a shorter value', () => {
    const pkl = readZip(fixture('pth/official_train.pth')).get('official_train/data.pkl')!;
    const opts = { reducers: new Map<string, () => PyValue>([['collections.OrderedDict', () => new Map()], ['torch._utils._rebuild_tensor_v2', () => null]]), persistentLoad: () => null };
    unpickle(pkl, opts);
    for (const bytes of [pkl, new Uint8Array([0x80, 2, 0x4e, 0x2e])]) {
      // every prefix near either end, every 13th between (each parse is linear: all 12 759 cost 2.4 s)
      for (let n = 0; n < bytes.length; n += n < 64 || n >= bytes.length - 64 ? 1 : 13) {
        let threw = false;
        try { unpickle(bytes.subarray(0, n), opts); } catch (e) { threw = (e as Error).name === 'PickleError'; }
        expect(threw, `prefix of ${n} of ${bytes.length} bytes`).toBe(true);
      }
    }
  });
});

describe('ONNX: each initializer\'s data against its dims, from a scalar to the largest, raw and typed', () => {
  const f32 = (n: number) => new Uint8Array(4 * n);
  const graph = (dims: number[], raw: Uint8Array | null, floats?: number[]) =>
    model([{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }], { inits: [tensor('w', dims, FLOAT, raw, floats === undefined ? undefined : (m) => { for (const v of floats) m.float(4, v); })] });

  it('a 0-d, a 0-element, a vector and a 10⁵-element tensor: exact sizes read, one element more or fewer refused', () => {
    for (const dims of [[], [3, 0], [7], [100, 1000]]) {
      const n = dims.reduce((a, b) => a * b, 1);
      if (n > 0) readOnnx(graph(dims, f32(n)));
      for (const m of [n - 1, n + 1]) {
        if (m < 0) continue;
        refused(() => readOnnx(graph(dims, f32(m))), /tensor 'w' .* has shape \[[\d, ]*\] of float32: \d+ bytes, but its data holds \d+/, `raw [${dims}] holding ${m}`);
      }
    }
    readOnnx(graph([2], null, [1, 2]));
    refused(() => readOnnx(graph([2], null, [1, 2, 3])), /tensor 'w' .* has 2 elements by its dims but stores more/, 'float_data long');
    refused(() => readOnnx(graph([3], null, [1, 2])), /tensor 'w' .* has 3 elements by its dims but stores 2/, 'float_data short');
  });
});
