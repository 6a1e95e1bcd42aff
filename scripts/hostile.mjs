#!/usr/bin/env node
// Hostile-input sweep: runs the built CLI (npm run build first) on malformed files, absurd flags and
// special files, each with a 30 s limit, and flags any case that exits 0, hangs, prints more than one
// line on stderr, or shows a stack trace or a raw JavaScript error. Not part of `npm test`.
//   node scripts/hostile.mjs
import { mkdirSync, mkdtempSync, writeFileSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist', 'cli', 'main.js');
const d = mkdtempSync(join(tmpdir(), 'repvgg-hostile-'));
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

const CASES = [
  // threads, backend and the page's server
  ['--threads 0', () => run('explain', '--threads', '0')],
  ['--threads 1e3', () => run('explain', '--threads', '1e3')],
  ['--threads 100000', () => run('explain', '--threads', '100000')],
  ['--backend gpu', () => run('explain', '--backend', 'gpu')],
  ['--backend with no value', () => run('explain', '--backend')],
  ['explain --block yolo', () => run('explain', '--block', 'yolo')],
  ['explain --block with no value', () => run('explain', '--block')],
  ['web --port 65536', () => run('web', '--port', '65536')],
  ['web --port -5', () => run('web', '--port', '-5')],
  ['web --host that does not resolve', () => run('web', '--port', '0', '--host', '256.1.1.1')],
  // files that are not what they claim
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
];

let bad = 0;
for (const [name, go] of CASES) {
  const r = go();
  const err = (r.stderr ?? '').trim();
  const problems = [];
  if (r.error?.code === 'ETIMEDOUT' || r.signal !== null) problems.push(`did not finish (${r.signal ?? r.error?.code})`);
  else if (r.status === 0) problems.push('exited 0');
  if (err.split('\n').length > 1) problems.push(`${err.split('\n').length} stderr lines`);
  if (/\n\s+at |TypeError|RangeError|ReferenceError|Invalid typed array length|Cannot read properties|EEXIST|BigInt/.test(err)) problems.push('raw JavaScript error');
  if (problems.length > 0) bad++;
  console.log(`${problems.length === 0 ? 'ok  ' : 'BAD '} ${name.padEnd(40)} ${problems.join('; ') || err.slice(0, 110)}`);
}
console.log(`\n${CASES.length - bad} of ${CASES.length} hostile cases handled (one clear line, non-zero exit, no hang)`);
process.exitCode = bad === 0 ? 0 : 1;
