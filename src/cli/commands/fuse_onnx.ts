import { type ParsedArgs, num } from '../args.js';
import type { Command, Io } from '../command.js';
import { readOnnxFile, writeFileAtomic } from '../files.js';
import { onnxProtoOf } from '../../io/onnx.js';
import { fuseOnnx } from '../../onnx/fuse.js';
import { compareProbes, probeRun } from '../../onnx/check.js';
import { showText } from '../../tensor/untrusted.js';
import { progressBar } from '../progress.js';

export const fuseOnnxCommand: Command = {
  spec: {
    name: 'fuse-onnx',
    summary: 'structural re-parameterization of any ONNX graph: parallel linear branches that meet in Add or Sum become one Conv',
    usage: 'repvgg fuse-onnx IN.onnx OUT.onnx [--probe-size 32] [--seed 0] [--json]\n' +
      '  Finds every set of branches that read one tensor and meet in Add or Sum with nothing nonlinear between them\n' +
      '  (Conv, BatchNormalization, Identity, AveragePool, Mul by a constant scalar or per-channel vector, a\n' +
      '  Pad/ScatterND border such as DBB\'s BNAndPad exports to, the tensor itself), a BatchNormalization right\n' +
      '  after such a sum, and single chains (Conv → BN, BN → Conv where the border allows, Conv → Mul), and\n' +
      '  fuses each into one Conv with the same fuser as `repvgg convert`.\n' +
      '  Everything else (SiLU, SE, heads, residual adds across a ReLU) is kept as it was, with its names.\n' +
      '  Both graphs then run in float64 on a random probe batch (symbolic sizes: batch 2, others --probe-size);\n' +
      '  if they differ by more than the error model allows, nothing is written.',
    flags: { 'probe-size': 'count', seed: 'seed', json: 'boolean', threads: 'count', backend: 'string' },
    positionals: 2,
    files: [{ arg: 0, label: 'IN', role: 'in' }, { arg: 1, label: 'OUT', role: 'out' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const [src, dst] = a.positionals;
    if (!/\.onnx$/i.test(dst)) throw new Error(`OUT '${dst}': name the output .onnx`);
    const t0 = performance.now();
    const model = readOnnxFile(src);
    const probe = { size: num(a, 'probe-size', 32), seed: num(a, 'seed', 0) };
    const nodesBefore = model.nodes.length;
    // the original runs on the probe first: fusing then writes each fused kernel over the 3×3 weight it
    // replaces (reuseStorage), so a large graph never holds its old and new kernels at once
    const before = probeRun(model, { ...probe, progress: (i, n) => io.progress(progressBar('probe, original graph', (i + 1) / n, `node ${i + 1}/${n}`)) });
    const result = fuseOnnx(model, { reuseStorage: true, progress: (f) => io.progress(progressBar('fusing', f, 'of the graph searched')) });
    const after = probeRun(result.model, { ...probe, progress: (i, n) => io.progress(progressBar('probe, fused graph', (i + 1) / n, `node ${i + 1}/${n}`)) });
    const check = compareProbes(before, after, result);
    io.progress('');
    if (!(check.maxAbsDiff <= check.bound)) {
      throw new Error(`the fused graph differs from the original by ${check.maxAbsDiff.toExponential(3)} on the probe (bound ${check.bound.toExponential(3)}); nothing written`);
    }
    const proto = onnxProtoOf(result.model, 'repvgg-ts fuse-onnx');
    writeFileAtomic(dst, proto.chunks());
    const seconds = (performance.now() - t0) / 1000;
    const summary = {
      fused: result.fused, skipped: result.skipped, nodes: [nodesBefore, result.model.nodes.length],
      macs: [check.macsBefore, check.macsAfter], probe: check.probeShape, maxAbsDiff: check.maxAbsDiff, bound: check.bound, seconds,
    };
    if (a.flags.get('json') === true) {
      io.out(JSON.stringify(summary));
      return 0;
    }
    for (const f of result.fused) io.out(`fused   ${showText(f.at, 48).padEnd(48)} ${f.pattern}`);
    for (const s of result.skipped) io.out(`kept    ${showText(s.at, 48).padEnd(48)} ${showText(s.why, 400)}`);
    io.out(`${result.fused.length} pattern(s) fused: ${nodesBefore} → ${result.model.nodes.length} nodes, ${(check.macsBefore / 1e6).toFixed(2)} → ${(check.macsAfter / 1e6).toFixed(2)} M multiply-adds on a [${check.probeShape.join(', ')}] probe`);
    io.out(`max |Δ| on the probe (float64) ${check.maxAbsDiff.toExponential(3)} (bound ${check.bound.toExponential(3)}, max |y| ${check.maxAbsOutput.toExponential(3)}); wrote ${dst} in ${seconds.toFixed(2)} s`);
    return 0;
  },
};
