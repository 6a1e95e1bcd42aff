// PyTorch checkpoints written by torch.save (fixtures/make_pth_fixtures.py) read without Python, and
// ours read by torch.load(weights_only=True) (fixtures/pth/readback.json).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { readPth, serializePth, type TorchTensor } from '../../src/io/pth.js';
import { readZip, writeZip, crc32 } from '../../src/io/zip.js';
import { PickleWriter } from '../../src/io/pickle.js';
import { modelFromStateDict } from '../../src/io/state_dict.js';
import type { SafeEntry } from '../../src/io/dtypes.js';
import { fixturePath, loadTorchFixture, maxAbs, maxAbsDiff } from '../helpers.js';

const exp = loadTorchFixture('pth/expected');
const bytesOf = (name: string) => new Uint8Array(readFileSync(fixturePath(`pth/${name}`)));
const read = (name: string, key?: string) => parseCheckpoint(bytesOf(name), { key });
const MARKER = '/tmp/repvgg-ts-pwned-marker'; // what the hostile fixtures' os.system call would create

// Model-level contract (as test/nn/repvgg.test.ts): float32 within 1e-4·max|ref| (7 blocks of float32
// convs and BNs in different summation orders reach ~1e-6), float64 within 1e-10·max|ref| (u = 2⁻⁵³).
function forwardMatches(entries: Map<string, SafeEntry>, refKey: string, dtype: 'float32' | 'float64') {
  const model = modelFromStateDict(entries, { dtype }).eval().setAlgorithm('im2col');
  const x = exp.t('input');
  const y = model.forward(dtype === 'float64' ? x.to('float64') : x);
  const ref = exp.t(refKey);
  expect(maxAbsDiff(y, ref)).toBeLessThanOrEqual((dtype === 'float32' ? 1e-4 : 1e-10) * maxAbs(ref));
}

const officialEntries = read('official_train.pth').entries;

describe('reading torch.save checkpoints', () => {
  it('the zip format: a bare state dict, bit-exact against PyTorch outputs in float32 and float64', () => {
    const ck = read('official_train.pth');
    expect(ck).toMatchObject({ format: 'pth-zip', wrapperKey: null, dialect: 'official' });
    expect(ck.entries.get('stage0.rbr_dense.conv.weight')!.shape).toEqual([8, 3, 3, 3]);
    expect(ck.entries.get('stage1.1.rbr_identity.num_batches_tracked')!.data).toEqual(new BigInt64Array([7n]));
    forwardMatches(ck.entries, 'eval.output', 'float32');
    forwardMatches(ck.entries, 'eval.output@f64', 'float64');
  });

  // Each of these stores the same values differently; each must decode to exactly the same tensors.
  const SAME_VALUES: [file: string, format: string, what: string][] = [
    ['official_legacy.pth', 'pth-legacy', 'the legacy (pre-1.6) stream'],
    ['official_legacy_p3.pth', 'pth-legacy', 'the legacy stream with pickle protocol 3'],
    ['official_legacy_p4.pth', 'pth-legacy', 'the legacy stream with pickle protocol 4 (frames)'],
    ['official_legacy_p5.pth', 'pth-legacy', 'the legacy stream with pickle protocol 5'],
    ['shared_storage.pth', 'pth-zip', 'every tensor a view at an offset into one shared storage'],
    ['noncontiguous.pth', 'pth-zip', 'permuted (non-contiguous) conv weights and transposed linear weight'],
    ['official_zip64.pth', 'pth-zip', 'zip64 records from Python\'s zipfile, archive prefix some/other-prefix/'],
    ['official_bigendian.pth', 'pth-zip', 'a byteorder record saying big, with byte-swapped storages'],
  ];
  for (const [file, format, what] of SAME_VALUES) {
    it(`${what}: the same tensors, bit for bit`, () => {
      const ck = read(file);
      expect(ck.format).toBe(format);
      expect([...ck.entries.keys()]).toEqual([...officialEntries.keys()]);
      for (const [k, e] of officialEntries) {
        expect(ck.entries.get(k)!.shape, k).toEqual(e.shape);
        expect(ck.entries.get(k)!.data, k).toEqual(e.data);
      }
    });
  }

  it('the non-contiguous fixture really is strided (its tensors are not plain copies)', () => {
    const top = readPth(bytesOf('noncontiguous.pth')).value as Map<string, { stride: number[]; shape: number[] }>;
    const w = top.get('stage0.rbr_dense.conv.weight')!;
    expect(w.shape).toEqual([8, 3, 3, 3]);
    expect(w.stride).toEqual([9, 72, 1, 3]); // permute(1, 0, 3, 2).contiguous().permute(1, 0, 3, 2)
    const shared = readPth(bytesOf('shared_storage.pth')).value as Map<string, { storage: unknown; offset: number }>;
    const views = [...shared.values()].filter((t) => t.offset > 0);
    expect(views.length).toBeGreaterThan(10);
    expect(new Set([...shared.values()].map((t) => t.storage)).size).toBeLessThan(shared.size);
  });

  it('half and bfloat16 weights widen exactly (PyTorch evaluated the rounded weights in float64)', () => {
    for (const [file, dtype] of [['official_fp16.pth', 'F16'], ['official_bf16.pth', 'BF16']] as const) {
      const ck = read(file);
      expect(ck.entries.get('linear.weight')!.dtype).toBe(dtype);
      forwardMatches(ck.entries, `${dtype === 'F16' ? 'fp16' : 'bf16'}.eval.output@f64`, 'float64');
    }
  });

  it('double weights load as float64', () => {
    const ck = read('official_f64.pth');
    expect(ck.entries.get('linear.weight')!.data).toBeInstanceOf(Float64Array);
    expect(modelFromStateDict(ck.entries).dtype).toBe('float64');
    forwardMatches(ck.entries, 'eval.output@f64', 'float64');
  });

  it('deploy checkpoints: the values PyTorch fused, bit for bit, and its deploy outputs', () => {
    for (const file of ['official_deploy.pth', 'mmpretrain_deploy.pth']) {
      const ck = read(file);
      for (const [k, e] of ck.entries) expect(e.data, `${file} ${k}`).toEqual(exp.raw(`deploy.${k}`).data);
      forwardMatches(ck.entries, 'deploy.output', 'float32');
    }
  });
});

describe('no copies where none are needed', () => {
  it('contiguous tensors are views into the file; a shared-memory model computes exactly what a copying one does', () => {
    const bytes = bytesOf('official_train.pth');
    const entries = parseCheckpoint(bytes).entries;
    const w = entries.get('stage1.0.rbr_dense.conv.weight')!;
    expect(w.data.buffer).toBe(bytes.buffer); // a view, 64-byte aligned as torch.save writes it
    const shared = modelFromStateDict(entries, { share: true }).eval().setAlgorithm('im2col');
    const copied = modelFromStateDict(entries).eval().setAlgorithm('im2col');
    expect(shared.stages[0][0].rbrDense!.conv.weight.data.data).toBe(w.data);
    expect(copied.stages[0][0].rbrDense!.conv.weight.data.data).not.toBe(w.data);
    expect(shared.forward(exp.t('input')).data).toEqual(copied.forward(exp.t('input')).data);
  });
});

describe('hostile and broken checkpoints', () => {
  it('an os.system payload beside the weights stays an inert record: loads, and never runs', () => {
    rmSync(MARKER, { force: true });
    const ck = read('malicious_unrelated.pth');
    expect(ck.wrapperKey).toBe('state_dict');
    expect(ck.otherKeys).toEqual(['payload']);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('a tensor whose storage would come from os.system is refused, naming the global, and never runs', () => {
    rmSync(MARKER, { force: true });
    expect(() => read('malicious_tensor.pth')).toThrow(/storage is a pickled 'posix\.system' object, which this reader never calls/);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('a pickled module (torch.save(model)) is read as its state dict from the module tree, whose classes are named, never imported', () => {
    const whole = read('whole_model.pth'), flat = read('official_train.pth');
    expect([...whole.entries.keys()]).toEqual([...flat.entries.keys()]); // state_dict()'s keys and order
    for (const [k, e] of whole.entries) expect(e.shape, k).toEqual(flat.entries.get(k)!.shape);
    expect(whole.records[0]).toEqual({ at: 'model', cls: expect.stringMatching(/\.RepVGG$/) });
  });

  it('compressed entries are refused (torch.save never writes them)', () => {
    expect(() => read('official_deflate.pth')).toThrow(/entry 'archive\/data\.pkl' is compressed \(method 8, deflate\)/);
  });

  it('truncation, corruption and overlapping entries get one clear line with a byte offset', () => {
    const b = bytesOf('official_train.pth');
    expect(() => parseCheckpoint(b.subarray(0, b.length >> 1))).toThrow(/no end-of-central-directory record.*truncated/);
    const corrupt = b.slice();
    corrupt[b.length >> 1] ^= 0xff;
    expect(() => parseCheckpoint(corrupt)).toThrow(/fails its CRC-32 check/);
    // Point the second central-directory entry at the first entry's data (same CRC and sizes): two
    // names for one set of bytes, the trick overlapping zip bombs use.
    const bomb = b.slice();
    const bv = new DataView(bomb.buffer);
    const first = bv.getUint32(b.length - 22 + 16, true);
    const second = first + 46 + bv.getUint16(first + 28, true) + bv.getUint16(first + 30, true) + bv.getUint16(first + 32, true);
    bomb.copyWithin(second + 16, first + 16, first + 28);
    bv.setUint32(second + 42, bv.getUint32(first + 42, true), true);
    expect(() => parseCheckpoint(bomb)).toThrow(/zip: entries '.*' and '.*' overlap at byte offset \d+ \(a zip bomb's trick; refused\)/);
  });

  it('tensors that would copy out to far more than the file (many views of one storage) are refused with the estimate', () => {
    // 2000 entries, each a full view of one 1 MiB storage: 2000 MiB to copy out of a ~1 MiB file.
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    for (let i = 0; i < 2000; i++) {
      w.unicode(`t${i}`).global('torch._utils', '_rebuild_tensor_v2').mark();
      w.mark().unicode('storage').global('torch', 'FloatStorage').unicode('0').unicode('cpu').int(262144).tuple().binpersid();
      w.int(0).mark().int(262144).tuple().mark().int(1).tuple().bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
    }
    w.setItems().stop();
    const zip = writeZip([['a/data.pkl', w.bytes()], ['a/data/0', new Uint8Array(4 * 262144)]]);
    expect(() => parseCheckpoint(zip)).toThrow(/would need 2000\.0 MiB copied out, more than 4× the 1\.\d MiB file/);
  });

  it('a wrapper that refers back to itself (a cycle) gets a clear error, not a loop', () => {
    // PROTO 2, EMPTY_DICT, BINPUT 0, BINUNICODE 'model', BINGET 0, SETITEM, STOP: d = {}; d['model'] = d
    const pkl = Uint8Array.from([0x80, 2, 0x7d, 0x71, 0, 0x58, 5, 0, 0, 0, ...new TextEncoder().encode('model'), 0x68, 0, 0x73, 0x2e]);
    expect(() => parseCheckpoint(writeZip([['a/data.pkl', pkl]]))).toThrow(/'model' refers back to the top level \(a cycle\)/);
  });

  it('a tensor reaching past its storage is refused, naming the storage', () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    w.unicode('x').global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().unicode('storage').global('torch', 'FloatStorage').unicode('0').unicode('cpu').int(4).tuple().binpersid();
    w.int(2).mark().int(3).tuple().mark().int(1).tuple().bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
    w.setItems().stop();
    expect(() => readPth(writeZip([['a/data.pkl', w.bytes()], ['a/data/0', new Uint8Array(16)]]))).toThrow(/reads element 4 of storage '0', which holds 4/);
  });
});

describe('writing .pth files that PyTorch reads', () => {
  const report = JSON.parse(readFileSync(fixturePath('pth/readback.json'), 'utf8')).files as Record<string, Record<string, unknown>>;
  const readback = loadTorchFixture('pth/readback');

  it('torch.load(weights_only=True) read every file we wrote as a plain state dict and loaded it strictly', () => {
    const pth = Object.entries(report).filter(([k]) => k.endsWith('.pth'));
    expect(pth.map(([k]) => k)).toEqual(['deploy_official.pth', 'deploy_timm.pth', 'deploy_mmpretrain.pth', 'init_timm.pth', 'init_official_f64.pth']);
    for (const [name, r] of pth) expect(r, name).toMatchObject({ type: 'OrderedDict', missing: 0, unexpected: 0 });
    expect(report['init_official_f64.pth'].dtypes).toEqual(['torch.float64', 'torch.int64']);
    expect(report['deploy_timm.pth'].first_key).toBe('stem.reparam_conv.weight');
  });

  it('PyTorch\'s outputs from our files match ours (so the values, not just the keys, arrived)', () => {
    for (const name of ['deploy_official.pth', 'deploy_timm.pth', 'deploy_mmpretrain.pth', 'init_timm.pth', 'init_official_f64.pth']) {
      const entries = parseCheckpoint(bytesOf(`ours/${name}`)).entries;
      if (name.startsWith('deploy')) forwardMatches(entries, 'deploy.output', 'float32'); // each is the fused official model
      const f64 = name.includes('f64');
      const model = modelFromStateDict(entries).eval().setAlgorithm('im2col');
      const y = model.forward(f64 ? exp.t('input').to('float64') : exp.t('input'));
      const ref = readback.t(name);
      expect(maxAbsDiff(y, ref), name).toBeLessThanOrEqual((f64 ? 1e-10 : 1e-4) * maxAbs(ref));
    }
  }, 20_000);

  it('zip records are 64-byte aligned and carry correct CRC-32s (checked by an independent CRC of a known string)', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926); // the CRC-32/ISO-HDLC check value
    const bytes = serializePth(new Map([['w', { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }]]));
    const recs = readZip(bytes);
    expect([...recs.keys()]).toEqual(['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/version']);
    for (const r of recs.values()) expect(r.byteOffset % 64).toBe(0);
    expect(new Float32Array(recs.get('archive/data/0')!.slice().buffer)).toEqual(new Float32Array([1, 2, 3, 4, 5, 6]));
  });
});

describe('a 0-d tensor and integer dtypes round-trip through our writer and reader', () => {
  it('num_batches_tracked (I64 scalar) and an I32 tensor', () => {
    const entries = new Map<string, SafeEntry>([
      ['n', { dtype: 'I64', shape: [], data: new BigInt64Array([123456789012n]) }],
      ['i', { dtype: 'I32', shape: [3], data: new Int32Array([-1, 0, 7]) }],
      ['f', { dtype: 'F64', shape: [1, 2], data: new Float64Array([Math.PI, -0]) }],
    ]);
    const back = readPth(serializePth(entries)).value as Map<string, { toEntry(): SafeEntry }>;
    for (const [k, e] of entries) expect(back.get(k)!.toEntry()).toEqual(e);
  });
});

// fixtures/make_pth_fixtures.py layouts(): views of a storage whose element i holds i, in all ten dtypes,
// with the values PyTorch's tolist() gives for each. A reader that takes a strided view for a
// contiguous one in any dimension, drops a storage offset or mis-sizes a 0-size/0-d tensor reads
// other elements, and the values differ.
describe('every tensor layout torch.save writes, in every dtype', () => {
  type Ref = { shape: number[]; stride: number[]; offset: number; values: number[] };
  const ref = JSON.parse(readFileSync(fixturePath('pth/layouts.json'), 'utf8')).tensors as Record<string, Ref>;
  for (const file of ['layouts.pth', 'layouts_legacy.pth']) {
    it(`${file}: each of ${Object.keys(ref).length} views reads to PyTorch's values, element by element`, () => {
      const top = readPth(bytesOf(file)).value as Map<string, TorchTensor>;
      expect([...top.keys()]).toEqual(Object.keys(ref));
      for (const [key, want] of Object.entries(ref)) {
        const t = top.get(key)!;
        expect([t.shape, t.stride, t.offset], key).toEqual([want.shape, want.stride, want.offset]); // the fixture holds the layout it names
        const e = t.toEntry();
        expect(e.shape, key).toEqual(want.shape);
        const got = Array.from(e.data as ArrayLike<number | bigint>, Number);
        expect(got, key).toEqual(want.values);
      }
    });
  }

  it('the fixture covers what it claims: steps, stride 0, overlap, offsets, size 0 and rank 0', () => {
    const r = (k: string) => ref[`f32.${k}`];
    expect(r('step_dim1').stride).toEqual([30, 18, 1]);
    expect(r('expand_dim1').stride[1]).toBe(0);
    expect(r('overlap_rows')).toMatchObject({ shape: [7, 10], stride: [3, 1], offset: 5 });
    expect(r('empty_dim1').shape).toEqual([4, 0, 6]);
    expect(r('scalar_at_offset')).toMatchObject({ shape: [], offset: 3 * 30 + 6 + 4 });
    expect(r('empty_at_end')).toMatchObject({ shape: [0], offset: 120 });
  });
});
