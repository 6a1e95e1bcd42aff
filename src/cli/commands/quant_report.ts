import type { ParsedArgs } from '../args.js';
import type { Command, Io } from '../command.js';
import { readCheckpointFile } from '../files.js';
import { readCalibration } from '../calibration.js';
import { classifierFromStateDict } from '../../io/state_dict.js';
import { quantReport } from '../../onnx/quant_report.js';

export const quantReportCommand: Command = {
  spec: {
    name: 'quant-report',
    summary: 'why a fused RepVGG or MobileOne loses accuracy in INT8, layer by layer, on a calibration batch',
    usage: 'repvgg quant-report TRAIN --calib X.npy [--calib-count N] [--json]\n' +
      '  TRAIN: a training-time RepVGG or MobileOne checkpoint (its k×k branches are compared with the fused kernel:\n' +
      '  RepVGG\'s 3×3, MobileOne\'s k conv branches). Per block: the fused kernel\'s channel range against the k×k\n' +
      '  branches\' alone, the largest BN scale γ/√(σ²+ε), the\n' +
      '  weights\' int8 SQNR and the share of a channel\'s taps that round to 0, the output\'s uint8 SQNR, and the\n' +
      '  sensitivity: max |Δ logit| / max |logit| with that layer alone quantized. Names the three worst and why.',
    flags: { calib: 'string', 'calib-count': 'count', json: 'boolean', threads: 'count', backend: 'string' },
    positionals: 1,
    files: [{ arg: 0, label: 'TRAIN', role: 'in' }, { arg: 'calib', role: 'in' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const model = classifierFromStateDict(readCheckpointFile(a.positionals[0]).entries, { share: true });
    if (model.deploy) throw new Error(`'${a.positionals[0]}' is a deploy checkpoint; quant-report compares the fused kernel with its 3×3 branch: give the training-time one`);
    const x = readCalibration(a, 'quant-report', model.inChannels);
    const { layers, worst } = quantReport(model.eval(), x);
    if (a.flags.get('json') === true) {
      io.out(JSON.stringify({ layers, worst }, (_k, v) => (v === Infinity ? 'Infinity' : v), 1));
      return 0;
    }
    io.out(`${'layer'.padEnd(22)} ${'range ×3×3'.padStart(10)} ${'BN scale'.padStart(9)} ${'W SQNR'.padStart(7)} ${'3×3 SQNR'.padStart(8)} ${'taps→0'.padStart(7)} ${'act SQNR'.padStart(8)} ${'sensitivity'.padStart(11)}`);
    for (const l of layers) {
      io.out(`${l.layer.padEnd(22)} ${l.rangeRatio.toFixed(2).padStart(10)} ${l.bnScale.toFixed(2).padStart(9)} ${l.weightSqnr.toFixed(1).padStart(7)} ${l.denseSqnr.toFixed(1).padStart(8)} ${`${(100 * l.zeroedTaps).toFixed(0)}%`.padStart(7)} ${l.activationSqnr.toFixed(1).padStart(8)} ${l.sensitivity.toExponential(2).padStart(11)}`);
    }
    io.out('worst:');
    for (const w of worst) io.out(`  ${w}: ${layers.find((l) => l.layer === w)!.reason}`);
    return 0;
  },
};
