// npm run bench:torch — the engine beside PyTorch CPU (Debian's python3-torch, when /usr/bin/python3
// has it) on the same models, weights and inputs, in one run, taking turns (below), on 1 and 2
// threads: RepVGG-A0 deploy at 224 (batch 1), a training step of the demo model (28×28, batch 32)
// and of RepVGG-A0 (64×64, batch 8), with SGD (momentum 0.9, weight decay 1e-4) on both sides.
// Ours runs 'auto' past AUTO_AFTER calls (its steady state), and a training step on two threads as
// `repvgg train` does (fit: see asFit below). Each case takes turns: ours, PyTorch, onnxruntime-node,
// ROUNDS times (5 by default, ~0.8 s each), and each one's figure is the median of its rounds' medians:
// one after the other, a phase of the machine that moved one side's time by 1.5× moved the ratio with
// it. Prints those medians and ours/PyTorch speed.
// The deploy case also runs in onnxruntime-node (native, MLAS), on the model's ONNX export, where it
// was installed by hand (ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node; never a
// dependency), in a process of its own (bench/ort_peer.ts).
//
// PyTorch runs twice per case. The ratio is against the run where glibc's malloc keeps freed memory
// (MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ raised, as PyTorch's CPU tuning guides advise
// with jemalloc or tcmalloc): by default every tensor over 128 KiB is a fresh mmap, and on this VM a
// first-touched page costs ~11 µs, so the demo step ran at ~8 or ~18 ms from one process to the
// next, depending on where glibc's adaptive threshold settled. Ours allocates nothing per step.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RepVGG } from '../src/nn/repvgg.js';
import { type RepVGGConfig, zooConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { stateDict } from '../src/io/state_dict.js';
import { entryOf, serializeSafetensors } from '../src/io/safetensors.js';
import { toOnnx } from '../src/io/onnx.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { AUTO_AFTER } from '../src/ops/conv2d.js';
import { setThreads } from '../src/backend/threads.js';
import { getFusedMultiplyAdd, setFusedMultiplyAdd } from '../src/backend/backend.js';
import { touchAhead } from '../src/backend/wasm/winograd_drivers.js';
import { alternate, benchDir, fitStep, median, medians, table } from './harness.js';

const PY = '/usr/bin/python3';
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const peer = fileURLToPath(new URL('../../bench/torch_peer.py', import.meta.url));
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const hasOrt = (() => {
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
    return true;
  } catch {
    return false;
  }
})();
const ortPeer = fileURLToPath(new URL('./ort_peer.js', import.meta.url));
if (!hasTorch) console.log('PyTorch is not installed for /usr/bin/python3 (apt-get install python3-torch)');
if (!hasOrt) console.log('onnxruntime-node is not installed (ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node)');
if (!hasTorch && !hasOrt) process.exit(0);
const dir = benchDir('torch');
const DEMO: RepVGGConfig = { num_blocks: [1, 2, 2, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 10, in_channels: 1 };
// (ours runs the kernels `repvgg` runs, fused where the CPU fuses: see harness.ts; where they fuse,
// the deploy case runs again pinned to multiply then add, as the library runs on Node 20)
const FUSED = getFusedMultiplyAdd();
const CASES: { name: string; kind: 'deploy' | 'train-step'; config: RepVGGConfig; shape: number[]; unfused?: true }[] = [
  { name: 'A0 deploy @224, batch 1', kind: 'deploy', config: { ...zooConfig('A0') }, shape: [1, 3, 224, 224] },
  ...(FUSED ? [{ name: 'A0 deploy @224, batch 1, multiply then add', kind: 'deploy' as const, config: { ...zooConfig('A0') }, shape: [1, 3, 224, 224], unfused: true as const }] : []),
  { name: 'demo training step @28, batch 32', kind: 'train-step', config: DEMO, shape: [32, 1, 28, 28] },
  { name: 'A0 training step @64, batch 8', kind: 'train-step', config: { ...zooConfig('A0'), num_classes: 10 }, shape: [8, 3, 64, 64] },
];

/** glibc's malloc keeping what it frees (see the head of this file) */
const KEEP_MEMORY = { MALLOC_MMAP_THRESHOLD_: String(1 << 30), MALLOC_TRIM_THRESHOLD_: String(2 ** 32 - 1) };

function peerMedian(cmd: string, script: string, caseFile: string, env: NodeJS.ProcessEnv): { medianMs: number; torch?: string; ort?: string } {
  const r = spawnSync(cmd, [script, caseFile], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr.slice(-500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { medianMs: number; torch?: string; ort?: string };
}
const ratio = (theirs: number, ours: number) => `${(theirs / ours).toFixed(2)}×`;

const rows: (string | number)[][] = [];
for (const c of CASES) {
  // a model per thread count, built with it set, as a user's would be: built on one thread its arrays
  // are plain memory, with more they are shared (the workers read them in place), and a copy into
  // or out of kernel memory from shared memory runs ~3.6× slower (a model built on two threads and
  // run on one made the demo's one-thread step 1.18–1.31× slower). The same weights for every count.
  // (training as `repvgg train` and the demo train: every conv pinned to im2col)
  const build = () => {
    const train = RepVGG.fromConfig(c.config, { seed: 1 });
    return c.kind === 'deploy' ? convert(train.eval()) : train.setAlgorithm('im2col').train();
  };
  const model0 = build();
  const x = uniform(c.shape, new Rng(2), -1, 1);
  const weights = join(dir, `${rows.length}.safetensors`), input = join(dir, `${rows.length}_x.safetensors`);
  writeFileSync(weights, serializeSafetensors(stateDict(model0)));
  writeFileSync(input, serializeSafetensors(new Map([['x', entryOf(x)]])));
  const onnx = join(dir, `${rows.length}.onnx`), raw = join(dir, `${rows.length}_x.f32`);
  if (c.kind === 'deploy' && hasOrt) {
    writeFileSync(onnx, toOnnx(model0));
    writeFileSync(raw, new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength));
  }
  const labels = Array.from({ length: c.shape[0] }, (_, i) => i % (c.config.num_classes ?? 1000));
  setFusedMultiplyAdd(FUSED && c.unfused !== true);
  for (const threads of [1, 2]) {
    setThreads(threads);
    const model = build();
    // a training step as `repvgg train` runs it (fit's TrainingSteps: on two threads, by halves of
    // the batch where no kernel splits, as the demo's)
    const run = c.kind === 'deploy' ? () => { model.forward(x); } : fitStep(model, x, labels); // (fitStep warms itself)
    if (c.kind === 'deploy') for (let i = 0; i <= AUTO_AFTER + 1; i++) run(); // 'auto' past its untimed calls
    const caseFile = join(dir, 'case.json'), ortFile = join(dir, 'ort.json');
    const seconds = 4 / ROUNDS;
    writeFileSync(caseFile, JSON.stringify({ kind: c.kind, config: { num_classes: 1000, in_channels: 3, ...c.config }, weights, input, onnx, shape: c.shape, threads, seconds }));
    writeFileSync(ortFile, JSON.stringify({ onnx, input: raw, shape: c.shape, threads, seconds }));
    const withOrt = hasOrt && c.kind === 'deploy';
    const ours: number[] = [], theirs: number[] = [], ort: number[] = [];
    let torchVersion = '', ortVersion = '';
    for (let r = 0; r < ROUNDS; r++) {
      const [t] = await medians([[c.name, run]], { time: 4000 / ROUNDS, iterations: 5 });
      ours.push(t.medianMs);
      if (hasTorch) {
        const p = peerMedian(PY, peer, caseFile, { ...process.env, ...KEEP_MEMORY });
        theirs.push(p.medianMs);
        torchVersion = p.torch ?? '';
      }
      if (withOrt) {
        const o = peerMedian(process.execPath, ortPeer, ortFile, process.env);
        ort.push(o.medianMs);
        ortVersion = o.ort ?? '';
      }
    }
    const row: (string | number)[] = [c.name, String(threads), median(ours)];
    let said = `${c.name}, ${threads} thread(s): ours ${median(ours).toFixed(1)} ms (rounds ${ours.map((v) => v.toFixed(1)).join(', ')}${c.kind === 'deploy' ? `; this thread's Winograd loops touch ahead: ${String(touchAhead() ?? 'still on trial')}` : ''})`;
    if (hasTorch) {
      const byDefault = peerMedian(PY, peer, caseFile, process.env); // once: it is not what the ratio is against
      row.push(median(theirs), byDefault.medianMs, ratio(median(theirs), median(ours)));
      said += `, PyTorch ${torchVersion} ${median(theirs).toFixed(1)} ms (rounds ${theirs.map((v) => v.toFixed(1)).join(', ')}; default malloc ${byDefault.medianMs.toFixed(1)} ms)`;
    } else row.push('—', '—', '—');
    if (withOrt) {
      row.push(median(ort), ratio(median(ort), median(ours)));
      said += `, onnxruntime-node ${ortVersion} ${median(ort).toFixed(1)} ms (rounds ${ort.map((v) => v.toFixed(1)).join(', ')})`;
    } else row.push('—', '—');
    rows.push(row);
    console.error(said);
  }
}
console.log(`ours: wasm, ${FUSED ? 'fused multiply-add (relaxed SIMD)' : 'multiply then add'}, unless the case says`);
console.log(table(rows, ['case', 'threads', 'ours ms', 'PyTorch ms', 'PyTorch ms, default malloc', 'ours speed / PyTorch', 'onnxruntime-node ms', 'ours speed / onnxruntime-node']));

// Ours on two threads against one, each training case's steps taking turns in this process (the
// table's rows run minutes apart, and the machine's phase moves them by up to 1.5×): a model per
// thread count, the two-thread one run as fit runs it.
setFusedMultiplyAdd(FUSED);
const pairs: (string | number)[][] = [];
for (const c of CASES.filter((k) => k.kind === 'train-step')) {
  const x = uniform(c.shape, new Rng(2), -1, 1);
  const labels = Array.from({ length: c.shape[0] }, (_, i) => i % (c.config.num_classes ?? 1000));
  // two threads as fit runs them (its trial's choice), and each of its two ways pinned
  const stepOf = (halves?: boolean) => fitStep(RepVGG.fromConfig(c.config, { seed: 1 }).setAlgorithm('im2col').train(), x, labels, halves);
  setThreads(1);
  const one = stepOf();
  setThreads(2);
  const twos = [stepOf(), stepOf(true), stepOf(false)];
  const steps = c.shape[0] >= 32 ? 20 : 2; // a turn of ~0.1–0.4 s
  const turn = (threads: number, f: () => void) => () => { setThreads(threads); for (let i = 0; i < steps; i++) f(); };
  const t = await alternate([['one', turn(1, one)], ['two', turn(2, twos[0])], ['halves', turn(2, twos[1])], ['other', turn(2, twos[2])]], 16000, 8);
  pairs.push([c.name, t.one / steps, t.two / steps, `${(t.one / t.two).toFixed(2)}×`, t.halves / steps, t.other / steps]);
}
console.log('\nours on two threads against one, steps taking turns in one process (medians; two threads as fit runs them, and each of its two ways):');
console.log(table(pairs, ['case', 'one thread ms', 'two threads ms', 'two / one speed', 'by halves ms', 'this thread + dW ms']));
