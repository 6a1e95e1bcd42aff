import { type ParsedArgs, required, str } from '../args.js';
import type { Command, Io } from '../command.js';
import { readNpyFile, readCheckpointFile, writeSafetensorsFile } from '../files.js';
import { classifierFromStateDict } from '../../io/state_dict.js';
import { entryOf, type SafeEntry } from '../../io/safetensors.js';
import { fmtShape } from '../../tensor/check.js';

export const backward: Command = {
  spec: {
    name: 'backward',
    summary: 'training-mode forward then backward; writes every parameter gradient and the input gradient',
    usage: 'repvgg backward CKPT --input X.npy --grad-output DY.npy --out GRADS.safetensors\n' +
      '  GRADS holds each parameter\'s gradient under its state-dict key and the input\'s under "input".',
    flags: { threads: 'count', backend: 'string', key: 'string', input: 'string', 'grad-output': 'string', out: 'string' },
    positionals: 1,
    files: [{ arg: 0, label: 'CKPT', role: 'in' }, { arg: 'input', role: 'in' }, { arg: 'grad-output', role: 'in' }, { arg: 'out', role: 'out' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const out = required(a, 'out', 'backward');
    const dyPath = required(a, 'grad-output', 'backward');
    const x = readNpyFile(required(a, 'input', 'backward'));
    const dy = readNpyFile(dyPath, 'grad-output');
    const model = classifierFromStateDict(readCheckpointFile(a.positionals[0], { key: str(a, 'key') }).entries, { dtype: x.dtype, share: true }).train();
    const y = model.forward(x);
    if (dy.shape.length !== y.shape.length || dy.shape.some((d, i) => d !== y.shape[i])) {
      throw new Error(`grad-output '${dyPath}' has shape ${fmtShape(dy.shape)}, expected the output shape ${fmtShape(y.shape)}`);
    }
    const dx = model.backward(dy.to(x.dtype));
    const grads = new Map<string, SafeEntry>();
    for (const [key, p] of model.namedParameters()) grads.set(key, entryOf(p.grad));
    grads.set('input', entryOf(dx));
    writeSafetensorsFile(out, grads);
    io.out(`wrote ${out}: ${grads.size - 1} parameter gradients and the input gradient`);
    return 0;
  },
};
