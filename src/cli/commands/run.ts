import { type ParsedArgs, oneOf, required, str } from '../args.js';
import type { Command, Io } from '../command.js';
import { readNpyFile, readOnnxFile, writeNpyFile } from '../files.js';
import { runOnnx, unsupportedNodes } from '../../onnx/run.js';
import { Tensor } from '../../tensor/tensor.js';
import type { ConvAlgorithm } from '../../ops/conv2d.js';
import { showText } from '../../tensor/untrusted.js';
import { progressBar } from '../progress.js';

export const run: Command = {
  spec: {
    name: 'run',
    summary: 'run any ONNX graph of the CNN op set on an input (.npy): the reference outputs for a backend',
    usage: 'repvgg run MODEL.onnx --input X.npy --out Y.npy [--output NAME] [--float64] [--algorithm auto|direct|im2col|winograd] [--qdq integer|float] [--verbose]\n' +
      '  X feeds the graph\'s one input; --output picks an output by name (default: the first). float32 runs on the\n' +
      '  fast kernels; --float64 runs the reference mode (every float initializer and X widened exactly).\n' +
      '  Ops it does not run are listed up front, with their node names; nothing is run then.\n' +
      '  External data (models over 2 GiB) is read from files inside the model\'s folder only.\n' +
      '  INT8: quantized ops run as exact integers (onnxruntime\'s rounding where ONNX leaves a choice); a QDQ\n' +
      '  DequantizeLinear → Conv/MatMul → QuantizeLinear runs as QLinearConv/QLinearMatMul as onnxruntime runs it\n' +
      '  (--qdq integer, the default) or as the float graph it is written as (--qdq float).',
    flags: { threads: 'count', backend: 'string', input: 'string', out: 'string', output: 'string', float64: 'boolean', algorithm: 'string', qdq: 'string', verbose: 'boolean' },
    positionals: 1,
    files: [{ arg: 0, label: 'MODEL', role: 'in' }, { arg: 'input', role: 'in' }, { arg: 'out', role: 'out' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const out = required(a, 'out', 'run');
    const algorithm = oneOf(str(a, 'algorithm', 'auto'), ['auto', 'direct', 'im2col', 'winograd'] as const, '--algorithm') as ConvAlgorithm;
    const dtype = a.flags.get('float64') === true ? 'float64' : 'float32';
    const qdq = oneOf(str(a, 'qdq', 'integer'), ['integer', 'float'] as const, '--qdq') as 'integer' | 'float';
    const t0 = performance.now();
    const model = readOnnxFile(a.positionals[0]);
    const bad = unsupportedNodes(model);
    if (bad.length > 0) {
      const ops = [...new Set(bad.map((n) => n.opType))];
      throw new Error(`'${a.positionals[0]}' uses ${ops.length} op type(s) this evaluator does not run: ${ops.slice(0, 8).map((o) => showText(o, 40)).join(', ')} (${bad.length} node(s), first '${showText(bad[0].name, 60)}'); nothing was run`);
    }
    if (model.inputs.length !== 1) throw new Error(`the graph has ${model.inputs.length} inputs (${model.inputs.map((v) => `'${showText(v.name)}'`).join(', ')}); run feeds graphs with one input`);
    const name = str(a, 'output', model.outputs[0]?.name ?? '');
    if (!model.outputs.some((o) => o.name === name)) throw new Error(`--output '${name}' is not an output of the graph (outputs: ${model.outputs.map((o) => `'${showText(o.name)}'`).join(', ')})`);
    const x = readNpyFile(required(a, 'input', 'run'));
    const t1 = performance.now();
    const ys = runOnnx(model, [x.to(dtype)], {
      dtype, algorithm, qdq,
      onNode: (i, n) => io.progress(progressBar('run', (i + 1) / n, `node ${i + 1}/${n}`)),
    });
    io.progress('');
    const y = ys.get(name)!;
    writeNpyFile(out, new Tensor(y.data, y.shape));
    if (a.flags.get('verbose') === true) io.err(`read ${((t1 - t0) / 1000).toFixed(3)} s, compute ${((performance.now() - t1) / 1000).toFixed(3)} s; ${model.nodes.length} nodes, opset ${model.opset}`);
    io.out(`wrote ${out}: '${showText(name)}' shape [${y.shape.join(', ')}] ${y.dtype === dtype ? dtype : `${y.dtype} values as float64`} (${model.nodes.length} nodes, opset ${model.opset})`);
    return 0;
  },
};
