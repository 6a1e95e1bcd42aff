import { type ParsedArgs, num, str } from '../args.js';
import type { Command, Io } from '../command.js';
import { readCheckpointFile, writeFileAtomic } from '../files.js';
import { classifierFromStateDict } from '../../io/state_dict.js';
import { DEFAULT_OPSET, onnxModelProto } from '../../io/onnx.js';

export const exportOnnx: Command = {
  spec: {
    name: 'export',
    summary: 'write a checkpoint as an ONNX model (deploy: Conv+Relu chain; training-time: the unfused eval graph)',
    usage: `repvgg export CKPT OUT.onnx [--opset ${DEFAULT_OPSET}] [--key NAME]\n` +
      '  Input "input" (N, C, H, W), output "logits" (N, classes); N, H and W are symbolic. Float64 checkpoints export\n' +
      '  as float64 (ONNX DOUBLE), the rest as float32. Initializers keep the state-dict names.',
    flags: { opset: 'count', key: 'string' },
    positionals: 2,
    files: [{ arg: 0, label: 'CKPT', role: 'in' }, { arg: 1, label: 'OUT', role: 'out' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const [src, dst] = a.positionals;
    if (!/\.onnx$/i.test(dst)) throw new Error(`OUT '${dst}': name the output .onnx`);
    // one-shot: the model takes the parsed arrays (views into the file) and the ONNX streams to disk,
    // so no second or third copy of the weights is made
    const model = classifierFromStateDict(readCheckpointFile(src, { key: str(a, 'key') }).entries, { share: true }).eval();
    const opset = num(a, 'opset', DEFAULT_OPSET);
    const proto = onnxModelProto(model, { opset });
    writeFileAtomic(dst, proto.chunks());
    io.out(`wrote ${dst}: ${model.deploy ? 'deploy' : 'training-time (eval)'} graph, opset ${opset}, ${model.dtype}, ${(proto.size() / 2 ** 20).toFixed(2)} MiB`);
    return 0;
  },
};
