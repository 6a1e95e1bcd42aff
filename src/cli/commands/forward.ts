import { type ParsedArgs, oneOf, required, str } from '../args.js';
import { type Command, type Io, refuseLargeForward } from '../command.js';
import { forwardBytes } from '../../nn/config.js';
import { checkOutputs, readNpyFile, readCheckpointFile, writeNpyFile } from '../files.js';
import { modelFromStateDict, planFromStateDict } from '../../io/state_dict.js';
import type { ConvAlgorithm } from '../../ops/conv2d.js';

export const forward: Command = {
  spec: {
    name: 'forward',
    summary: 'run a checkpoint (training-time or deploy, recognised by its keys) on an input batch',
    usage: 'repvgg forward CKPT --input X.npy --out Y.npy [--mode eval|train] [--algorithm auto|direct|im2col|winograd]\n' +
      '  CKPT: safetensors or torch.save .pth (official, timm or MMPretrain names; --key picks the state dict in a wrapper).\n' +
      '  X is (N, C, H, W) float32 or float64; the model runs in the input\'s precision.\n' +
      '  --mode train uses batch statistics, as PyTorch\'s model.train() does.\n' +
      '  --algorithm winograd runs the 3×3 stride-1 convs with Winograd F(4×4,3×3) and the rest with im2col.',
    flags: { key: 'string', input: 'string', out: 'string', mode: 'string', algorithm: 'string' },
    positionals: 1,
  },
  run(a: ParsedArgs, io: Io): number {
    const mode = oneOf(str(a, 'mode', 'eval'), ['eval', 'train'] as const, '--mode');
    const algorithm = oneOf(str(a, 'algorithm', 'auto'), ['auto', 'direct', 'im2col', 'winograd'] as const, '--algorithm') as ConvAlgorithm;
    const out = required(a, 'out', 'forward');
    checkOutputs([['--out', out]], [['CKPT', a.positionals[0]], ['--input', required(a, 'input', 'forward')]]);
    const x = readNpyFile(required(a, 'input', 'forward'));
    const ck = readCheckpointFile(a.positionals[0], { key: str(a, 'key') }).entries;
    const { plan } = planFromStateDict(ck);
    if (x.shape.length === 4) refuseLargeForward(forwardBytes(plan, x.shape[0], x.shape[2], x.shape[3], x.dtype === 'float64' ? 8 : 4), `the input ${x.shape.join('×')}`);
    const model = modelFromStateDict(ck, { dtype: x.dtype }).setAlgorithm(algorithm);
    model.train(mode === 'train');
    const y = model.forward(x);
    writeNpyFile(out, y);
    io.out(`wrote ${out}: shape [${y.shape.join(', ')}] ${y.dtype} (${model.deploy ? 'deploy' : 'training-time'} model, ${mode} mode)`);
    return 0;
  },
};
