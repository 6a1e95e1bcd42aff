import { type ParsedArgs, str } from '../args.js';
import type { Command, Io } from '../command.js';
import { readCalibration } from '../calibration.js';
import { classifierFromStateDict } from '../../io/state_dict.js';
import { type LayerQuantReport, quantReport } from '../../onnx/quant_report.js';
import { type Series, lineChart, svgDocument } from '../svg.js';
import { readCheckpointFile, writeFileAtomic } from '../files.js';

export const quantReportCommand: Command = {
  spec: {
    name: 'quant-report',
    summary: 'why a fused RepVGG or MobileOne loses accuracy in INT8, layer by layer, on a calibration batch',
    usage: 'repvgg quant-report CKPT --calib X.npy|DATA [--calib-count N] [--json] [--svg FILE.svg]\n' +
      '  CKPT: a RepVGG or MobileOne checkpoint. Per block: the fused kernel\'s channel range against its k×k branches\'\n' +
      '  alone (RepVGG\'s 3×3, MobileOne\'s k conv branches; a training-time checkpoint only, – for a deploy one), the\n' +
      '  largest BN scale γ/√(σ²+ε) (the same), the weights\' int8 SQNR and the share of a channel\'s taps that round\n' +
      '  to 0, the output\'s uint8 SQNR, and the\n' +
      '  sensitivity: max |Δ logit| / max |logit| with that layer alone quantized. Names the three worst and why.\n' +
      '  --svg: the same per layer, drawn: weight SQNR fused and k×k alone, output SQNR; range ratio and sensitivity.',
    flags: { calib: 'string', 'calib-count': 'count', json: 'boolean', svg: 'string', threads: 'count', backend: 'string' },
    positionals: 1,
    files: [{ arg: 0, label: 'CKPT', role: 'in' }, { arg: 'calib', role: 'in-dir' }, { arg: 'svg', role: 'out' }],
  },
  async run(a: ParsedArgs, io: Io): Promise<number> {
    const model = classifierFromStateDict(readCheckpointFile(a.positionals[0]).entries, { share: true });
    const x = await readCalibration(a, 'quant-report', model.inChannels);
    const { layers, worst } = quantReport(model.eval(), x);
    const svg = str(a, 'svg');
    if (svg !== undefined) writeFileAtomic(svg, new TextEncoder().encode(reportSvg(layers, worst)));
    if (a.flags.get('json') === true) {
      io.out(JSON.stringify({ layers, worst }, (_k, v) => (v === Infinity ? 'Infinity' : v), 1));
      return 0;
    }
    if (model.deploy) io.out('a deploy checkpoint: no branches to compare (range ×k×k, BN scale and k×k SQNR need the training-time one)');
    const or = (v: number | null, f: (v: number) => string) => (v === null ? '–' : f(v));
    io.out(`${'layer'.padEnd(22)} ${'range ×k×k'.padStart(10)} ${'BN scale'.padStart(9)} ${'W SQNR'.padStart(7)} ${'k×k SQNR'.padStart(8)} ${'taps→0'.padStart(7)} ${'act SQNR'.padStart(8)} ${'sensitivity'.padStart(11)}`);
    for (const l of layers) {
      io.out(`${l.layer.padEnd(22)} ${or(l.rangeRatio, (v) => v.toFixed(2)).padStart(10)} ${or(l.bnScale, (v) => v.toFixed(2)).padStart(9)} ${l.weightSqnr.toFixed(1).padStart(7)} ${or(l.denseSqnr, (v) => v.toFixed(1)).padStart(8)} ${`${(100 * l.zeroedTaps).toFixed(0)}%`.padStart(7)} ${l.activationSqnr.toFixed(1).padStart(8)} ${l.sensitivity.toExponential(2).padStart(11)}`);
    }
    io.out('worst:');
    for (const w of worst) io.out(`  ${w}: ${layers.find((l) => l.layer === w)!.reason}`);
    if (svg !== undefined) io.out(`wrote ${svg}`);
    return 0;
  },
};

// Two panels over the layers (x: the layer's index in forward order): SQNRs in dB (weights fused and
// k×k alone, the output activation), and the two ratios on a log₁₀ axis (the fused range against the
// k×k branches', the sensitivity); the three worst layers named under them.
function reportSvg(layers: LayerQuantReport[], worst: string[]): string {
  const at = (f: (l: LayerQuantReport) => number) => layers.map((l, i) => [i, f(l)] as [number, number]).filter(([, v]) => Number.isFinite(v));
  const drawn = (series: Series[]) => series.filter((x) => x.points.length > 0); // a deploy model has no k×k series
  const left = lineChart(drawn([
    { name: 'weights, fused (int8 per channel)', points: at((l) => l.weightSqnr), color: '#c0392b' },
    { name: 'weights, k×k branches alone', points: at((l) => l.denseSqnr ?? NaN), color: '#2c7fb8' },
    { name: 'output activation (uint8)', points: at((l) => l.activationSqnr), color: '#27ae60' },
  ]), { title: 'SQNR per layer', xLabel: 'layer (forward order)', yLabel: 'dB' });
  const right = lineChart(drawn([
    { name: 'log₁₀ fused range / k×k range', points: at((l) => Math.log10(l.rangeRatio ?? NaN)), color: '#8e44ad' },
    { name: 'log₁₀ sensitivity (max |Δ logit| / max |logit|)', points: at((l) => Math.log10(l.sensitivity)), color: '#d35400' },
  ]), { title: 'Range ratio and sensitivity per layer', xLabel: 'layer (forward order)', yLabel: 'log₁₀' }, 480, 0);
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const notes = worst.map((w, i) => `<text x="16" y="${322 + 16 * i}">${esc(`worst ${i + 1}: ${w} (layer ${layers.findIndex((l) => l.layer === w)}): ${layers.find((l) => l.layer === w)!.reason}`)}</text>`);
  return svgDocument(960, 320 + 16 * worst.length + 8, [left, right, ...notes].join('\n'));
}
