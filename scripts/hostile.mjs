#!/usr/bin/env node
// Hostile-input sweep: runs the built CLI (npm run build first) on malformed files, absurd flags and
// special files, each with a 30 s limit, and flags any case that exits 0, hangs, prints more than one
// line on stderr, or shows a stack trace or a raw JavaScript error. Not part of `npm test`.
//   node scripts/hostile.mjs
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist', 'cli', 'main.js');
const d = mkdtempSync(join(tmpdir(), 'repvgg-hostile-'));
process.on('exit', () => rmSync(d, { recursive: true, force: true }));
const f = (name, bytes) => { const p = join(d, name); writeFileSync(p, bytes); return p; };
const run = (...argv) => spawnSync(process.execPath, [bin, ...argv], { encoding: 'utf8', timeout: 30_000, cwd: d });

// material
const tiny = f('tiny.json', JSON.stringify({ num_blocks: [1, 1, 1, 1], width_multiplier: [0.0625, 0.0625, 0.0625, 0.0625], num_classes: 3, in_channels: 1 }));
run('init', '--config', tiny, '--out', join(d, 'ok.safetensors'));
run('init', '--config', tiny, '--out', join(d, 'ok.pth'));
const ok = join(d, 'ok.safetensors'), okPth = join(d, 'ok.pth');
const npy = (shape, dtype = '<f4') => {
  const header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  const h = Buffer.from(header + ' '.repeat(pad) + '\n');
  const n = shape.reduce((a, b) => a * b, 1);
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  return Buffer.concat([head, h, Buffer.alloc(n * 4)]);
};
const x = f('x.npy', npy([1, 1, 8, 8]));
const pthBytes = (await import('node:fs')).readFileSync(okPth);
symlinkSync(ok, join(d, 'link.safetensors'));
spawnSync('mkfifo', [join(d, 'fifo')]);

// Faults III material: hostile pickles, zips and headers built with the library's own writers
const { PickleWriter } = await import(join(root, 'dist', 'io', 'pickle.js'));
const { writeZip, readZip } = await import(join(root, 'dist', 'io', 'zip.js'));
const { serializePth } = await import(join(root, 'dist', 'io', 'pth.js'));
const { fusedMultiplyAddAvailable } = await import(join(root, 'dist', 'backend', 'backend.js'));
// the binary turns on Node 20's relaxed SIMD in its process: this one does the same before asking
(await import(join(root, 'dist', 'cli', 'relaxed_simd.js'))).allowRelaxedSimd();
const { serializeSafetensors, parseSafetensors } = await import(join(root, 'dist', 'io', 'safetensors.js'));
const H = 'k\u001b]0;owned\u0007\r\u009b2J\u202e\nINJECTED';
const HG = H.replace('\n', ''); // a pickled global's name cannot hold a newline
const enc = new TextEncoder();
const u32 = (n) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const uni = (t) => { const b = enc.encode(t); return [0x58, ...u32(b.length), ...b]; };
const glob = (m, n) => [0x63, ...enc.encode(`${m}\n${n}\n`)];
// {'x': _rebuild_tensor_v2(storage, 0, SIZE, (1,), False, {})}; the storage's type and key may be hostile
const tensorPkl = (size, type = 'FloatStorage', key = '0') => Uint8Array.from([0x80, 2, 0x7d, ...uni('x'), ...glob('torch._utils', '_rebuild_tensor_v2'), 0x28,
  0x28, ...uni('storage'), ...glob('torch', type), ...uni(key), ...uni('cpu'), 0x4b, 4, 0x74, 0x51, 0x4b, 0, ...size, 0x28, 0x4b, 1, 0x74, 0x89, 0x7d, 0x74, 0x52, 0x73, 0x2e]);
const pthOf = (pkl, extra = []) => writeZip([['a/data.pkl', pkl], ['a/data/0', new Uint8Array(16)], ...extra]);
const laughs = [0x5d, 0x4b, 1, 0x61, 0x71, 0, 0x30];
for (let i = 1; i <= 60; i++) laughs.push(0x28, 0x68, i - 1, 0x68, i - 1, 0x6c, 0x71, i, 0x30);
laughs.push(0x68, 60);
const deepSize = [...new Array(100_000).fill(0x5d), ...new Array(99_999).fill(0x61)];
const stOf = (header) => { const j = enc.encode(typeof header === 'string' ? header : JSON.stringify(header)); const b = new Uint8Array(8 + j.length); new DataView(b.buffer).setBigUint64(0, BigInt(j.length), true); b.set(j, 8); return b; };
const okEntries = parseSafetensors(readFileSync(ok)).tensors;
const withStray = new Map(okEntries); withStray.set(H, okEntries.get('linear.bias'));
const pthRecords = readZip(readFileSync(okPth));
const pklName = [...pthRecords.keys()].find((n) => n.endsWith('data.pkl'));
const body = pthRecords.get(pklName).subarray(2, -1);
const wrapperPkl = Uint8Array.from([...new PickleWriter().global('collections', 'OrderedDict').emptyTuple().reduce().mark().unicode('model').bytes(), ...body,
  ...new PickleWriter().unicode(H).global('evil', HG).emptyTuple().reduce().setItems().stop().bytes().subarray(2)]);
const wrapper = f('wrapper.pth', writeZip([...pthRecords].map(([n, b]) => [n, n === pklName ? wrapperPkl : b])));
// pickled module trees (torch.save({'model': model})): NEWOBJ a class, BUILD its __dict__
const moduleState = (modules) => [0x7d, ...uni('_parameters'), 0x7d, 0x73, ...uni('_buffers'), 0x7d, 0x73, ...uni('_modules'), ...modules, 0x73];
const modulePkl = (body) => Uint8Array.from([0x80, 2, 0x7d, ...uni('model'), ...body, 0x73, 0x2e]);
const newModule = (cls = ['torch.nn.modules.module', 'Module']) => [...glob(...cls), 0x29, 0x81];
// a module whose _modules holds itself (memo 0 is the module before its BUILD)
const cyclePkl = modulePkl([...newModule(), 0x71, 0, ...moduleState([0x7d, ...uni('self'), 0x68, 0, 0x73]), 0x62]);
// a child whose state is a list
const listStatePkl = modulePkl([...newModule(), ...moduleState([0x7d, ...uni('a'), ...newModule(), 0x5d, 0x62, 0x73]), 0x62]);
// builtins.eval as the 'model', called with a string (inert: a record of the call)
const evalPkl = modulePkl([...glob('builtins', 'eval'), ...uni('print(1)'), 0x85, 0x81]);
// 10^6 + 1 children sharing one (memoized) class and state
const manyModules = (() => {
  const n = 1_000_001, parts = [0x80, 2, 0x7d, ...uni('model'), ...newModule(), 0x7d, ...uni('_parameters'), 0x7d, 0x73, ...uni('_modules'), 0x7d, 0x28];
  const head = [...glob('torch.nn.modules.module', 'Module'), 0x72, ...u32(1), 0x30, 0x7d, ...uni('_parameters'), 0x7d, 0x73, 0x72, ...u32(2), 0x30];
  const out = new Uint8Array(parts.length + head.length + n * 24 + 16);
  let at = 0;
  for (const b of [...parts, ...head]) out[at++] = b;
  for (let i = 0; i < n; i++) {
    const key = enc.encode(String(i));
    out.set([0x58, ...u32(key.length), ...key, 0x6a, ...u32(1), 0x29, 0x81, 0x6a, ...u32(2), 0x62], at);
    at += 5 + key.length + 5 + 2 + 5 + 1;
  }
  for (const b of [0x75, 0x73, 0x62, 0x73, 0x2e]) out[at++] = b;
  return out.subarray(0, at);
})();
// a real (tiny) IDX dataset: 8 images of 8×8, labels 0..2
const data = join(d, 'data');
mkdirSync(data);
const idx = (dims, body) => { const h = Buffer.alloc(4 + 4 * dims.length); h[2] = 8; h[3] = dims.length; dims.forEach((v, i) => h.writeUInt32BE(v, 4 + 4 * i)); return Buffer.concat([h, Buffer.from(body)]); };
for (const split of ['train', 't10k']) {
  writeFileSync(join(data, `${split}-images-idx3-ubyte`), idx([8, 8, 8], Array.from({ length: 512 }, (_, i) => (i * 37) % 256)));
  writeFileSync(join(data, `${split}-labels-idx1-ubyte`), idx([8], Array.from({ length: 8 }, (_, i) => i % 3)));
}
const userDir = join(d, 'user-folder');
mkdirSync(userDir);
writeFileSync(join(userDir, 'thesis.tex'), 'years of work');
const plan = f('plan.json', '[]');
const legacy = (p) => join(root, 'fixtures', 'pth', `official_legacy_p${p}.pth`);
// ONNX material, written with the library's own protobuf writer
const { ProtoMessage } = await import(join(root, 'dist', 'io', 'protobuf.js'));
const PM = () => new ProtoMessage();
const onnxTensor = (name, dims, raw, type = 1, external = null) => {
  const m = PM();
  for (const v of dims) m.varint(1, v);
  m.varint(2, type).string(8, name);
  if (raw !== null) m.bytes(9, raw);
  if (external !== null) m.message(13, PM().string(1, 'location').string(2, external)).varint(14, 1);
  return m;
};
const onnxVi = (name, dims) => { const sh = PM(); for (const v of dims) sh.message(1, PM().varint(1, v)); return PM().string(1, name).message(2, PM().message(1, PM().varint(1, 1).message(2, sh))); };
const onnxModel = (nodes, inits = [], out = nodes.at(-1)[2][0], attr = null, opset = 17, xDims = [1, 2]) => {
  const g = PM();
  for (const [op, ins, outs, name, own] of nodes) { // own: this node's attributes (else `attr`, on every node)
    const n = PM();
    for (const i of ins) n.string(1, i);
    for (const o of outs) n.string(2, o);
    n.string(3, name ?? `${op}_${outs[0]}`).string(4, op);
    for (const a of [own ?? attr ?? []].flat()) n.message(5, a);
    g.message(1, n);
  }
  g.string(2, 'g');
  for (const t of inits) g.message(5, t);
  g.message(11, onnxVi('x', xDims)).message(12, onnxVi(out, []));
  return PM().varint(1, 8).message(7, g).message(8, PM().string(1, '').varint(2, opset)).encode();
};
const onnxX = f('onnx_x.npy', npy([1, 2]));
const onnxX4 = f('onnx_x4.npy', npy([1, 2, 3, 3]));
const onnxX5 = f('onnx_x5.npy', npy([1, 2, 2, 3, 3]));
const onnxGood = readFileSync(join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'));
const deepAttr = (() => { // 10^5 nested messages as the attribute's subgraph, built in one pass from the lengths
  const depth = 100_000, leaf = enc.encode('leaf');
  const vlen = (n) => { let k = 1; while (n >= 128) { n = Math.floor(n / 128); k++; } return k; };
  const lens = [leaf.length];
  for (let k = 1; k <= depth; k++) lens.push(lens[k - 1] + 1 + vlen(lens[k - 1]));
  const b = new Uint8Array(lens[depth]);
  let at = 0;
  for (let k = depth; k >= 1; k--) { b[at++] = 0x0a; for (let n = lens[k - 1]; ; n = Math.floor(n / 128)) { if (n < 128) { b[at++] = n; break; } b[at++] = (n & 0x7f) | 0x80; } }
  b.set(leaf, at);
  return PM().string(1, 'then_branch').varint(20, 5).bytes(6, b);
})();

/** Cases that must succeed: exit 0 and what `check` asks of the output. */
const okIf = (go, check) => () => { const r = go(); r.mustSucceed = true; r.extra = check(r); return r; };
const unchanged = (path, go) => () => { const before = readFileSync(path); const r = go(); if (!readFileSync(path).equals(before)) r.extra = [`${path} was changed`]; return r; };

// MobileOne networks (recognised from their keys): a small valid one, then damaged copies
const { MobileOne } = await import(join(root, 'dist', 'nn', 'mobileone.js'));
const { stateDict } = await import(join(root, 'dist', 'io', 'state_dict.js'));
const moEntries = stateDict(MobileOne.fromConfig({ width_multipliers: [0.125, 0.125, 0.125, 0.125], num_blocks_per_stage: [1, 1, 2, 1], use_se: true, num_classes: 3, in_channels: 1 }));
const moWith = (name, edit) => { const m = new Map(moEntries); edit(m); return f(name, serializeSafetensors(m)); };
const moShape = (key, shape) => (m) => { const e = m.get(key); m.set(key, { ...e, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }); };
const moNaN = (m) => { const e = m.get('stage2.1.rbr_conv.0.conv.weight'); const data = Float32Array.from(e.data); data[3] = NaN; m.set('stage2.1.rbr_conv.0.conv.weight', { ...e, data }); };
const moMobileOne = moWith('mobileone.safetensors', () => {});
const { parseRawCheckpoint } = await import(join(root, 'dist', 'io', 'checkpoint.js'));
const resnetEntries = parseRawCheckpoint(readFileSync(join(root, 'fixtures', 'blocks', 'resnet_dbb_acb.pth'))).entries;
const resnetWith = (name, edit) => { const m = new Map(resnetEntries); edit(m); return f(name, serializeSafetensors(m)); };
// a FastViT in apple's names (fixtures/make_fastvit_fixtures.py), then damaged copies
const fastvitEntries = parseRawCheckpoint(readFileSync(join(root, 'fixtures', 'blocks', 'fastvit_apple.pth'))).entries;
const fastvitWith = (name, edit) => { const m = new Map(fastvitEntries); edit(m); return f(name, serializeSafetensors(m)); };
const reshaped = (m, key, shape, fill = 0) => { const e = m.get(key); m.set(key, { ...e, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill) }); };
const moConfig = (cfg) => f(`mo_${Math.random().toString(36).slice(2)}.json`, JSON.stringify(cfg));

const CASES = [
  // threads, backend and the page's server
  ['--threads 0', () => run('explain', '--threads', '0')],
  ['--threads 1e3', () => run('explain', '--threads', '1e3')],
  ['--threads 100000', () => run('explain', '--threads', '100000')],
  ['--backend gpu', () => run('explain', '--backend', 'gpu')],
  ['--backend with no value', () => run('explain', '--backend')],
  // where the engine cannot fuse (no relaxed SIMD even behind Node 20's flag, or a CPU that does not
  // fuse), the fused kernel is refused in one line
  ...(fusedMultiplyAddAvailable() ? [] : [['--backend wasm-fused where the engine cannot fuse', () => run('explain', '--backend', 'wasm-fused')]]),
  ['--backend WASM (case matters)', () => run('explain', '--backend', 'WASM')],
  ['explain --block yolo', () => run('explain', '--block', 'yolo')],
  ['explain --block with no value', () => run('explain', '--block')],
  ['web --port 65536', () => run('web', '--port', '65536')],
  ['web --port -5', () => run('web', '--port', '-5')],
  ['web --host that does not resolve', () => run('web', '--port', '0', '--host', '256.1.1.1')],
  // files that are not what they claim
  ['a 3 GiB sparse .npy input (refused from its size)', () => { const p = f('big.npy', ''); truncateSync(p, 3 * 2 ** 30); return run('forward', join(d, 'ok.safetensors'), '--input', p, '--out', join(d, 'big_y.npy')); }],
  // INT8 graphs run as integers: an accumulator past int32 (an int32 bias at its top), and a
  // w_zero_point with neither one value nor one per output channel
  ...(() => {
    const ks = PM().string(1, 'kernel_shape').varint(8, 1).varint(8, 1).varint(20, 7);
    const u8 = (name, v) => onnxTensor(name, [], Uint8Array.of(v), 2);
    const inits = (bias, wz) => [onnxTensor('s', [], new Uint8Array(Float32Array.of(1).buffer)), u8('z', 0), onnxTensor('w', [1, 1, 1, 1], Uint8Array.of(1), 2),
      onnxTensor('wz', [wz], new Uint8Array(wz), 2), onnxTensor('B', [1], new Uint8Array(Int32Array.of(bias).buffer), 6)];
    const graph = (bias, wz) => onnxModel([['QuantizeLinear', ['x', 's', 'z'], ['q'], 'quant', []], ['QLinearConv', ['q', 's', 'z', 'w', 's', 'wz', 's', 'z', 'B'], ['qy'], 'qconv', [ks]],
      ['DequantizeLinear', ['qy', 's', 'z'], ['y'], 'dequant', []]], inits(bias, wz), 'y', null, 13, [1, 1, 1, 1]);
    const xq = f('int8_x.npy', (() => { const b = npy([1, 1, 1, 1]); new DataView(b.buffer, b.byteOffset, b.length).setFloat32(b.length - 4, 3, true); return b; })());
    return [
      ['run: an INT8 accumulator past int32', () => run('run', f('int8_acc.onnx', graph(2 ** 31 - 1, 1)), '--input', xq, '--out', join(d, 'int8_y1.npy'))],
      ['run: an INT8 w_zero_point of 2 values for 1 channel', () => run('run', f('int8_wz.onnx', graph(0, 2)), '--input', xq, '--out', join(d, 'int8_y2.npy'))],
    ];
  })(),
  ['a 3 GiB sparse .onnx model (refused from its size)', () => { const p = f('big.onnx', ''); truncateSync(p, 3 * 2 ** 30); return run('run', p, '--input', x, '--out', join(d, 'big_y.npy')); }],
  ['empty checkpoint', () => run('inspect', f('empty.pth', Buffer.alloc(0)))],
  ['text as checkpoint', () => run('inspect', f('t.pth', 'hello world, not a checkpoint'))],
  ['truncated .pth', () => run('inspect', f('trunc.pth', pthBytes.subarray(0, pthBytes.length >> 1)))],
  ['one flipped byte in .pth', () => { const b = Buffer.from(pthBytes); b[b.length >> 2] ^= 0x55; return run('inspect', f('flip.pth', b)); }],
  ['zip with no data.pkl', () => run('inspect', f('nodata.pth', pthBytes.subarray(pthBytes.indexOf('PK\x01\x02') >= 0 ? 0 : 0).toString('latin1').replace(/data\.pkl/g, 'data.xyz'), 'latin1'))],
  ['safetensors header length huge', () => run('inspect', f('huge.safetensors', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x7b])))],
  ['safetensors header not JSON', () => { const b = Buffer.alloc(16); b.writeBigUInt64LE(8n); b.write('{{{{{{{{', 8); return run('inspect', f('bad.safetensors', b)); }],
  ['directory as checkpoint', () => run('inspect', d)],
  ['missing checkpoint', () => run('inspect', join(d, 'nope.pth'))],
  ['FIFO as checkpoint', () => run('inspect', join(d, 'fifo'))],
  ['/dev/zero as checkpoint', () => run('inspect', '/dev/zero')],
  ['npy with wrong magic', () => run('forward', ok, '--input', f('bad.npy', 'NOTNUMPY'), '--out', join(d, 'y.npy'))],
  ['npy of the wrong rank', () => run('forward', ok, '--input', f('r2.npy', npy([4, 4])), '--out', join(d, 'y.npy'))],
  ['npy with the wrong channels', () => run('forward', ok, '--input', f('c3.npy', npy([1, 3, 8, 8])), '--out', join(d, 'y.npy'))],
  ['npy of int32', () => run('forward', ok, '--input', f('i4.npy', npy([1, 1, 8, 8], '<i4')), '--out', join(d, 'y.npy'))],
  ['npy declaring more data than it has', () => run('forward', ok, '--input', f('short.npy', npy([1, 1, 8, 8]).subarray(0, 200)), '--out', join(d, 'y.npy'))],
  ['config not JSON', () => run('init', '--config', f('c.json', '{num_blocks'), '--out', join(d, 'o.pth'))],
  ['config null', () => run('init', '--config', f('n.json', 'null'), '--out', join(d, 'o.pth'))],
  ['config array', () => run('init', '--config', f('a.json', '[1,2]'), '--out', join(d, 'o.pth'))],
  ['config 1e6 blocks', () => run('init', '--config', f('b.json', JSON.stringify({ num_blocks: [1e6, 1, 1, 1], width_multiplier: [1, 1, 1, 1] })), '--out', join(d, 'o.pth'))],
  ['config width 1e4', () => run('init', '--config', f('w.json', JSON.stringify({ num_blocks: [1, 1, 1, 1], width_multiplier: [1e4, 1, 1, 1] })), '--out', join(d, 'o.pth'))],
  ['config 1e9 classes', () => run('init', '--config', f('k.json', JSON.stringify({ num_blocks: [1, 1, 1, 1], width_multiplier: [1, 1, 1, 1], num_classes: 1e9 })), '--out', join(d, 'o.pth'))],
  ['config negative groups', () => run('init', '--config', f('g.json', JSON.stringify({ num_blocks: [1, 1, 1, 1], width_multiplier: [1, 1, 1, 1], override_groups_map: { 1: -2 } })), '--out', join(d, 'o.pth'))],
  ['config groups not dividing', () => run('init', '--config', f('g3.json', JSON.stringify({ num_blocks: [2, 1, 1, 1], width_multiplier: [1, 1, 1, 1], override_groups_map: { 2: 3 } })), '--out', join(d, 'o.pth'))],
  ['config width 0', () => run('init', '--config', f('w0.json', JSON.stringify({ num_blocks: [1, 1, 1, 1], width_multiplier: [0, 1, 1, 1] })), '--out', join(d, 'o.pth'))],
  ['config tiny width (0 channels)', () => run('init', '--config', f('w1.json', JSON.stringify({ num_blocks: [1, 1, 1, 1], width_multiplier: [0.001, 1, 1, 1] })), '--out', join(d, 'o.pth'))],
  // absurd flags
  ...['0', '-1', '1.5', 'abc', '1e15', '', 'Infinity', 'NaN', '0x10'].map((v) => [`--epochs ${JSON.stringify(v)}`, () => run('train', '--data', d, '--out', join(d, 't.safetensors'), '--epochs', v)]),
  ...['0', '-3', '1e400', 'x'].map((v) => [`demo --batch-size ${v}`, () => run('demo', '--batch-size', v)]),
  ...['0', '-0.1', 'NaN', 'Infinity'].map((v) => [`demo --lr ${v}`, () => run('demo', '--lr', v)]),
  ...['-1', '4294967296', '1.5'].map((v) => [`init --seed ${v}`, () => run('init', '--arch', 'A0', '--seed', v, '--out', join(d, 's.pth'))]),
  // quantize: calibration data and options
  ['quantize: calibration data of the wrong rank', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', onnxX, '--out', join(d, 'q1.onnx'))],
  ['quantize: --percentile 0', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', x, '--out', join(d, 'q2.onnx'), '--method', 'percentile', '--percentile', '0')],
  ['quantize: --calib a folder without IDX files', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', join(root, 'fixtures', 'npy'), '--out', join(d, 'q7.onnx'))],
  ['quantize: --bits 9', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', x, '--out', join(d, 'q4.onnx'), '--bits', '9')],
  ['quantize: --bits 1', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', x, '--out', join(d, 'q5.onnx'), '--bits', '1')],
  ['quantize: --bits 4.5', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', x, '--out', join(d, 'q6.onnx'), '--bits', '4.5')],
  ['quantize: --calib-count past the file', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', x, '--out', join(d, 'q3.onnx'), '--calib-count', '1000')],
  ['quantize: calibration images of the wrong shape', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', x, '--out', join(d, 'q4.onnx'))],
  ['quantize: a training-time checkpoint', () => run('quantize', ok, '--calib', x, '--out', join(d, 'q5.onnx'))],
  ['quantize: 0 calibration images', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', f('empty.npy', npy([0, 3, 32, 30])), '--out', join(d, 'q7.onnx'))],
  ['quantize: calibration with NaN', () => run('quantize', join(root, 'fixtures', 'onnx', 'resnet_basic_opset17.onnx'), '--calib', f('nan.npy', (() => { const b = npy([2, 3, 32, 30]); b.fill(0xff, b.length - 2 * 3 * 32 * 30 * 4); return b; })()), '--out', join(d, 'q6.onnx'))],
  ['quant-report: a deploy checkpoint (valid: no branch columns)', okIf(() => { const dep = join(d, 'qr-deploy.safetensors'); run('convert', ok, dep); return run('quant-report', dep, '--calib', x); }, (r) => (/no branches to compare/.test(r.stdout) ? [] : ['no deploy note']))],
  ['quant-report: calibration of the wrong channels', () => run('quant-report', ok, '--calib', f('c5.npy', npy([2, 5, 8, 8])))],
  // pickled module trees
  ['module tree: a module that holds itself', () => run('convert', f('cycle.pt', pthOf(cyclePkl)), join(d, 'mc.safetensors'), '--blocks')],
  ['module tree: a child whose state is a list', () => run('inspect', f('liststate.pt', pthOf(listStatePkl)))],
  ['module tree: builtins.eval as the model', () => run('inspect', f('eval.pt', pthOf(evalPkl)))],
  ['module tree: 10^6 + 1 modules', () => run('convert', f('many.pt', pthOf(manyModules)), join(d, 'mm.safetensors'), '--blocks')],
  ['module tree: a YOLO-style .pt (valid)', okIf(() => run('convert', join(root, 'fixtures', 'blocks', 'yolo_model.pt'), join(d, 'ym.safetensors'), '--blocks', '--eps', '1e-3'), (r) => (/7 block\(s\) fused, 117 → 31 keys/.test(r.stdout) ? [] : ['not fused as expected']))],
  // convert --blocks: any network's state dict
  ['convert --blocks: 10^5 partial blocks', () => run('convert', f('partial.safetensors', serializeSafetensors(new Map(Array.from({ length: 100_000 }, (_, i) => [`m.${i}.rbr_dense.0.weight`, { dtype: 'F32', shape: [1, 1, 3, 3], data: new Float32Array(9) }])))), join(d, 'pb.safetensors'), '--blocks')],
  ['convert --blocks: RepVGG keys without --eps', () => run('convert', ok, join(d, 'nb.safetensors'), '--blocks')],
  ['convert --blocks: no block in it', () => run('convert', f('noblock.safetensors', serializeSafetensors(new Map([['fc.weight', { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) }]]))), join(d, 'nb2.safetensors'), '--blocks')],
  ['convert --blocks: a 10^5-character prefix', () => run('convert', f('longkey.safetensors', serializeSafetensors(new Map([[`${'a.'.repeat(50_000)}conv1.conv.weight`, { dtype: 'F32', shape: [1, 1, 3, 3], data: new Float32Array(9) }]]))), join(d, 'lk.safetensors'), '--blocks')],
  ['convert --eps without --blocks', () => run('convert', ok, join(d, 'ne.safetensors'), '--eps', '1e-3')],
  ['convert --blocks --qarepvgg sideways', () => run('convert', ok, join(d, 'qs.safetensors'), '--blocks', '--qarepvgg', 'sideways')],
  ['convert --probe-size 100000', () => run('convert', ok, join(d, 'd.safetensors'), '--probe-size', '100000')],
  ['convert --probe-batch 1e9', () => run('convert', ok, join(d, 'd.safetensors'), '--probe-batch', '1000000000')],
  ['verify --rtol -1', () => run('verify', x, x, '--rtol', '-1')],
  ['verify --atol NaN', () => run('verify', x, x, '--atol', 'NaN')],
  ['export --opset 99', () => run('export', ok, join(d, 'o.onnx'), '--opset', '99')],
  ['info --size 0', () => run('info', '--arch', 'A0', '--size', '0')],
  ['unknown flag', () => run('info', '--arch', 'A0', '--sizes', '3')],
  ['flag without value', () => run('info', '--arch')],
  ['unknown command', () => run('frobnicate')],
  ['unknown arch', () => run('info', '--arch', 'Z9')],
  ['--names bogus', () => run('convert', ok, join(d, 'n.pth'), '--names', 'bogus')],
  ['--key on safetensors', () => run('inspect', ok, '--key', 'model')],
  ['--key missing', () => run('inspect', okPth, '--key', 'model')],
  // outputs that would destroy something
  ['convert x x', () => run('convert', ok, ok)],
  ['convert through a symlink', () => run('convert', ok, join(d, 'link.safetensors'))],
  ['forward --out = --input', () => run('forward', ok, '--input', x, '--out', x)],
  ['forward --out ./ spelling of ckpt', () => run('forward', ok, '--input', x, '--out', join(d, '.', 'ok.safetensors'))],
  ['forward --out /dev/null', () => run('forward', ok, '--input', x, '--out', '/dev/null')],
  ['init --out FIFO', () => { const p = join(d, 'fifo.pth'); spawnSync('mkfifo', [p]); return run('init', '--config', tiny, '--out', p); }],
  ['init --out a directory', () => { mkdirSync(join(d, 'dir.pth')); return run('init', '--config', tiny, '--out', join(d, 'dir.pth')); }],
  ['output in a missing unwritable place', () => run('init', '--config', tiny, '--out', '/proc/nope/x.pth')],
  ['demo --out FILE', () => run('demo', '--out', ok)],
  ['train on a missing data dir', () => run('train', '--data', join(d, 'nodata'), '--out', join(d, 't.safetensors'))],
  ['train with a deploy checkpoint', () => { run('convert', ok, join(d, 'dep.safetensors')); return run('train', '--data', d, '--resume', join(d, 'dep.safetensors'), '--out', join(d, 't.safetensors')); }],
  ['convert a deploy checkpoint', () => run('convert', join(d, 'dep.safetensors'), join(d, 'dd.safetensors'))],
  ['backward with a mis-shaped grad', () => run('backward', ok, '--input', x, '--grad-output', x, '--out', join(d, 'g.safetensors'))],
  ['ablate --table fig8', () => run('ablate', '--table', 'fig8')],
  ['ablate --table with no value', () => run('ablate', '--table')],
  ['ablate --seeds 0', () => run('ablate', '--seeds', '0')],
  ['ablate --seeds 2.5', () => run('ablate', '--seeds', '2.5')],
  ['ablate --seeds -1', () => run('ablate', '--seeds', '-1')],
  ['ablate on a missing data dir', () => run('ablate', '--table', 'fig7', '--data', join(d, 'nodata'))],
  // Faults III, 1: no output may eat an input (each before any work)
  ['demo --out a folder with a user file', unchanged(join(userDir, 'thesis.tex'), () => run('demo', '--out', userDir))],
  ['demo --data D --out D', unchanged(join(data, 'train-images-idx3-ubyte'), () => run('demo', '--data', data, '--out', data))],
  ['demo --out /proc/... (fails before training)', () => run('demo', '--out', '/proc/repvgg-nope/report')],
  ['forward --save-plan = --input', unchanged(x, () => run('forward', ok, '--input', x, '--out', join(d, 'y1.npy'), '--save-plan', x))],
  ['forward --out = --plan', unchanged(plan, () => run('forward', ok, '--input', x, '--out', plan, '--plan', plan))],
  ['forward --save-plan = --out', () => run('forward', ok, '--input', x, '--out', join(d, 'same.npy'), '--save-plan', join(d, 'same.npy'))],
  ['train --out = a file in --data', unchanged(join(data, 'train-images-idx3-ubyte'), () => run('train', '--data', data, '--out', join(data, 'train-images-idx3-ubyte')))],
  ['train --out = --config', unchanged(tiny, () => run('train', '--data', data, '--config', tiny, '--out', tiny))],
  ['backward --out = --grad-output', unchanged(x, () => run('backward', ok, '--input', join(d, 'x.npy'), '--grad-output', x, '--out', x))],
  ['export OUT = CKPT', unchanged(ok, () => run('export', ok, ok))],
  ['init --out = --config', unchanged(tiny, () => run('init', '--config', tiny, '--out', tiny))],
  // 2: no small file may hang a parser; messages are bounded summaries
  ['pickled size: billion laughs (memo DAG)', () => run('inspect', f('laughs.pth', pthOf(tensorPkl(laughs))))],
  ['pickled size: a list containing itself', () => run('inspect', f('self.pth', pthOf(tensorPkl([0x5d, 0x71, 0, 0x68, 0, 0x61]))))],
  ['pickled size: 10⁵ nested lists', () => run('inspect', f('deep.pth', pthOf(tensorPkl(deepSize))))],
  ['pickled size: 10⁶ items', () => run('inspect', f('wide.pth', pthOf(tensorPkl([0x28, ...new Array(1_000_000).fill([0x4b, 1]).flat(), 0x6c]))))],
  ['LONG4 of 1 MB (was quadratic)', () => run('inspect', f('long4.pth', pthOf(Uint8Array.from([0x80, 2, 0x8b, ...u32(1_000_000), ...new Uint8Array(1_000_000).fill(0x11), 0x2e]))))],
  ['safetensors JSON nested 10⁵ deep', () => run('inspect', f('deepjson.safetensors', stOf(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)))],
  // 3: raw control characters from files never reach the terminal
  ['control chars: zip entry name', () => run('inspect', f('zname.pth', writeZip([[H, new Uint8Array(1)]])))],
  ['control chars: pickled global (storage type)', () => run('inspect', f('gname.pth', pthOf(tensorPkl([0x28, 0x4b, 1, 0x74], HG))))],
  ['control chars: storage key', () => run('inspect', f('skey.pth', writeZip([['a/data.pkl', tensorPkl([0x28, 0x4b, 1, 0x74], 'FloatStorage', H)]])))],
  ['control chars: safetensors key', () => run('inspect', f('stkey.safetensors', serializeSafetensors(withStray)))],
  ['control chars: safetensors metadata key', () => run('inspect', f('stmeta.safetensors', stOf({ __metadata__: { [H]: 5 } })))],
  ['control chars: resume metadata', () => run('train', '--data', data, '--resume', f('meta.safetensors', serializeSafetensors(okEntries, { step: H })), '--out', join(d, 'r.safetensors'))],
  ['control chars: plan layer name', () => run('forward', ok, '--input', x, '--out', join(d, 'y2.npy'), '--plan', f('hplan.json', JSON.stringify([{ layer: H, algorithm: 'im2col' }])))],
  ['control chars: inspect stdout (other keys, records)', okIf(() => run('inspect', wrapper), (r) => (/records {7}.*evil\.k\\u001b/.test(r.stdout) ? [] : ['records not listed']))],
  // 4: no raw JavaScript error
  ['OrderedDict([None])', () => run('inspect', f('od.pth', pthOf(Uint8Array.from([0x80, 2, ...glob('collections', 'OrderedDict'), 0x28, 0x28, 0x4e, 0x6c, 0x74, 0x52, 0x2e]))))],
  ['plan whose layer is an object', () => run('forward', ok, '--input', x, '--out', join(d, 'y3.npy'), '--plan', f('oplan.json', JSON.stringify([{ layer: { toString: 1 }, algorithm: 'im2col' }])))],
  ['_rebuild_from_type_v2()', () => run('inspect', f('rft.pth', pthOf(Uint8Array.from([0x80, 2, 0x7d, ...uni('x'), ...glob('torch._tensor', '_rebuild_from_type_v2'), 0x29, 0x52, 0x73, 0x2e]))))],
  ['legacy stream whose protocol is an object', () => run('inspect', f('lproto.pth', Uint8Array.from([0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 2, 0x7d, 0x2e])))],
  ['safetensors entry without dtype', () => run('inspect', f('nodtype.safetensors', stOf({ t: { shape: [0], data_offsets: [0, 0] } })))],
  ['safetensors entry without shape', () => run('inspect', f('noshape.safetensors', stOf({ t: { dtype: 'F32', data_offsets: [0, 0] } })))],
  ...['constructor', '__proto__', 'toString', 'hasOwnProperty'].map((o) => [`--${o} as an option`, () => run('info', '--arch', 'A0', `--${o}`, 'x')]),
  // 5: valid files PyTorch reads are read
  ...[3, 4, 5].map((p) => [`legacy .pth with pickle protocol ${p} (valid)`, okIf(() => run('inspect', legacy(p)), (r) => (r.stdout.includes('pth-legacy') ? [] : ['not read as pth-legacy']))]),
  // 6: leftovers of a killed writer are removed by the next write
  ['a SIGKILLed writer\'s temporary file', okIf(() => {
    const pid = Number(spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim());
    writeFileSync(join(d, `.left.safetensors.${pid}.1700000000000.tmp`), Buffer.alloc(1 << 20));
    return run('init', '--config', tiny, '--out', join(d, 'left.safetensors'));
  }, () => (readdirSync(d).some((n) => n.startsWith('.left.safetensors.')) ? ['stale temporary file left'] : []))],
  // 7: strict where torch is strict, and informative
  ["zip entry named '../../x'", () => run('inspect', f('dotdot.pth', writeZip([['../../x', new Uint8Array(1)]])))],
  ['zip entry with an absolute path', () => run('inspect', f('abs.pth', writeZip([['/etc/x', new Uint8Array(1)]])))],
  ["inspect: a partial 'module.' prefix", () => run('inspect', f('partial.safetensors', serializeSafetensors(new Map([...okEntries].map(([k, v]) => [/running_/.test(k) ? `module.${k}` : k, v])))))],
  ['a non-tensor value in a plain state dict', () => run('inspect', f('nontensor.pth', pthOf(Uint8Array.from([...tensorPkl([0x28, 0x4b, 1, 0x74]).subarray(0, -1), ...uni('note'), 0x4b, 3, 0x73, 0x2e]))))],
  ['train --resume a broken .pth names the file', () => run('train', '--data', data, '--resume', f('broken.pth', 'PK\u0003\u0004 not a zip'), '--out', join(d, 'r2.safetensors'))],
  ['a wrapper holding a 300 000-item list', () => run('inspect', f('biglist.pth', pthOf(Uint8Array.from([0x80, 2, 0x7d, ...uni('model'), 0x7d, 0x73, ...uni('big'), 0x5d, 0x28, ...new Array(300_000).fill([0x4b, 0]).flat(), 0x65, 0x73, 0x2e]))))],
  // ONNX in: the reader, run and fuse-onnx
  ['onnx: truncated model', () => run('run', f('trunc.onnx', onnxGood.subarray(0, onnxGood.length >> 1)), '--input', onnxX, '--out', join(d, 'o1.npy'))],
  ['onnx: text as a model', () => run('fuse-onnx', f('text.onnx', 'not a protobuf at all'), join(d, 'o2.onnx'))],
  ['onnx: 10^18-element initializer in 100 bytes', () => run('run', f('huge.onnx', onnxModel([['Add', ['x', 'w'], ['y']]], [onnxTensor('w', [1e9, 1e9], new Uint8Array(4))])), '--input', onnxX, '--out', join(d, 'o3.npy'))],
  ['onnx: 10^10-element value at run time', () => run('run', f('bigrun.onnx', onnxModel([['ConstantOfShape', ['s'], ['big']], ['Add', ['x', 'big'], ['y']]], [onnxTensor('s', [2], new Uint8Array(new BigInt64Array([100000n, 100000n]).buffer), 7)])), '--input', onnxX, '--out', join(d, 'o4.npy'))],
  ['onnx: a cycle', () => run('run', f('cycle.onnx', onnxModel([['Add', ['x', 'q'], ['p']], ['Relu', ['p'], ['q']]], [], 'q')), '--input', onnxX, '--out', join(d, 'o5.npy'))],
  ['onnx: a dangling input', () => run('run', f('dangling.onnx', onnxModel([['Add', ['x', 'nowhere'], ['y']]])), '--input', onnxX, '--out', join(d, 'o6.npy'))],
  ['onnx: unsupported ops (listed)', () => run('run', f('nms.onnx', onnxModel([['NonMaxSuppression', ['x'], ['y']]])), '--input', onnxX, '--out', join(d, 'o7.npy'))],
  ['onnx: opset 27 (not yet checked)', () => run('run', f('opset27.onnx', onnxModel([['Relu', ['x'], ['y']]], [], 'y', null, 27)), '--input', onnxX, '--out', join(d, 'o27.npy'))],
  ['onnx: a node with more inputs than its op takes', () => run('fuse-onnx', f('arity.onnx', onnxModel([['Relu', ['x', 'x'], ['y']]], [], 'y', null, 26)), join(d, 'arity_out.onnx'))],
  ['onnx: a float4e2m1 initializer (opset 26)', () => run('run', f('fp4.onnx', onnxModel([['Add', ['x', 'w'], ['y']]], [onnxTensor('w', [1], new Uint8Array(1), 23)], 'y', null, 26)), '--input', onnxX, '--out', join(d, 'o28.npy'))],
  ['onnx: a subgraph nested 10^5 deep', () => run('run', f('deepgraph.onnx', onnxModel([['If', ['x'], ['y']]], [], 'y', deepAttr)), '--input', onnxX, '--out', join(d, 'o8.npy'))],
  ['onnx: external data ../escape', () => run('run', f('escape.onnx', onnxModel([['Add', ['x', 'w'], ['y']]], [onnxTensor('w', [1, 2], null, 1, '../outside.bin')])), '--input', onnxX, '--out', join(d, 'o9.npy'))],
  ['onnx: external data absolute path', () => run('run', f('abs.onnx', onnxModel([['Add', ['x', 'w'], ['y']]], [onnxTensor('w', [1, 2], null, 1, '/etc/passwd')])), '--input', onnxX, '--out', join(d, 'o10.npy'))],
  ['onnx: external data past its file', () => { writeFileSync(join(d, 'small.bin'), Buffer.alloc(4)); return run('run', f('short.onnx', onnxModel([['Add', ['x', 'w'], ['y']]], [onnxTensor('w', [1, 1000], null, 1, 'small.bin')])), '--input', onnxX, '--out', join(d, 'o11.npy')); }],
  ['onnx: control characters in node names', () => run('run', f('names.onnx', onnxModel([['NonMaxSuppression', ['x'], ['y'], H]])), '--input', onnxX, '--out', join(d, 'o12.npy'))],
  ['onnx: input of the wrong shape', () => run('run', f('shape.onnx', onnxModel([['Relu', ['x'], ['y']]])), '--input', x, '--out', join(d, 'o13.npy'))],
  // attributes past what Operators.md allows (once a raw JavaScript error, a NaN-sized estimate, −∞ outputs)
  ['onnx: ConvTranspose group −2', () => run('run', f('ctg.onnx', onnxModel([['ConvTranspose', ['x', 'w'], ['y']]], [onnxTensor('w', [2, 1, 2, 2], new Uint8Array(32))], 'y', PM().string(1, 'group').varint(3, -2).varint(20, 2), 17, [1, 2, 3, 3])), '--input', onnxX4, '--out', join(d, 'o21.npy'))],
  ['onnx: ConvTranspose strides of one value for 2-D input', () => run('run', f('cts.onnx', onnxModel([['ConvTranspose', ['x', 'w'], ['y']]], [onnxTensor('w', [2, 1, 2, 2], new Uint8Array(32))], 'y', PM().string(1, 'strides').varint(8, 2).varint(20, 7), 17, [1, 2, 3, 3])), '--input', onnxX4, '--out', join(d, 'o22.npy'))],
  ['onnx: MaxPool pads as wide as its window', () => run('run', f('mpp.onnx', onnxModel([['MaxPool', ['x'], ['y']]], [], 'y', [PM().string(1, 'kernel_shape').varint(8, 2).varint(8, 2).varint(20, 7), PM().string(1, 'pads').varint(8, 2).varint(8, 2).varint(8, 2).varint(8, 2).varint(20, 7)], 17, [1, 2, 3, 3])), '--input', onnxX4, '--out', join(d, 'o23.npy'))],
  ['onnx: Resize with antialias (an attribute it would skip)', () => run('run', f('aa.onnx', onnxModel([['Resize', ['x', '', 'sc'], ['y']]], [onnxTensor('sc', [4], new Uint8Array(new Float32Array([1, 1, 0.5, 0.5]).buffer))], 'y', [PM().string(1, 'mode').bytes(4, new TextEncoder().encode('linear')).varint(20, 3), PM().string(1, 'antialias').varint(3, 1).varint(20, 2)], 18, [1, 2, 3, 3])), '--input', onnxX4, '--out', join(d, 'o24.npy'))],
  ['onnx: opset 9', () => run('run', f('old.onnx', onnxModel([['Relu', ['x'], ['y']]], [], 'y', null, 9)), '--input', onnxX, '--out', join(d, 'o14.npy'))],
  ['onnx: DepthToSpace blocksize 2^40', () => run('run', f('d2s.onnx', onnxModel([['DepthToSpace', ['x'], ['y']]], [], 'y', PM().string(1, 'blocksize').varint(3, 2 ** 40).varint(20, 2), 17, [1, 2, 3, 3])), '--input', onnxX4, '--out', join(d, 'o25.npy'))],
  ['onnx: SpaceToDepth blocksize 0', () => run('run', f('s2d.onnx', onnxModel([['SpaceToDepth', ['x'], ['y']]], [], 'y', PM().string(1, 'blocksize').varint(3, 0).varint(20, 2), 17, [1, 2, 3, 3])), '--input', onnxX4, '--out', join(d, 'o26.npy'))],
  ['onnx: LayerNormalization axis 7 of a rank-4 input', () => run('run', f('ln.onnx', onnxModel([['LayerNormalization', ['x', 's'], ['y']]], [onnxTensor('s', [3], new Uint8Array(12))], 'y', PM().string(1, 'axis').varint(3, 7).varint(20, 2), 17, [1, 2, 3, 3])), '--input', onnxX4, '--out', join(d, 'o27.npy'))],
  ['onnx: Tile by 10^9 × 10^9 (refused from its estimate)', () => run('run', f('tile.onnx', onnxModel([['Tile', ['x', 'r'], ['y']]], [onnxTensor('r', [2], new Uint8Array(new BigInt64Array([1000000000n, 1000000000n]).buffer), 7)])), '--input', onnxX, '--out', join(d, 'o29.npy'))],
  ['onnx: a 3-D Conv whose kernel is deeper than the padded input', () => run('run', f('c3d.onnx', onnxModel([['Conv', ['x', 'w'], ['y']]], [onnxTensor('w', [1, 2, 5, 1, 1], new Uint8Array(40))], 'y', null, 17, [1, 2, 2, 3, 3])), '--input', onnxX5, '--out', join(d, 'o30.npy'))],
  ['onnx: a 3-D MaxPool with 2-value pads', () => run('run', f('p3d.onnx', onnxModel([['MaxPool', ['x'], ['y']]], [], 'y', [PM().string(1, 'kernel_shape').varint(8, 2).varint(8, 2).varint(8, 2).varint(20, 7), PM().string(1, 'pads').varint(8, 1).varint(8, 1).varint(20, 7)], 17, [1, 2, 2, 3, 3])), '--input', onnxX5, '--out', join(d, 'o31.npy'))],
  ['onnx: ReduceSum axes as an attribute at opset 13', () => run('run', f('rsum.onnx', onnxModel([['ReduceSum', ['x'], ['y']]], [], 'y', PM().string(1, 'axes').varint(8, 1).varint(20, 7), 13)), '--input', onnxX, '--out', join(d, 'o28.npy'))],
  ['fuse-onnx OUT = IN', unchanged(join(root, 'fixtures', 'onnx', 'acb_block_opset17.onnx'), () => run('fuse-onnx', join(root, 'fixtures', 'onnx', 'acb_block_opset17.onnx'), join(root, 'fixtures', 'onnx', 'acb_block_opset17.onnx')))],
  // the quantized ops (exact integer reference)
  ['onnx: QuantizeLinear with a zero scale', () => run('run', f('q0.onnx', onnxModel([['QuantizeLinear', ['x', 's'], ['y']]], [onnxTensor('s', [], new Uint8Array(4))])), '--input', onnxX, '--out', join(d, 'o18.npy'))],
  ['onnx: DequantizeLinear of a float tensor', () => run('run', f('dq.onnx', onnxModel([['DequantizeLinear', ['x', 's'], ['y']]], [onnxTensor('s', [], new Uint8Array(new Float32Array([1]).buffer))])), '--input', onnxX, '--out', join(d, 'o19.npy'))],
  ['onnx: QLinearMatMul with 10^6 zero points', () => run('run', f('qzp.onnx', onnxModel([['QuantizeLinear', ['x', 's'], ['q']], ['QLinearMatMul', ['q', 's', 'z', 'q', 's', 'z', 's', 'z'], ['y']]], [onnxTensor('s', [], new Uint8Array(new Float32Array([1]).buffer)), onnxTensor('z', [1000000], new Uint8Array(1000000), 2)])), '--input', onnxX, '--out', join(d, 'o20.npy'))],
  // convert --blocks on DBB / ACB (a ResNet-style state dict from fixtures/make_blocks_fixtures.py)
  ['blocks: a DBB with its idconv of the wrong width', () => run('convert', resnetWith('rn_id.safetensors', (m) => { const e = m.get('layer1.0.conv1.dbb_1x1_kxk.idconv1.weight'); m.set('layer1.0.conv1.dbb_1x1_kxk.idconv1.weight', { ...e, shape: [6, 8, 1, 1], data: new Float32Array(48) }); }), join(d, 'rn1.safetensors'), '--blocks')],
  ['blocks: a DBB conv2 reading 0 channels per group', () => run('convert', resnetWith('rn_g0.safetensors', (m) => { const e = m.get('dw.dbb_1x1_kxk.conv2.weight'); m.set('dw.dbb_1x1_kxk.conv2.weight', { ...e, shape: [16, 0, 3, 3], data: new Float32Array(0) }); }), join(d, 'rn2.safetensors'), '--blocks')],
  ['blocks: a FastViT (valid)', okIf(() => run('convert', join(root, 'fixtures', 'blocks', 'fastvit_timm.pth'), join(d, 'fv.safetensors'), '--blocks'), (r) => (/15 block\(s\) fused, 280 → 100 keys/.test(r.stdout) ? [] : ['not fused as expected']))],
  ['blocks: a RepMixer layer scale of the wrong shape', () => run('convert', fastvitWith('fv_ls.safetensors', (m) => reshaped(m, 'network.0.0.token_mixer.layer_scale', [8])), join(d, 'fv1.safetensors'), '--blocks')],
  ['blocks: a RepMixer layer scale holding NaN', () => run('convert', fastvitWith('fv_nan.safetensors', (m) => reshaped(m, 'network.0.0.token_mixer.layer_scale', [8, 1, 1], NaN)), join(d, 'fv2.safetensors'), '--blocks')],
  ['blocks: a RepMixer mixer that is not depthwise', () => run('convert', fastvitWith('fv_dw.safetensors', (m) => reshaped(m, 'network.0.0.token_mixer.mixer.rbr_conv.0.conv.weight', [8, 8, 3, 3])), join(d, 'fv3.safetensors'), '--blocks')],
  ['inspect: a FastViT whose RepMixer layer scale holds NaN (the block named)', () => run('inspect', fastvitWith('fv_inan.safetensors', (m) => reshaped(m, 'network.2.0.token_mixer.layer_scale', [16, 1, 1], NaN)))],
  ['inspect: a FastViT (valid: its blocks by family)', okIf(() => run('inspect', join(root, 'fixtures', 'blocks', 'fastvit_apple.pth')), (r) => (/15 Rep-block\(s\)/.test(r.stdout) ? [] : ['blocks not listed']))],
  ['blocks: a RepCPE pe 0×0', () => run('convert', fastvitWith('fv_pe0.safetensors', (m) => reshaped(m, 'network.6.pe.weight', [64, 1, 0, 0])), join(d, 'fv4.safetensors'), '--blocks')],
  ['blocks: a large kernel whose small conv is larger', () => run('convert', fastvitWith('fv_lk.safetensors', (m) => reshaped(m, 'network.1.proj.0.small_conv.conv.weight', [16, 1, 9, 9])), join(d, 'fv5.safetensors'), '--blocks')],
  ['blocks: an ACB with a stray key (control characters)', () => run('convert', resnetWith('rn_acb.safetensors', (m) => { m.set('layer1.0.conv2.ver_conv.' + H, m.get('fc.bias')); }), join(d, 'rn3.safetensors'), '--blocks')],
  ['blocks: DBB and ACB (valid)', okIf(() => run('convert', join(root, 'fixtures', 'blocks', 'resnet_dbb_acb.pth'), join(d, 'rn4.safetensors'), '--blocks'), (r) => (/7 block\(s\) fused/.test(r.stdout) ? [] : ['not fused as expected']))],
  // MobileOne networks
  ['mobileone: depthwise conv of a dense shape', () => run('forward', moWith('mo_dw.safetensors', moShape('stage1.0.rbr_conv.0.conv.weight', [8, 2, 3, 3])), '--input', x, '--out', join(d, 'mo1.npy'))],
  ['mobileone: a stage cut after its depthwise block', () => run('convert', moWith('mo_cut.safetensors', (m) => { for (const k of [...m.keys()]) if (k.startsWith('stage3.3.')) m.delete(k); }), join(d, 'mo2.pth'))],
  ['mobileone: SE of the wrong width', () => run('forward', moWith('mo_se.safetensors', moShape('stage4.0.se.reduce.weight', [7, 64, 1, 1])), '--input', x, '--out', join(d, 'mo11.npy'))],
  ['mobileone: NaN in a branch weight', () => run('convert', moWith('mo_nan.safetensors', moNaN), join(d, 'mo3.pth'))],
  ['mobileone: a stray key with control characters', () => run('export', moWith('mo_stray.safetensors', (m) => m.set(H, m.get('linear.bias'))), join(d, 'mo4.onnx'))],
  ['mobileone: a timm deploy stem beside apple keys', () => run('forward', moWith('mo_mixed.safetensors', (m) => m.set('stem.reparam_conv.weight', m.get('linear.bias'))), '--input', x, '--out', join(d, 'mo5.npy'))],
  ['mobileone: --names on convert', () => run('convert', moMobileOne, join(d, 'mo6.pth'), '--names', 'mmpretrain')],
  ['mobileone: a 10^6-wide config', () => run('info', '--config', moConfig({ width_multipliers: [1e6, 1e6, 1e6, 1e6] }))],
  ['mobileone: use_se "yes"', () => run('init', '--config', moConfig({ width_multipliers: [1, 1, 1, 1], use_se: 'yes' }), '--out', join(d, 'mo7.pth'))],
  ['mobileone: num_conv_branches 0', () => run('init', '--config', moConfig({ width_multipliers: [1, 1, 1, 1], num_conv_branches: 0 }), '--out', join(d, 'mo8.pth'))],
  ['mobileone: a 10^6×10^6 probe', () => run('convert', moMobileOne, join(d, 'mo9.pth'), '--probe-size', '1000000')],
  ['mobileone: quant-report, a calibration batch of 3 channels for 1', () => run('quant-report', moMobileOne, '--calib', f('x3.npy', npy([1, 3, 8, 8])))],
  ['mobileone: quant-report (valid)', okIf(() => run('quant-report', moMobileOne, '--calib', x), (r) => (/worst:/.test(r.stdout) ? [] : ['no report']))],
  ['mobileone: convert (valid)', okIf(() => run('convert', moMobileOne, join(d, 'mo10.pth')), (r) => (/11 blocks fused/.test(r.stdout) ? [] : ['not fused as expected']))],
  // fuse-onnx's padding runs (Pad / ScatterND evaluated on a probe) and its probe
  ['fuse-onnx: a 10^10-element probe input', () => run('fuse-onnx', f('bigprobe.onnx', onnxModel([['Relu', ['x'], ['y']]], [], 'y', null, 17, [1, 1, 100000, 100000])), join(d, 'o15.onnx'))],
  ['fuse-onnx: 10^5 Pad nodes in a row (valid)', okIf(() => run('fuse-onnx', f('pads.onnx', onnxModel(Array.from({ length: 100_000 }, (_, i) => ['Pad', [i === 0 ? 'x' : `p${i - 1}`, 'pads'], [`p${i}`]]), [onnxTensor('pads', [8], new Uint8Array(64), 7)], 'p99999', null, 17, [1, 1, 2, 2])), join(d, 'o16.onnx')), () => [])],
  ['fuse-onnx: ScatterND updates of the wrong size', () => run('fuse-onnx', f('scatter.onnx', onnxModel([['Conv', ['x', 'w'], ['a']], ['ScatterND', ['a', 'idx', 'upd'], ['y']]], [onnxTensor('w', [1, 1, 1, 1], new Uint8Array(new Float32Array([2]).buffer)), onnxTensor('idx', [1, 4], new Uint8Array(32), 7), onnxTensor('upd', [3], new Uint8Array(12))], 'y', null, 17, [1, 1, 2, 2])), join(d, 'o17.onnx'))],
  ['fuse-onnx: 10^4 BNs before a conv that cannot take them (valid)', okIf(() => { const f1 = new Uint8Array(new Float32Array([1]).buffer); return run('fuse-onnx', f('bnchain.onnx', onnxModel([...Array.from({ length: 10_000 }, (_, i) => ['BatchNormalization', [i === 0 ? 'x' : `b${i - 1}`, 's', 'o', 'm', 'v'], [`b${i}`]]), ['Conv', ['b9999', 'w'], ['y'], 'Conv_y', PM().string(1, 'auto_pad').string(4, 'SAME_UPPER').varint(20, 3)]], [onnxTensor('s', [1], f1), onnxTensor('o', [1], f1), onnxTensor('m', [1], new Uint8Array(4)), onnxTensor('v', [1], f1), onnxTensor('w', [1, 1, 3, 3], new Uint8Array(new Float32Array(9).fill(0.1).buffer))], 'y', null, 17, [1, 1, 4, 4])), join(d, 'o21.onnx')); }, (r) => (/kept/.test(r.stdout) ? [] : ['no reason given']))],
  // checkpoints read into shared memory and viewed in place; verify's semantics
  ['safetensors cut one byte short (read into shared memory)', () => { const b = readFileSync(ok); return run('forward', f('short.safetensors', b.subarray(0, b.length - 1)), '--input', x, '--out', join(d, 'ys.npy')); }],
  ['safetensors with a misaligned data start and a hostile key (copied, refused by shape)', () => { const m = new Map(okEntries); const e = m.get('linear.weight'); m.delete('linear.weight'); m.set(H, e); const b = serializeSafetensors(m); const j = JSON.parse(Buffer.from(b.subarray(8, 8 + Number(Buffer.from(b).readBigUInt64LE(0)))).toString()); const h = enc.encode(JSON.stringify(j) + '   '); const out = new Uint8Array(8 + h.length + (b.length - 8 - Number(Buffer.from(b).readBigUInt64LE(0)))); new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true); out.set(h, 8); out.set(b.subarray(8 + Number(Buffer.from(b).readBigUInt64LE(0))), 8 + h.length); return run('forward', f('misaligned.safetensors', out), '--input', x, '--out', join(d, 'ym.npy')); }],
  ['forward --verbose of a checkpoint cut mid-header', () => { const b = readFileSync(ok); return run('forward', f('cut.safetensors', b.subarray(0, 20)), '--input', x, '--out', join(d, 'yc.npy'), '--verbose'); }],
  ['verify: an infinite reference against a finite output', () => { const inf = Buffer.from(npy([2])); const o = Buffer.from(npy([2])); inf.writeFloatLE(Infinity, inf.length - 8); o.writeFloatLE(3, o.length - 8); return run('verify', f('inf.npy', inf), f('fin.npy', o)); }],
  ['verify: NaN in both (NaN is never close)', () => { const a = Buffer.from(npy([2])); a.writeFloatLE(NaN, a.length - 4); return run('verify', f('nan1.npy', a), f('nan2.npy', Buffer.from(a))); }],
  ['fuse-onnx: a dilation of 10^6 beside a 1×1 (its 2·10^6-wide dense kernel estimated, not allocated; valid)', okIf(() => { const ints = (k, v) => { const m = PM().string(1, k); for (const x of v) m.varint(8, x); return m.varint(20, 7); }; const D = 1_000_000; return run('fuse-onnx', f('hugedil.onnx', onnxModel([['Conv', ['x', 'w3'], ['a'], 'wide', [ints('dilations', [D, D]), ints('pads', [D, D, D, D])]], ['Conv', ['x', 'w1'], ['b'], 'one', []], ['Add', ['a', 'b'], ['y'], 'add', []]], [onnxTensor('w3', [1, 1, 3, 3], new Uint8Array(new Float32Array(9).fill(0.5).buffer)), onnxTensor('w1', [1, 1, 1, 1], new Uint8Array(new Float32Array([2]).buffer))], 'y', null, 17, [1, 1, 4, 4])), join(d, 'o_hugedil.onnx')); }, (r) => (/kept .*dilation 1000000 makes the fused kernel 2000001×2000001/.test(r.stdout) ? [] : ['no estimate given']))],
  ['fuse-onnx: 10^5 nested Subs x − (x − (… − conv(x))) (valid; each level used to copy every term\'s factors: 44 s and 4 GB at 10^4)', okIf(() => run('fuse-onnx', f('nestedsub.onnx', onnxModel([['Conv', ['x', 'w'], ['s0']], ...Array.from({ length: 100_000 }, (_, i) => ['Sub', ['x', `s${i}`], [`s${i + 1}`]])], [onnxTensor('w', [1, 1, 1, 1], new Uint8Array(new Float32Array([0.5]).buffer))], 's100000', null, 17, [1, 1, 2, 2])), join(d, 'o_nestedsub.onnx')), () => [])],
  ['fuse-onnx: sums nested 10^5 deep, x + BN(x + BN(… conv(x) + conv(x))), a level fused a pass (valid: it stops at its budget of passes and says so)', okIf(() => {
    const bn = (i) => ['BatchNormalization', [`s${i}`, 'g', 'be', 'mu', 'var'], [`t${i}`]];
    const nodes = [['Conv', ['x', 'w'], ['a']], ['Conv', ['x', 'w'], ['b']], ['Add', ['a', 'b'], ['s0']], ...Array.from({ length: 100_000 }, (_, i) => [bn(i), ['Add', ['x', `t${i}`], [`s${i + 1}`]]]).flat()];
    const one = (v) => new Uint8Array(new Float32Array([v]).buffer);
    return run('fuse-onnx', f('deepnest.onnx', onnxModel(nodes, [onnxTensor('w', [1, 1, 1, 1], one(0.5)), onnxTensor('g', [1], one(0.5)), onnxTensor('be', [1], one(0)), onnxTensor('mu', [1], one(0)), onnxTensor('var', [1], one(1))], 's100000', null, 17, [1, 1, 2, 2])), join(d, 'o_deepnest.onnx'));
  }, (r) => (/stopped after \d+ passes over the graph/.test(r.stdout) ? [] : ['no word of the passes it stopped at']))],
  ['fuse-onnx of a float16 graph: 3×3 | 1×1 | identity (valid; written back as float16)', okIf(() => {
    const vi16 = (name) => PM().string(1, name).message(2, PM().message(1, PM().varint(1, 10).message(2, [1, 1, 3, 3].reduce((sh, v) => sh.message(1, PM().varint(1, v)), PM()))));
    const g = PM();
    for (const [op, ins, outs, own] of [['Conv', ['x', 'w3'], ['a'], [(() => { const m = PM().string(1, 'pads'); for (const v of [1, 1, 1, 1]) m.varint(8, v); return m.varint(20, 7); })()]], ['Conv', ['x', 'w1'], ['c'], []], ['Add', ['a', 'c'], ['s'], []], ['Add', ['s', 'x'], ['y'], []]]) {
      const n = PM(); for (const i of ins) n.string(1, i); n.string(2, outs[0]).string(3, `${op}_${outs[0]}`).string(4, op); for (const a of own) n.message(5, a); g.message(1, n);
    }
    g.string(2, 'g').message(5, onnxTensor('w3', [1, 1, 3, 3], new Uint8Array(new Uint16Array(9).fill(0x3800).buffer), 10)).message(5, onnxTensor('w1', [1, 1, 1, 1], new Uint8Array(new Uint16Array([0x3801]).buffer), 10));
    g.message(11, vi16('x')).message(12, vi16('y'));
    return run('fuse-onnx', f('f16.onnx', PM().varint(1, 8).message(7, g).message(8, PM().string(1, '').varint(2, 17)).encode()), join(d, 'o_f16.onnx'));
  }, (r) => (/1 pattern\(s\) fused/.test(r.stdout) ? [] : ['not fused']))],
  ['fuse-onnx: 10^5 nested scaled sums 0.5·(x + 0.5·(x + …)) (valid)', okIf(() => run('fuse-onnx', f('nestedmul.onnx', onnxModel([['Conv', ['x', 'w'], ['m0']], ...Array.from({ length: 100_000 }, (_, i) => [['Add', ['x', `m${i}`], [`s${i + 1}`]], ['Mul', [`s${i + 1}`, 'w'], [`m${i + 1}`]]]).flat()], [onnxTensor('w', [1, 1, 1, 1], new Uint8Array(new Float32Array([0.5]).buffer))], 'm100000', null, 17, [1, 1, 2, 2])), join(d, 'o_nestedmul.onnx')), () => [])],
  ['fuse-onnx of a DBB export (844 nodes → 4, valid)', okIf(() => run('fuse-onnx', join(root, 'fixtures', 'onnx', 'dbb_block_opset17.onnx'), join(d, 'dbb.onnx')), (r) => (/1 pattern\(s\) fused: 844 → 4 nodes/.test(r.stdout) ? [] : ['not fused as expected']))],
  ['fuse-onnx of a real export (valid)', okIf(() => run('fuse-onnx', join(root, 'fixtures', 'onnx', 'repvgg_train_opset17.onnx'), join(d, 'fused.onnx')), (r) => (/7 pattern\(s\) fused: 35 → 17 nodes/.test(r.stdout) ? [] : ['not fused as expected']))],
];

let bad = 0;
for (const [name, go] of CASES) {
  const r = go();
  const err = (r.stderr ?? '').trim();
  const problems = [...(r.extra ?? [])];
  if (r.error?.code === 'ETIMEDOUT' || r.signal !== null) problems.push(`did not finish (${r.signal ?? r.error?.code})`);
  else if (r.mustSucceed && r.status !== 0) problems.push(`exited ${r.status}: ${err.slice(0, 100)}`);
  else if (!r.mustSucceed && r.status === 0) problems.push('exited 0');
  // nothing a file wrote may reach the terminal raw: no control character but stdout's own newlines
  if (/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/.test(`${r.stdout ?? ''}${err}`) || /^INJECTED/m.test(r.stdout ?? '')) problems.push('raw control characters');
  if (err.length > 1000) problems.push(`a ${err.length}-character message`);
  if (err.split('\n').length > 1) problems.push(`${err.split('\n').length} stderr lines`);
  if (/\n\s+at |TypeError|RangeError|ReferenceError|Invalid typed array length|Cannot read properties|Cannot convert|\[object Object\]|undefined|circular structure|call stack|EEXIST|BigInt/.test(err)) problems.push('raw JavaScript error');
  if (problems.length > 0) bad++;
  console.log(`${problems.length === 0 ? 'ok  ' : 'BAD '} ${name.padEnd(40)} ${problems.join('; ') || err.slice(0, 110)}`);
}
console.log(`\n${CASES.length - bad} of ${CASES.length} hostile cases handled (one clear line, non-zero exit, no hang)`);
process.exitCode = bad === 0 ? 0 : 1;
