// The arithmetic behind the page's first section, through the library's public API only: a small
// training-time block, its three BatchNorms, and the fusion one step at a time. The browser test
// imports this file too, so that the numbers it checks come from the same block.
import {
  RepVGGBlock, Rng, Tensor, conv2d, relu, repvggFusionSteps,
} from '../dist/index.js';

/** The three BatchNorms of a block, in the order the page shows them. */
export const BNS = [
  { key: 'dense', label: '3×3 branch BN', of: (b) => b.rbrDense.bn },
  { key: 'pointwise', label: '1×1 branch BN', of: (b) => b.rbr1x1.bn },
  { key: 'identity', label: 'identity BN', of: (b) => b.rbrIdentity },
];

/** The BN statistics a slider moves: [name, symbol, min, max, step]. */
export const BN_PARAMS = [
  { key: 'gamma', symbol: 'γ', min: 0.1, max: 2, step: 0.01 },
  { key: 'beta', symbol: 'β', min: -1, max: 1, step: 0.01 },
  { key: 'mean', symbol: 'μ', min: -1, max: 1, step: 0.01 },
  { key: 'var', symbol: 'σ²', min: 0.05, max: 3, step: 0.01 },
];

function bnArray(bn, key) {
  return key === 'gamma' ? bn.weight.data.data : key === 'beta' ? bn.bias.data.data : key === 'mean' ? bn.runningMean.data : bn.runningVar.data;
}

/** A BN statistic of output channel f. */
export function getBN(block, which, key, f) {
  return bnArray(BNS[which].of(block), key)[f];
}

/** Sets a BN statistic of output channel f (as loading a checkpoint would). */
export function setBN(block, which, key, f, value) {
  bnArray(BNS[which].of(block), key)[f] = value;
}

// Two decimals, so that the numbers in the equations are the numbers in the model.
const r2 = (rng, lo, hi) => Math.round((lo + (hi - lo) * rng.next()) * 100) / 100;

/** A training-time RepVGG block, channels → channels, stride 1, float64, in eval mode. */
export function makeBlock(channels, groups, seed) {
  const rng = new Rng(seed);
  const block = new RepVGGBlock({ inChannels: channels, outChannels: channels, stride: 1, groups, identity: true, pointwise: true }, { dtype: 'float64', rng });
  const fill = (a, lo, hi) => { for (let i = 0; i < a.length; i++) a[i] = r2(rng, lo, hi); };
  fill(block.rbrDense.conv.weight.data.data, -1, 1);
  fill(block.rbr1x1.conv.weight.data.data, -1, 1);
  for (const { of } of BNS) {
    const bn = of(block);
    fill(bn.weight.data.data, 0.5, 1.5); fill(bn.bias.data.data, -0.5, 0.5);
    fill(bn.runningMean.data, -0.5, 0.5); fill(bn.runningVar.data, 0.5, 2);
  }
  return block.eval();
}

/** A BatchNorm's eval-mode statistics, as fuseConvBN takes them. */
export function stats(bn) {
  return { gamma: bn.weight.data, beta: bn.bias.data, mean: bn.runningMean, variance: bn.runningVar, eps: bn.eps };
}

/**
 * Every step of the fusion, from the library's worked example (repvggFusionSteps, the steps of
 * fuseRepVGGBlock):
 *   W₃', b₃' = fuseConvBN(W₃, BN₃)            W₁', b₁' = fuseConvBN(W₁, BN₁)
 *   P = padKernel(W₁')                          I = identityKernel(C, g)
 *   I', b_id' = fuseConvBN(I, BN_id)            K = W₃' + P + I',  b = b₃' + b₁' + b_id'
 */
export function fusionSteps(block) {
  return repvggFusionSteps(block);
}

/** s = γ/√(σ² + ε) of output channel f of BN number `which`. */
export function bnScale(block, which, f) {
  const bn = BNS[which].of(block);
  return bn.weight.data.data[f] / Math.sqrt(bn.runningVar.data[f] + bn.eps);
}

/** A (1, C, size, size) test input: a smooth pattern per channel, values in [−1, 1]. */
export function blockInput(channels, size = 10) {
  const x = new Float64Array(channels * size * size);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) x[(c * size + i) * size + j] = Math.sin((i + 1) * (c + 1) * 0.7) * Math.cos((j + 2) * (c + 2) * 0.45);
    }
  }
  return new Tensor(x, [1, channels, size, size]);
}

/** The training-time block, in eval mode: ReLU(BN₃(W₃⊛x) + BN₁(W₁⊛x) + BN_id(x)), or with a ReLU
 * inside each branch as well (the variant that cannot be fused). */
export function runBranched(block, x, reluInside) {
  const branches = [block.rbrDense.forward(x), block.rbr1x1.forward(x), block.rbrIdentity.forward(x)].map((t) => (reluInside ? relu(t) : t));
  const y = new Float64Array(branches[0].size);
  for (const t of branches) for (let i = 0; i < y.length; i++) y[i] += t.data[i];
  return relu(new Tensor(y, branches[0].shape));
}

/** The deploy block: ReLU(K ⊛ x + b), by the direct (reference) convolution. */
export function runFused(sum, x, groups) {
  return relu(conv2d(x, sum.kernel, sum.bias, { padding: 1, groups, algorithm: 'direct' }));
}

export function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.size; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}
