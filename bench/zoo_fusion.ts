// npm run bench:fusion — full-width fusion, end to end: each model named on the command line (default
// RepVGG-A0 and RepVGG-B0) in float64 and float32 at 32×32, training-time (eval mode) against its
// fused deploy form, held to the suite's whole-model error model (test/reparam/helpers.ts checkModel):
// the float64 pair within 1e-12·max|logit|, both float32 models within 1e-4·max|logit| of the float64
// reference. The suite runs every zoo architecture at 1/8 width (the algebra is per block); the full
// widths live here, where their seconds do not slow every test run. Exits 1 on a failure.
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { loadStateDict, stateDict } from '../src/io/state_dict.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { BatchNorm2d } from '../src/nn/layers.js';
import type { Module } from '../src/nn/module.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { table } from './harness.js';
import { compareArrays } from '../src/io/compare.js';

const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['A0', 'B0'];
function maxAbs(t: Tensor): number {
  let m = 0;
  for (let i = 0; i < t.size; i++) m = Math.max(m, Math.abs(t.data[i]));
  return m;
}
const maxDiff = (out: Tensor, ref: Tensor): number => compareArrays(ref.data, out.data, 0, 0).maxAbs; // NaN propagates

// BN statistics spread as the suite spreads them: γ ∈ (0.5, 1.5), β, μ ∈ (−1, 1), σ² log-uniform in [1e-3, 1e4]
function randomizeBN(m: Module, rng: Rng): void {
  if (m instanceof BatchNorm2d) {
    for (let c = 0; c < m.weight.data.size; c++) {
      m.weight.data.data[c] = 0.5 + rng.next();
      m.bias.data.data[c] = rng.next() * 2 - 1;
      m.runningMean.data[c] = rng.next() * 2 - 1;
      m.runningVar.data[c] = 10 ** (-3 + 7 * rng.next());
    }
  }
  for (const [, c] of m.children()) randomizeBN(c, rng);
}

const rows: (string | number)[][] = [];
let failed = 0;
for (const name of names) {
  const cfg = { ...zooConfig(name), num_classes: 10 };
  const t0 = performance.now();
  const m64 = RepVGG.fromConfig(cfg, { seed: 11, dtype: 'float64' });
  randomizeBN(m64, new Rng(12));
  m64.eval();
  const x64 = uniform([1, 3, 32, 32], new Rng(13), -1, 1, 'float64');
  const ref = m64.forward(x64), scale = maxAbs(ref);
  const m32 = RepVGG.fromConfig(cfg, { dtype: 'float32', init: false });
  loadStateDict(m32, stateDict(m64));
  m32.eval();
  const x32 = x64.to('float32');
  const checks: [string, number, number][] = [
    ['float64 deploy', maxDiff(convert(m64).forward(x64), ref) / scale, 1e-12],
    ['float32 training-time', maxDiff(m32.forward(x32), ref) / scale, 1e-4],
    ['float32 deploy', maxDiff(convert(m32).forward(x32), ref) / scale, 1e-4],
  ];
  for (const [what, rel, bound] of checks) {
    const ok = rel <= bound;
    if (!ok) failed++;
    rows.push([`RepVGG-${name.replace(/^RepVGG-/, '')}`, what, rel.toExponential(2), bound.toExponential(0), ok ? 'ok' : 'FAIL']);
  }
  rows.push([`RepVGG-${name.replace(/^RepVGG-/, '')}`, `(${((performance.now() - t0) / 1000).toFixed(1)} s)`, '', '', '']);
}
console.log(table(rows, ['model', 'against float64 training-time', '|Δ| / max|logit|', 'bound', '']));
process.exit(failed > 0 ? 1 : 0);
