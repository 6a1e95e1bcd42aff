// Hostile input, one test per class of fault (issue: nothing lost, nothing silent, no hang, no
// out-of-memory crash, clear messages). Every failing command must print one line and exit non-zero.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { cli } from './run.js';
import { serializeNpy } from '../../src/io/npy.js';
import { serializeSafetensors, parseSafetensors } from '../../src/io/safetensors.js';
import { loadStateDict, stateDict } from '../../src/io/state_dict.js';
import { compareArrays } from '../../src/io/compare.js';
import { RepVGG } from '../../src/nn/repvgg.js';
import { relu, reluBackward } from '../../src/ops/relu.js';
import { batchNorm2d } from '../../src/ops/batchnorm.js';
import { fit, predict } from '../../src/train/fit.js';
import { Tensor, zeros } from '../../src/tensor/tensor.js';
import { Rng, uniform } from '../../src/tensor/rng.js';
import { checkCommandFiles, readBytes, removeStaleTemps, writeFileAtomic, writeFolderAtomic } from '../../src/cli/files.js';
import { loadCommands } from '../../src/cli/commands/index.js';
import { DEMO_FILES } from '../../src/cli/commands/demo.js';
import { PickleWriter } from '../../src/io/pickle.js';
import { readZip, writeZip } from '../../src/io/zip.js';
import { serializePth } from '../../src/io/pth.js';
import { progressBar, clock } from '../../src/cli/progress.js';
import { convert } from '../../src/reparam/repvgg.js';
import { VERSION } from '../../src/version.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'repvgg-faults-'));
const TINY = { num_blocks: [1, 1, 1, 1], width_multiplier: [0.0625, 0.0625, 0.0625, 0.0625], num_classes: 3, in_channels: 1 };

async function fails(argv: string[], msg: RegExp): Promise<void> {
  const r = await cli(...argv);
  expect(r.code, r.err).not.toBe(0);
  expect(r.err.split('\n'), r.err).toHaveLength(1);
  expect(r.err).toMatch(msg);
  expect(r.err).not.toMatch(/\n\s+at |TypeError|RangeError|Invalid typed array length|Cannot read properties/);
}

/** A tiny IDX dataset (MNIST layout) of n 8×8 images with labels in [0, classes). */
function tinyData(dir: string, n: number, labels: (i: number) => number, testLabels = labels): void {
  const idx = (dims: number[], data: Uint8Array) => {
    const head = new Uint8Array(4 + 4 * dims.length);
    head.set([0, 0, 0x08, dims.length]);
    const dv = new DataView(head.buffer);
    dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
    return Buffer.concat([head, data]);
  };
  const rng = new Rng(5);
  const img = Uint8Array.from({ length: n * 64 }, () => rng.int(256));
  for (const [split, f] of [['train', labels], ['t10k', testLabels]] as const) {
    writeFileSync(join(dir, `${split}-images-idx3-ubyte`), idx([n, 8, 8], img));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), idx([n], Uint8Array.from({ length: n }, (_, i) => f(i))));
  }
}

describe('never lose data', () => {
  it('a test run keeps its temporary files in a folder of its own, removed when it ends (test/global_setup.ts)', () => {
    expect(basename(tmpdir())).toMatch(/^repvgg-test-run-/);
    expect(statSync(tmpdir()).isDirectory()).toBe(true);
  });

  it('a file is read whole, byte for byte, across the chunks it is read in (plain and shared memory)', () => {
    const dir = tmp();
    const chunk = 1 << 18; // files.ts reads a chunk at a time: sizes around its multiples
    for (const size of [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 5]) {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = i % 251; // a prime period: no chunk reads like another
      const path = join(dir, `f${size}.bin`);
      writeFileSync(path, bytes);
      for (const shared of [false, true]) {
        const got = readBytes(path, 'file', shared);
        expect(got.length).toBe(size);
        expect(Buffer.from(got).equals(Buffer.from(bytes))).toBe(true);
      }
    }
  });

  it('an output that is an input is refused before any work: same path, ./ spelling, symlink', async () => {
    const dir = tmp();
    const ck = join(dir, 'x.safetensors');
    expect((await cli('init', '--config', writeConfig(dir), '--out', ck)).code).toBe(0);
    const before = readFileSync(ck);
    symlinkSync(ck, join(dir, 'link.safetensors'));
    writeFileSync(join(dir, 'a.npy'), serializeNpy(uniform([1, 1, 8, 8], new Rng(1), -1, 1)));
    await fails(['convert', ck, ck], /DEPLOY '.*x\.safetensors' is the same file as TRAIN/);
    await fails(['convert', ck, join(dir, 'link.safetensors')], /is the same file as TRAIN/);
    await fails(['forward', ck, '--input', join(dir, 'a.npy'), '--out', join(dir, '.', 'x.safetensors')], /--out .* is the same file as CKPT/);
    await fails(['forward', ck, '--input', join(dir, 'a.npy'), '--out', join(dir, 'sub', '..', 'a.npy')], /--out .* is the same file as --input/);
    expect(readFileSync(ck)).toEqual(before);
  });

  it('an existing output that is not a regular file (a device, a FIFO) is never replaced; reading one is refused, without hanging', async () => {
    const dir = tmp();
    const ck = join(dir, 'x.safetensors');
    await cli('init', '--config', writeConfig(dir), '--out', ck);
    writeFileSync(join(dir, 'a.npy'), serializeNpy(uniform([1, 1, 8, 8], new Rng(1), -1, 1)));
    await fails(['forward', ck, '--input', join(dir, 'a.npy'), '--out', '/dev/null'], /--out '\/dev\/null' is a character device, not a regular file; refusing to replace it/);
    const fifo = join(dir, 'pipe.safetensors');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await fails(['init', '--config', writeConfig(dir), '--out', fifo], /--out '.*pipe\.safetensors' is a FIFO, not a regular file; refusing to replace it/);
    await fails(['inspect', fifo], /checkpoint '.*pipe\.safetensors' is a FIFO, not a regular file; refusing to read it/);
    expect(statSync(fifo).isFIFO()).toBe(true);
  });

  it('a report folder is replaced whole or not at all', () => {
    const parent = tmp(), dir = join(parent, 'report');
    writeFolderAtomic(dir, [['a.txt', new TextEncoder().encode('old')], ['b.txt', new Uint8Array(1)]]);
    writeFolderAtomic(dir, [['a.txt', new TextEncoder().encode('new')], ['b.txt', new Uint8Array(2)]]);
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.txt']);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('new');
    // a write that fails part-way (a name that cannot be created) leaves the previous folder as it was
    expect(() => writeFolderAtomic(dir, [['a.txt', new Uint8Array(1)], ['b.txt', new Uint8Array(1)], ['bad\0name', new Uint8Array(1)]])).toThrow(/cannot write folder/);
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.txt']);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('new');
    expect(readdirSync(parent)).toEqual(['report']); // no temporary folder left behind
  });

  it('an output folder that cannot be created is one line, not a hang (Node\'s recursive mkdir never returns under /proc)', async () => {
    const dir = tmp();
    const t = performance.now();
    await fails(['init', '--config', writeConfig(dir), '--out', '/proc/repvgg-nope/x.pth'], /--out '\/proc\/repvgg-nope\/x\.pth': cannot write there \(ENOENT/);
    expect(performance.now() - t).toBeLessThan(5000);
  });

  it('demo --out FILE fails before training', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'file'), 'x');
    const t = performance.now();
    await fails(['demo', '--out', join(dir, 'file')], /--out '.*file' is a file, not a folder/);
    expect(performance.now() - t).toBeLessThan(5000);
  });
});

describe('signals and concurrent writers', () => {
  const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

  it('SIGTERM during training exits 143, leaves no temporary file or lock, and keeps the last checkpoint complete', async () => {
    const dir = tmp(), data = join(dir, 'data');
    mkdirSync(data);
    tinyData(data, 200, (i) => i % 3);
    const ck = join(dir, 'ck.safetensors');
    const child = spawn(process.execPath, [bin, 'train', '--data', data, '--config', writeConfig(dir), '--epochs', '500', '--batch-size', '10', '--out', ck], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        if (/train epoch 2\/500:/.test(err) && !child.killed) child.kill('SIGTERM'); // two checkpoints written
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(code, err).toBe(143);
    expect(err).toMatch(/interrupted by SIGTERM; the last checkpoint written is complete/);
    expect(readdirSync(dir).sort()).toEqual(['ck.safetensors', 'data', 'tiny.json']); // no .tmp, no .lock
    expect(Number(parseSafetensors(readFileSync(ck)).metadata.epoch)).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('SIGTERM in the middle of a write: the write completes, nothing temporary remains, exit 143', async () => {
    // JavaScript cannot be interrupted inside a synchronous write; the signal is handled right after
    // it (the handlers outlive the write by one poll of the event loop), so the file is whole and the
    // temp file renamed. The writer signals itself between two chunks: no timing decides where it lands.
    const dir = tmp(), out = join(dir, 'big.bin');
    const script = join(dir, 'w.mjs');
    writeFileSync(script, `import { writeFileAtomic } from ${JSON.stringify(fileURLToPath(new URL('../../dist/cli/files.js', import.meta.url)))};
const chunk = new Uint8Array(2 ** 20).fill(7);
function* chunks() {
  for (let i = 0; i < 160; i++) {
    if (i === 80) process.kill(process.pid, 'SIGTERM');
    yield chunk;
  }
}
writeFileAtomic(${JSON.stringify(out)}, chunks());
for (const t = Date.now(); Date.now() - t < 50;); // a late event loop, as on a busy machine
setTimeout(() => console.error('signal lost'), 2000);`);
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/interrupted by SIGTERM; files already written are complete/);
    expect(statSync(out).size).toBe(160 * 2 ** 20);
    expect(readdirSync(dir).sort()).toEqual(['big.bin', 'w.mjs']);
  }, 30_000);

  it('a second writer of one checkpoint is refused while the first is alive; a stale lock is taken over', async () => {
    const dir = tmp(), data = join(dir, 'data');
    mkdirSync(data);
    tinyData(data, 22, (i) => i % 3);
    const ck = join(dir, 'ck.safetensors');
    writeFileSync(`${ck}.lock`, `${process.pid}\n`); // this test process: alive
    await fails(['train', '--data', data, '--config', writeConfig(dir), '--epochs', '1', '--batch-size', '11', '--out', ck], new RegExp(`being written by another process \\(pid ${process.pid}, lock file`));
    expect(existsSync(ck)).toBe(false);
    writeFileSync(`${ck}.lock`, '2147483646\n'); // no such process
    expect((await cli('train', '--data', data, '--config', writeConfig(dir), '--epochs', '1', '--batch-size', '11', '--out', ck)).code).toBe(0);
    expect(existsSync(`${ck}.lock`)).toBe(false);
  });
});

describe('nothing silent', () => {
  it('NaN propagates through ReLU as in PyTorch (forward keeps NaN and −0; backward passes NaN\'s gradient)', () => {
    const y = relu(new Tensor(new Float32Array([NaN, -0, -1, 2]), [4]));
    expect(Number.isNaN(y.data[0])).toBe(true);
    expect(Object.is(y.data[1], -0)).toBe(true);
    expect(Array.from(y.data.slice(2))).toEqual([0, 2]);
    expect(Array.from(reluBackward(new Tensor(new Float32Array([5, 5, 5, 5]), [4]), y).data)).toEqual([5, 0, 0, 5]); // torch: grad 1 at NaN
  });

  it('a NaN input gives NaN logits in the training-time and the fused model alike', () => {
    const m = RepVGG.fromConfig(TINY, { seed: 1 }).eval();
    const x = uniform([2, 1, 8, 8], new Rng(2), -1, 1);
    x.data[0] = NaN; // image 0 only
    for (const model of [m, convert(m)]) {
      const y = model.forward(x);
      expect(Array.from(y.data.slice(0, 3)).every(Number.isNaN)).toBe(true);
      expect(Array.from(y.data.slice(3)).every(Number.isFinite)).toBe(true);
    }
  });

  it('loading refuses non-finite weights, negative variances and fractional counters, naming the key, and changes nothing', () => {
    const m = RepVGG.fromConfig(TINY, { seed: 1 });
    const good = stateDict(RepVGG.fromConfig(TINY, { seed: 2 }));
    const before = Array.from(m.linear.weight.data.data);
    const cases: [string, (sd: typeof good) => void, RegExp][] = [
      ['NaN', (sd) => { (sd.get('stage3.0.rbr_dense.conv.weight')!.data as Float32Array)[3] = NaN; }, /'stage3\.0\.rbr_dense\.conv\.weight' holds NaN at flat index 3/],
      ['Inf', (sd) => { (sd.get('linear.bias')!.data as Float32Array)[0] = Infinity; }, /'linear\.bias' holds Infinity/],
      ['negative var', (sd) => { (sd.get('stage1.0.rbr_1x1.bn.running_var')!.data as Float32Array)[1] = -0.5; }, /'stage1\.0\.rbr_1x1\.bn\.running_var' holds a negative variance -0\.5/],
      ['fractional counter', (sd) => { sd.set('stage0.rbr_dense.bn.num_batches_tracked', { dtype: 'F32', shape: [], data: new Float32Array([1.5]) }); }, /num_batches_tracked' must be a non-negative integer counter, got 1\.5/],
    ];
    for (const [, spoil, msg] of cases) {
      const sd = new Map([...good].map(([k, e]) => [k, { ...e, data: e.data.slice() }]));
      spoil(sd as typeof good);
      expect(() => loadStateDict(m, sd as typeof good)).toThrow(msg);
      expect(Array.from(m.linear.weight.data.data)).toEqual(before); // the linear layer is written last: nothing was written
    }
  });

  it('convert reports a probe with non-finite logits as a failure and writes nothing', async () => {
    const dir = tmp();
    const m = RepVGG.fromConfig(TINY, { seed: 1 });
    for (const [k, p] of m.namedParameters()) if (k.endsWith('conv.weight')) p.data.data.fill(1e30); // overflows to Infinity
    const ck = join(dir, 'big.safetensors');
    writeFileSync(ck, serializeSafetensors(stateDict(m)));
    await fails(['convert', ck, join(dir, 'd.safetensors')], /probe batch gives non-finite logits .*nothing written/);
    expect(existsSync(join(dir, 'd.safetensors'))).toBe(false);
  });

  it('train: a batch of one against a 1×1 map is refused up front; resuming past --epochs does nothing; bad labels are refused', async () => {
    const dir = tmp(), data = join(dir, 'data');
    mkdirSync(data);
    tinyData(data, 33, (i) => i % 3);
    const cfg = writeConfig(dir);
    const ck = join(dir, 'ck.safetensors');
    // 8×8 input → 1×1 after the four stride-2 stages and stage0: 33 = 32 + 1 leaves a batch of one
    await fails(['train', '--data', data, '--config', cfg, '--epochs', '1', '--batch-size', '32', '--out', ck], /33 images in batches of 32 leave a last batch of one image, and the model's last feature map is 1×1/);
    expect(existsSync(ck)).toBe(false);
    expect((await cli('train', '--data', data, '--config', cfg, '--epochs', '1', '--batch-size', '11', '--out', ck)).code).toBe(0);
    const trained = readFileSync(ck);
    const again = await cli('train', '--data', data, '--epochs', '1', '--batch-size', '11', '--resume', ck, '--out', ck);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/nothing to do: .* already at step 3, and 1 epochs of 3 steps end at step 3; wrote nothing/);
    expect(readFileSync(ck)).toEqual(trained);
    tinyData(data, 33, (i) => (i === 7 ? 9 : i % 3), (i) => (i === 4 ? 3 : i % 3)); // test set first: a label 3 for a 3-class model
    await fails(['train', '--data', data, '--config', cfg, '--epochs', '1', '--batch-size', '11', '--out', join(dir, 'b.safetensors')], /test label 3 at index 4 is outside \[0, 3\)/);
    tinyData(data, 33, (i) => (i === 7 ? 9 : i % 3), (i) => i % 3); // a training label 9 for a 3-class model
    await fails(['train', '--data', data, '--config', cfg, '--epochs', '1', '--batch-size', '11', '--out', join(dir, 'b.safetensors')], /training label 9 at index 7 is outside \[0, 3\)/);
  }, 20_000);

  it('resume metadata is parsed like a flag: "1e15", "-100000" and "abc" are refused', async () => {
    const dir = tmp(), data = join(dir, 'data');
    mkdirSync(data);
    tinyData(data, 22, (i) => i % 3);
    for (const step of ['1e15', '-100000', 'abc']) {
      const ck = join(dir, `s${step}.safetensors`);
      writeFileSync(ck, serializeSafetensors(stateDict(RepVGG.fromConfig(TINY)), { step }));
      await fails(['train', '--data', data, '--resume', ck, '--out', ck, '--epochs', '2'], /metadata 'step' must be (an|a non-negative) integer, got/);
    }
  });

  it('verify treats equal infinities as equal (numpy.allclose) and refuses negative tolerances', async () => {
    const c = compareArrays(new Float32Array([Infinity, -Infinity, 1]), new Float32Array([Infinity, -Infinity, 1]), 0, 0);
    expect(c.failures).toBe(0);
    expect(compareArrays(new Float32Array([Infinity]), new Float32Array([-Infinity]), 1, 1).failures).toBe(1);
    expect(() => compareArrays(new Float32Array(2), new Float32Array(3), 0, 0)).toThrow(/the reference has 2 elements, the output 3/);
    const dir = tmp();
    writeFileSync(join(dir, 'a.npy'), serializeNpy(new Tensor(new Float32Array([Infinity, 1]), [2])));
    expect((await cli('verify', join(dir, 'a.npy'), join(dir, 'a.npy'), '--rtol', '0', '--atol', '0')).code).toBe(0);
    await fails(['verify', join(dir, 'a.npy'), join(dir, 'a.npy'), '--rtol', '-1'], /--rtol must be a non-negative finite number, got -1/);
  });
});

describe('no hang, no out-of-memory crash: every numeric flag through one parser, estimates first', () => {
  const CASES: [string[], RegExp][] = [
    [['demo', '--batch-size', '0'], /demo: --batch-size must be a positive integer, got 0/],
    [['ablate', '--batch-size', '0'], /ablate: --batch-size must be a positive integer, got 0/],
    [['train', '--data', '.', '--out', 'x.safetensors', '--epochs', '1.5'], /train: --epochs must be an integer, got '1\.5'/],
    [['train', '--data', '.', '--out', 'x.safetensors', '--epochs', '-1'], /--epochs must be a positive integer, got -1/],
    [['train', '--data', '.', '--out', 'x.safetensors', '--epochs', '0'], /--epochs must be a positive integer, got 0/],
    [['demo', '--lr', 'abc'], /--lr must be a number, got 'abc'/],
    [['demo', '--lr', '0'], /--lr must be a positive finite number, got 0/],
    [['init', '--arch', 'A0', '--seed', '1e15', '--out', 'x.safetensors'], /--seed must be an integer, got '1e15'/],
    [['init', '--arch', 'A0', '--seed', '-1', '--out', 'x.safetensors'], /--seed must be an integer from 0 to 4294967295, got -1/],
    [['info', '--arch', 'A0', '--size', '0'], /--size must be a positive integer, got 0/],
    [['export', 'x.pth', 'x.onnx', '--opset', '1.5'], /--opset must be an integer, got '1\.5'/],
  ];
  for (const [argv, msg] of CASES) it(argv.join(' '), () => fails(argv, msg));

  it('configs are estimated before anything is allocated', async () => {
    const dir = tmp();
    for (const [cfg, msg] of [
      [{ num_blocks: [1e6, 1, 1, 1], width_multiplier: [1, 1, 1, 1] }, /would need up to 4\.13e\+10 parameters/],
      [{ num_blocks: [1, 1, 1, 1], width_multiplier: [1e4, 1, 1, 1] }, /would need up to .* parameters .*refusing more than 2e\+9/],
      [{ num_blocks: [1, 1, 1, 1], width_multiplier: [1, 1, 1, 1], num_classes: 1e9 }, /would need up to 5\.13e\+11 parameters .*1000000000 classes/],
      [{ num_blocks: [1, 1, 1, 1], width_multiplier: [0.001, 1, 1, 1] }, /leaves stage 0 with no channels/],
    ] as const) {
      writeFileSync(join(dir, 'c.json'), JSON.stringify(cfg));
      await fails(['init', '--config', join(dir, 'c.json'), '--out', join(dir, 'x.safetensors')], msg);
    }
    expect(() => RepVGG.fromConfig(null as never)).toThrow(/RepVGG config: expected an object with num_blocks and width_multiplier, got null/);
  });

  it('an input file over 2 GiB is refused from its size, before a byte is read (a sparse 3 GiB .npy)', async () => {
    const dir = tmp();
    await cli('init', '--config', writeConfig(dir), '--out', join(dir, 'x.safetensors'));
    const big = join(dir, 'big.npy');
    writeFileSync(big, '');
    truncateSync(big, 3 * 2 ** 30); // sparse: no disk, no time
    const t0 = performance.now();
    await fails(['forward', join(dir, 'x.safetensors'), '--input', big, '--out', join(dir, 'y.npy')], /cannot read input '.*big\.npy': File size \(3221225472\) is greater than 2 GiB/);
    // an ONNX model too (protobuf's own limit; larger models keep their weights in external data)
    const onnx = join(dir, 'big.onnx');
    writeFileSync(onnx, '');
    truncateSync(onnx, 3 * 2 ** 30);
    await fails(['run', onnx, '--input', join(dir, 'x.npy'), '--out', join(dir, 'y.npy')], /cannot read ONNX model '.*big\.onnx': File size \(3221225472\) is greater than 2 GiB/);
    expect(performance.now() - t0).toBeLessThan(20_000); // reading one whole took ~19 s and 3.2 GB here
  });

  it('convert estimates the probe before allocating it (--probe-size 100000)', async () => {
    const dir = tmp();
    await cli('init', '--config', writeConfig(dir), '--out', join(dir, 'x.safetensors'));
    await fails(['convert', join(dir, 'x.safetensors'), join(dir, 'd.safetensors'), '--probe-size', '100000'], /probe batch .* would need about \d+\.\d GiB for one forward pass \(limit 8 GiB\)/);
  });
});

describe('clear messages and a usable package', () => {
  it('keys echoed in messages are escaped (no terminal control characters)', async () => {
    const dir = tmp();
    const sd = stateDict(RepVGG.fromConfig(TINY));
    sd.set('evil\u001b[31m\u0007key', sd.get('linear.bias')!);
    writeFileSync(join(dir, 'e.safetensors'), serializeSafetensors(sd));
    writeFileSync(join(dir, 'a.npy'), serializeNpy(uniform([1, 1, 8, 8], new Rng(1), -1, 1)));
    await fails(['forward', join(dir, 'e.safetensors'), '--input', join(dir, 'a.npy'), '--out', join(dir, 'y.npy')], /unexpected key 'evil\\u001b\[31m\\u0007key'/);
  });

  it('library calls get clear errors too', () => {
    const m = RepVGG.fromConfig(TINY);
    expect(() => predict(m, new Tensor(new Float32Array(0), [0, 1, 8, 8]))).toThrow(/predict: the input \[0, 1, 8, 8\] holds no images/);
    expect(() => fit(m, { x: zeros([4, 1, 8, 8]), y: new Int32Array(4) }, { epochs: 1, batchSize: 0, lr: 0.1 })).toThrow(/fit: batchSize must be a positive integer, got 0/);
    expect(() => batchNorm2d(zeros([1, 2, 2, 2]), { weight: zeros([2], 'float64'), bias: null, runningMean: zeros([2]), runningVar: zeros([2]) }, { training: false })).toThrow(/dtype/);
    expect(() => new Tensor(new Float32Array(3), [2, 2])).toThrow(/holds 4 elements but data has 3/);
    const bytes = serializeSafetensors(stateDict(m));
    expect(parseSafetensors(bytes.slice().buffer).tensors.size).toBe(parseSafetensors(bytes).tensors.size); // an ArrayBuffer just works
  });

  it('repvgg --version; require(\'repvgg-ts\') from CommonJS (Node ≥ 20.19); the version matches package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(VERSION).toBe(pkg.version);
    expect((await cli('--version')).out).toBe(`repvgg-ts ${pkg.version}`);
    const r = spawnSync(process.execPath, ['-e', "const r = require('repvgg-ts'); console.log(typeof r.RepVGG, typeof r.toOnnx)"], { cwd: new URL('../..', import.meta.url), encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('function function');
    expect(pkg.license).toBe('MIT');
    expect(existsSync(new URL('../../LICENSE', import.meta.url))).toBe(true);
  });

  it('the progress bar shows this epoch\'s progress and an ETA within 60 columns', () => {
    const line = progressBar('ablate identity epoch 12/120', 0.5, `loss 0.123 ETA ${clock(3725)}`);
    expect(line.length).toBeLessThanOrEqual(60);
    expect(progressBar('epoch 2/8', 0.5, 'loss 0.412 ETA 1:05')).toBe('epoch 2/8 [######------]  50% loss 0.412 ETA 1:05');
    expect(clock(75)).toBe('1:15');
    expect(clock(3725)).toBe('1:02:05');
  });

  it('a gzip whose output would exceed what its IDX header declares is refused while decompressing', async () => {
    const dir = tmp();
    const head = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 4]); // 1-D, 4 labels
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(Buffer.concat([head, Buffer.alloc(50_000_000)])));
    const { gunzipIfNeeded } = await import('../../src/train/idx.js');
    const t = performance.now();
    await expect(gunzipIfNeeded(new Uint8Array(readFileSync(join(dir, 'train-labels-idx1-ubyte.gz'))), 'labels')).rejects.toThrow(/decompresses past the 12 bytes its IDX header declares/);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});

// Faults III: the classes a hostile user found, each tested as a class (a sweep), not an instance.
describe('Faults III: no output eats an input, nothing raw reaches a terminal', () => {
  const PATH_FLAGS = ['input', 'out', 'config', 'data', 'plan', 'save-plan', 'resume', 'grad-output'];

  it('every command declares every path it takes (so the one check sees them all)', async () => {
    for (const c of await loadCommands()) {
      const declared = new Set((c.spec.files ?? []).map((f) => f.arg));
      for (const f of PATH_FLAGS) if (Object.hasOwn(c.spec.flags, f)) expect(declared.has(f), `${c.spec.name} --${f}`).toBe(true);
      const n = typeof c.spec.positionals === 'number' ? c.spec.positionals : c.spec.positionals[1];
      for (let i = 0; i < n; i++) expect(declared.has(i), `${c.spec.name} positional ${i + 1}`).toBe(true);
    }
  });

  it('sweep: for every command, each output named as each of its inputs (or a file in an input folder) is refused before any work, and the input is unchanged', async () => {
    let tried = 0;
    for (const c of await loadCommands()) {
      const files = c.spec.files ?? [];
      for (const o of files.filter((f) => f.role === 'out' || f.role === 'out-dir')) {
        for (const i of files.filter((f) => f.role === 'in' || f.role === 'in-dir' || f.role === 'inout')) {
          const dir = tmp();
          // every declared path gets a distinct existing file (a folder for in-dir) so that only the clash is wrong
          const paths = new Map<string | number, string>();
          for (const f of files) {
            const p = join(dir, `f${String(f.arg)}`);
            if (f.role === 'in-dir') { mkdirSync(p); writeFileSync(join(p, 'train-images-idx3-ubyte'), 'data'); } else if (f.role !== 'out-dir') writeFileSync(p, `content of ${String(f.arg)}`);
            paths.set(f.arg, p);
          }
          const target = i.role === 'in-dir' && o.role === 'out' ? join(paths.get(i.arg)!, 'train-images-idx3-ubyte') : paths.get(i.arg)!;
          if (o.role === 'out-dir' && i.role !== 'in-dir') continue; // a file cannot be the folder; its own test covers 'is a file'
          if (i.role === 'inout' && o.arg === 'out') continue; // train --out may be its --resume (continue into it)
          paths.set(o.arg, target);
          const before = i.role === 'in-dir' ? readFileSync(join(target, o.role === 'out-dir' ? 'train-images-idx3-ubyte' : '')) : readFileSync(target);
          const argv = [c.spec.name];
          const npos = typeof c.spec.positionals === 'number' ? c.spec.positionals : c.spec.positionals[0];
          for (let k = 0; k < npos; k++) argv.push(paths.get(k) ?? join(dir, `p${k}`));
          for (const f of files) if (typeof f.arg === 'string') argv.push(`--${f.arg}`, paths.get(f.arg)!);
          const r = await cli(...argv);
          expect(r.code, `${argv.join(' ')}: ${r.err}`).not.toBe(0);
          expect(r.err, argv.join(' ')).toMatch(/is the same (file|folder) as|holds '.*', which this command did not write/);
          expect(r.err.split('\n')).toHaveLength(1);
          expect(i.role === 'in-dir' ? readFileSync(join(target, o.role === 'out-dir' ? 'train-images-idx3-ubyte' : '')) : readFileSync(target)).toEqual(before);
          tried++;
        }
      }
    }
    expect(tried).toBe(22); // forward 2 outputs × 3 inputs, backward 3, train 2, run 2, quantize 2, quant-report (--svg) 2, convert, export, fuse-onnx, init, demo 1 each
  });

  it('demo --out: a folder holding a user\'s file, or the dataset itself, is refused before training; a previous report is replaced', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'thesis.tex'), 'years of work');
    const t = performance.now();
    await fails(['demo', '--out', dir], /--out '.*' holds 'thesis\.tex', which this command did not write; refusing to replace a folder with other files in it/);
    expect(readFileSync(join(dir, 'thesis.tex'), 'utf8')).toBe('years of work');
    const data = tmp();
    tinyData(data, 8, (i) => i % 10);
    await fails(['demo', '--data', data, '--out', data], /--out '.*' is the same folder as --data/);
    expect(readdirSync(data).length).toBe(4);
    await fails(['demo', '--out', '/proc/repvgg-nope/report'], /--out '\/proc\/repvgg-nope\/report': cannot write there/);
    expect(performance.now() - t).toBeLessThan(5000); // all refused before any training
    // a folder with only our own file names is a previous report: replaced whole (the writer's own test)
    const prev = tmp();
    for (const n of DEMO_FILES) writeFileSync(join(prev, n), 'old');
    expect(() => checkCommandFiles([{ flag: '--out', path: prev, role: 'out-dir', names: DEMO_FILES }])).not.toThrow();
    // one of our names, but a folder of the user's: not a previous report
    const trap = tmp();
    mkdirSync(join(trap, 'report.md'));
    writeFileSync(join(trap, 'report.md', 'notes.txt'), 'mine');
    expect(() => checkCommandFiles([{ flag: '--out', path: trap, role: 'out-dir', names: DEMO_FILES }])).toThrow(/holds 'report\.md', which is a directory, not a file this command wrote/);
  });

  it('a writer killed with SIGKILL leaves temporaries that the next write of the same output removes (a live writer\'s are kept; a lone .old folder is put back)', () => {
    const dir = tmp();
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout.trim());
    writeFileSync(join(dir, `.x.safetensors.${deadPid}.1700000000000.tmp`), Buffer.alloc(1000));
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']); // another writer, still running
    writeFileSync(join(dir, `.x.safetensors.${live.pid}.1700000000000.tmp`), 'in use');
    writeFileSync(join(dir, `.x.safetensors.${process.pid}.1700000000000.tmp`), 'mine: in use');
    writeFileSync(join(dir, `.other.safetensors.${deadPid}.1.tmp`), 'not this output');
    writeFileAtomic(join(dir, 'x.safetensors'), new Uint8Array(4));
    live.kill();
    expect(readdirSync(dir).sort()).toEqual([`.other.safetensors.${deadPid}.1.tmp`, ...[live.pid!, process.pid].map((p) => `.x.safetensors.${p}.1700000000000.tmp`).sort(), 'x.safetensors']);
    // a folder write killed between its two renames: the previous report sits alone at .NAME.PID.old
    mkdirSync(join(dir, `.report.${deadPid}.old`));
    writeFileSync(join(dir, `.report.${deadPid}.old`, 'a.txt'), 'previous');
    mkdirSync(join(dir, `.report.${deadPid}.tmp`));
    removeStaleTemps(dir, 'report');
    expect(readFileSync(join(dir, 'report', 'a.txt'), 'utf8')).toBe('previous');
    expect(existsSync(join(dir, `.report.${deadPid}.tmp`))).toBe(false);
  });

  it('sweep: a hostile string (ESC, BEL, CR, C1 CSI, a bidi override, a newline) in every place a file can put text reaches stdout and stderr escaped, stderr one line', async () => {
    const H = 'k\u001b]0;owned\u0007\r\u009b2J\u202e\nINJECTED';
    const dir = tmp();
    const sd = stateDict(RepVGG.fromConfig(TINY));
    const ck = join(dir, 'ok.safetensors');
    writeFileSync(ck, serializeSafetensors(sd, { step: H }));
    writeFileSync(join(dir, 'a.npy'), serializeNpy(uniform([1, 1, 8, 8], new Rng(1), -1, 1)));
    const data = tmp();
    tinyData(data, 8, (i) => i % 3);
    const tensorPth = (storageType: string, key: string, dataName = `a/data/${key}`) => {
      const w = new PickleWriter();
      w.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
      w.unicode('x').global('torch._utils', '_rebuild_tensor_v2').mark();
      w.mark().unicode('storage').global('torch', storageType).unicode(key).unicode('cpu').int(1).tuple().binpersid();
      w.int(0).mark().int(1).tuple().mark().int(1).tuple().bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
      w.setItems().stop();
      return writeZip([['a/data.pkl', w.bytes()], [dataName, new Uint8Array(4)]]);
    };
    const file = (name: string, bytes: Uint8Array | string) => { const p = join(dir, name); writeFileSync(p, bytes); return p; };
    // {'model': <the state dict>, H: an object of class 'evil.H'}: our own .pth's pickle body, wrapped
    const records = readZip(serializePth(sd));
    const body = records.get('archive/data.pkl')!.subarray(2, -1); // without PROTO 2 and STOP (no memo used)
    const head = new PickleWriter().global('collections', 'OrderedDict').emptyTuple().reduce().mark().unicode('model').bytes();
    const tail = new PickleWriter().unicode(H).global('evil', H.replace('\n', '')).emptyTuple().reduce().setItems().stop().bytes();
    const wrapperPkl = Uint8Array.from([...head, ...body, ...tail.subarray(2)]);
    const wrapperZip = writeZip([...records].map(([n, b]) => [n, n === 'archive/data.pkl' ? wrapperPkl : b] as [string, Uint8Array]));
    const plainWithStray = new Map(sd);
    plainWithStray.set(H, sd.get('linear.bias')!);
    const CASES: [string, string[]][] = [
      ['zip entry name', ['inspect', file('z.pth', writeZip([[H, new Uint8Array(1)]]))]],
      ['pickled storage type (a global name: no newline in it)', ['inspect', file('g.pth', tensorPth(H.replace('\n', ''), '0'))]],
      ['storage key', ['inspect', file('k.pth', tensorPth('FloatStorage', H, 'a/data/other'))]],
      ['safetensors key', ['inspect', file('s.safetensors', serializeSafetensors(plainWithStray))]],
      ['safetensors metadata (train --resume step)', ['train', '--data', data, '--resume', ck, '--out', join(dir, 't.safetensors')]],
      ['plan layer name', ['forward', ck, '--input', join(dir, 'a.npy'), '--out', join(dir, 'y.npy'), '--plan', file('p.json', JSON.stringify([{ layer: H, algorithm: 'im2col' }]))]],
      ['plan layer that is an object', ['forward', ck, '--input', join(dir, 'a.npy'), '--out', join(dir, 'y.npy'), '--plan', file('p2.json', JSON.stringify([{ layer: { toString: 1 }, algorithm: 'im2col' }]))]],
      ['inspect\'s other keys and records (stdout)', ['inspect', file('w.pth', wrapperZip)]],
      ['a config value', ['info', '--config', file('c.json', JSON.stringify({ num_blocks: [H, 1, 1, 1], width_multiplier: [1, 1, 1, 1] }))]],
      ['a flag value', ['info', '--arch', H]],
    ];
    for (const [where, argv] of CASES) {
      const r = await cli(...argv);
      const both = `${r.out}\n${r.err}`;
      if (!where.includes('an object')) expect(both, where).toContain('\\u001b'); // the hostile text arrived, escaped
      expect(both, where).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
      expect(both, where).not.toMatch(/^INJECTED/m);
      expect(r.err.split('\n').length, where).toBeLessThanOrEqual(1);
      expect(r.err, where).not.toMatch(/Cannot convert|\[object Object\]|undefined|Cannot read/);
    }
  });

  it('option names are looked up as the command\'s own, never Object.prototype\'s (--constructor, --__proto__, --toString, --hasOwnProperty)', async () => {
    for (const f of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      await fails(['info', '--arch', 'A0', `--${f}`, 'x'], new RegExp(`info: unknown option --${f} `));
    }
  });

  it('inspect accepts exactly what loading accepts: a partial \'module.\' prefix or a stray key is refused by both', async () => {
    const dir = tmp();
    const sd = stateDict(RepVGG.fromConfig(TINY));
    // the BN statistics under 'module.', the conv weights (all inspect read before) without it
    const partial = new Map([...sd].map(([k, v]) => [/running_|num_batches/.test(k) ? `module.${k}` : k, v]));
    const p = join(dir, 'partial.safetensors');
    writeFileSync(p, serializeSafetensors(partial));
    await fails(['inspect', p], /missing key|unexpected key 'module\./);
    await fails(['convert', p, join(dir, 'd.safetensors')], /missing key|unexpected key 'module\./);
  });

  it('a non-tensor value in a plain state dict is named by its key; train --resume names the file whatever its format', async () => {
    const dir = tmp();
    const w = new PickleWriter(); // {'w': tensor, 'note': 3}
    w.global('collections', 'OrderedDict').emptyTuple().reduce().mark().unicode('w').global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().unicode('storage').global('torch', 'FloatStorage').unicode('0').unicode('cpu').int(1).tuple().binpersid();
    w.int(0).mark().int(1).tuple().mark().int(1).tuple().bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
    w.unicode('note').int(3).setItems().stop();
    writeFileSync(join(dir, 'n.pth'), writeZip([['a/data.pkl', w.bytes()], ['a/data/0', new Uint8Array(4)]]));
    await fails(['inspect', join(dir, 'n.pth')], /the top level holds 1 tensors, but key 'note' holds 3, not a tensor/);
    const data = tmp();
    tinyData(data, 8, (i) => i % 3);
    writeFileSync(join(dir, 'bad.pth'), 'PK\u0003\u0004 not really a zip');
    await fails(['train', '--data', data, '--resume', join(dir, 'bad.pth'), '--out', join(dir, 't.safetensors')], /bad\.pth: zip: no end-of-central-directory record/);
  });
});

function writeConfig(dir: string): string {
  const p = join(dir, 'tiny.json');
  writeFileSync(p, JSON.stringify(TINY));
  return p;
}
