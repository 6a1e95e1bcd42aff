import { type ParsedArgs, num, oneOf, required, str } from '../args.js';
import type { Command, Io } from '../command.js';
import { readCheckpointFile, readOnnxFile, writeFileAtomic } from '../files.js';
import { readCalibration } from '../calibration.js';
import { readOnnx } from '../../io/onnx_read.js';
import { onnxProtoOf, toOnnx } from '../../io/onnx.js';
import { classifierFromStateDict } from '../../io/state_dict.js';
import { quantizeOnnx } from '../../onnx/quantize.js';
import { showText } from '../../tensor/untrusted.js';

export const quantize: Command = {
  spec: {
    name: 'quantize',
    summary: 'post-training INT8 quantization of a deploy model into a QDQ ONNX file, calibrated on a batch',
    usage: 'repvgg quantize DEPLOY --calib X.npy|DATA --out Q.onnx [--per-tensor] [--method minmax|percentile|mse] [--percentile 99.99]\n' +
      '                 [--activations uint8|int8] [--bits 8] [--keep-first-float] [--keep-last-float] [--calib-count N] [--qoperator]\n' +
      '  DEPLOY: an ONNX graph (e.g. from fuse-onnx) or a deploy RepVGG checkpoint. Every Conv gets int8 weights\n' +
      '  (symmetric, per output channel unless --per-tensor), an int32 bias and uint8 (or int8) input and output\n' +
      '  tensors whose ranges come from running X (N, C, H, W; the first --calib-count images) through the float\n' +
      '  graph: min-max, each tail\'s --percentile, or mse (the clipping with the least quantization error). A graph\n' +
      '  exported with a fixed batch B runs them B at a time (their count a multiple of B). A 1-D graph takes (N, C, L).\n' +
      '  DATA: an IDX folder (as train takes): its first 256 training images (--calib-count), normalized as in training.\n' +
      '  A Relu after a Conv is folded into its output\'s zero point. The classifier (a Gemm) becomes a MatMul on\n' +
      '  int8 weights per tensor, its bias added in float (--keep-last-float: left float, as --keep-first-float the\n' +
      '  first conv); other ops stay float. The file runs in `repvgg run` as exact integers, bit for bit with onnxruntime.\n' +
      '  --qoperator writes each quantized conv as a QLinearConv on integer tensors instead of the QDQ form.\n' +
      '  --bits 2…8: narrower grids in the same containers (weights ±(2^(b−1) − 1), activations 2^b codes).',
    flags: { calib: 'string', out: 'string', 'per-tensor': 'boolean', method: 'string', percentile: 'positive', activations: 'string', 'keep-first-float': 'boolean', 'keep-last-float': 'boolean', 'calib-count': 'count', qoperator: 'boolean', bits: 'count', threads: 'count', backend: 'string' },
    positionals: 1,
    files: [{ arg: 0, label: 'DEPLOY', role: 'in' }, { arg: 'calib', role: 'in-dir' }, { arg: 'out', role: 'out' }],
  },
  async run(a: ParsedArgs, io: Io): Promise<number> {
    const src = a.positionals[0], out = required(a, 'out', 'quantize');
    if (!/\.onnx$/i.test(out)) throw new Error(`--out '${out}': name the output .onnx`);
    const method = oneOf(str(a, 'method', 'minmax'), ['minmax', 'percentile', 'mse'] as const, '--method') as 'minmax' | 'percentile' | 'mse';
    const activations = oneOf(str(a, 'activations', 'uint8'), ['uint8', 'int8'] as const, '--activations') as 'uint8' | 'int8';
    const percentile = num(a, 'percentile', 99.99);
    if (a.flags.has('percentile') && method !== 'percentile') throw new Error('--percentile goes with --method percentile');
    if (!(percentile > 50 && percentile <= 100)) throw new Error(`--percentile must be in (50, 100], got ${percentile}`);
    const bits = num(a, 'bits', 8);
    if (bits < 2 || bits > 8) throw new Error(`--bits must be from 2 to 8 (int8/uint8 containers), got ${bits}`);
    let model;
    if (/\.onnx$/i.test(src)) model = readOnnxFile(src);
    else {
      const net = classifierFromStateDict(readCheckpointFile(src).entries, { share: true });
      if (!net.deploy) throw new Error(`'${src}' is a training-time checkpoint; quantize the deploy model (repvgg convert first)`);
      model = readOnnx(toOnnx(net.eval()));
    }
    const x = await readCalibration(a, 'quantize', undefined, model.inputs[0]?.dims?.length === 3 ? 3 : 4);
    const { model: q, layers } = quantizeOnnx(model, x, { perChannel: a.flags.get('per-tensor') !== true, activations, method, percentile, keepFirstFloat: a.flags.get('keep-first-float') === true, keepLastFloat: a.flags.get('keep-last-float') === true, form: a.flags.get('qoperator') === true ? 'qoperator' : 'qdq', bits });
    writeFileAtomic(out, onnxProtoOf(q, 'repvgg-ts quantize').chunks());
    io.out(`${'conv'.padEnd(28)} ${'input s, zp'.padEnd(18)} ${'output range'.padEnd(20)} ${'output s, zp'.padEnd(18)} weight scales`);
    for (const l of layers) {
      const ws = `${Math.min(...l.weightScales).toExponential(2)}…${Math.max(...l.weightScales).toExponential(2)}`;
      io.out(`${showText(l.conv, 28).padEnd(28)} ${`${l.input.scale.toExponential(3)}, ${l.input.zeroPoint}`.padEnd(18)} ${`[${l.output.range[0].toPrecision(3)}, ${l.output.range[1].toPrecision(3)}]`.padEnd(20)} ${`${l.output.scale.toExponential(3)}, ${l.output.zeroPoint}`.padEnd(18)} ${ws}${l.reluFolded ? '  (Relu folded)' : ''}`);
    }
    io.out(`wrote ${out}: ${layers.length} layer(s) quantized (${a.flags.get('per-tensor') === true ? 'per tensor' : 'per channel'} int8 weights, ${activations} activations${bits < 8 ? ` on ${bits}-bit grids` : ''}, ${method}${method === 'percentile' ? ` ${percentile}` : ''} on ${x.shape[0]} image(s)${a.flags.get('qoperator') === true ? ', QOperator form' : ', QDQ form'}); other ops in float`);
    return 0;
  },
};
