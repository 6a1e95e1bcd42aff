import { getThreads, startWorkers } from '../../backend/threads.js';
import { getBackend, getFusedMultiplyAdd } from '../../backend/backend.js';
import { type ParsedArgs, oneOf, required, str } from '../args.js';
import { type Command, type Io, classifierForwardBytes, refuseLargeForward } from '../command.js';
import { readBytes, readNpyFile, readCheckpointFile, writeFileAtomic, writeNpyFile } from '../files.js';
import { classifierFromStateDict } from '../../io/state_dict.js';
import type { ConvAlgorithm } from '../../ops/conv2d.js';
import type { AlgorithmPlanEntry } from '../../nn/conv_algorithm.js';

export const forward: Command = {
  spec: {
    name: 'forward',
    summary: 'run a RepVGG or MobileOne checkpoint (training-time or deploy, recognised by its keys) on an input batch',
    usage: 'repvgg forward CKPT --input X.npy --out Y.npy [--mode eval|train] [--algorithm auto|direct|im2col|winograd]\n' +
      '  CKPT: safetensors or torch.save .pth: a RepVGG (official, timm or MMPretrain names) or a MobileOne (apple\'s or\n' +
      '  timm\'s names); --key picks the state dict in a wrapper.\n' +
      '  X is (N, C, H, W) float32 or float64; the model runs in the input\'s precision.\n' +
      '  --mode train uses batch statistics, as PyTorch\'s model.train() does.\n' +
      '  --algorithm winograd runs the 3×3 stride-1 convs with Winograd F(4×4,3×3) and the rest with im2col.\n' +
      '  --verbose prints the time of each phase (read, build, forward, write) and the algorithm each conv ran\n' +
      '  (\'auto\' resolved); --save-plan FILE.json writes the algorithms, and\n' +
      '  --plan FILE.json pins every conv to it, so that no timing decides the numerics of a run.',
    flags: { threads: 'count', backend: 'string', key: 'string', input: 'string', out: 'string', mode: 'string', algorithm: 'string', plan: 'string', 'save-plan': 'string', verbose: 'boolean' },
    positionals: 1,
    files: [{ arg: 0, label: 'CKPT', role: 'in' }, { arg: 'input', role: 'in' }, { arg: 'plan', role: 'in' }, { arg: 'out', role: 'out' }, { arg: 'save-plan', role: 'out' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const mode = oneOf(str(a, 'mode', 'eval'), ['eval', 'train'] as const, '--mode');
    const algorithm = oneOf(str(a, 'algorithm', 'auto'), ['auto', 'direct', 'im2col', 'winograd'] as const, '--algorithm') as ConvAlgorithm;
    const out = required(a, 'out', 'forward');
    const t0 = performance.now();
    startWorkers(); // they start while the files are read
    const x = readNpyFile(required(a, 'input', 'forward'), 'input', getThreads() > 1); // shared: the workers read it in place
    const ck = readCheckpointFile(a.positionals[0], { key: str(a, 'key') }).entries;
    const t1 = performance.now();
    const model = classifierFromStateDict(ck, { dtype: x.dtype, share: true }).setAlgorithm(algorithm);
    if (x.shape.length === 4) refuseLargeForward(classifierForwardBytes(model, x.shape[0], x.shape[2], x.shape[3]), `the input ${x.shape.join('×')}`);
    const planFile = str(a, 'plan');
    if (planFile !== undefined) {
      let pinned: AlgorithmPlanEntry[];
      try {
        pinned = JSON.parse(new TextDecoder().decode(readBytes(planFile, 'plan')));
      } catch (e) {
        throw new Error(`plan '${planFile}' is not valid JSON: ${(e as Error).message}`);
      }
      model.setAlgorithmPlan(pinned);
    }
    const savePlan = str(a, 'save-plan');
    model.train(mode === 'train');
    const t2 = performance.now();
    const y = model.forward(x);
    const t3 = performance.now();
    writeNpyFile(out, y);
    const t4 = performance.now();
    const used = model.algorithmPlan();
    const ms = (t: number) => `${t.toFixed(0)} ms`;
    if (a.flags.get('verbose') === true) io.err(`phases: read ${ms(t1 - t0)} (checkpoint and input), build ${ms(t2 - t1)} (model from the state dict, every value checked), forward ${ms(t3 - t2)} (a first forward: each conv packs its filters in its GEMM, and memory is touched for the first time), write ${ms(t4 - t3)}`);
    if (a.flags.get('verbose') === true) io.err(`threads: ${getThreads()}, kernels: ${getBackend()}${getBackend() === 'wasm' ? (getFusedMultiplyAdd() ? ' (SIMD, fused multiply-add)' : ' (SIMD, multiply then add)') : ''}`);
    if (a.flags.get('verbose') === true) for (const e of used) io.err(`${e.layer.padEnd(24)} ${e.algorithm}${e.algorithm === 'winograd' ? ` F(${e.winogradTile}×${e.winogradTile},3×3)` : ''}`);
    if (savePlan !== undefined) writeFileAtomic(savePlan, new TextEncoder().encode(JSON.stringify(used, null, 1) + '\n'));
    io.out(`wrote ${out}: shape [${y.shape.join(', ')}] ${y.dtype} (${model.deploy ? 'deploy' : 'training-time'} model, ${mode} mode)`);
    return 0;
  },
};
