// Softmax cross-entropy with mean reduction, as torch.nn.functional.cross_entropy:
//   loss = (1/N) Σ_n [ logsumexp(z_n) − z_n[y_n] ],   dz = (softmax(z) − onehot(y)) / N

import { Tensor, allocLike } from '../tensor/tensor.js';
import { expectRank } from '../tensor/check.js';

export interface CrossEntropyResult {
  /** mean loss, in float64 */
  loss: number;
  /** softmax probabilities (N, K), kept for the backward pass */
  probs: Tensor;
}

// logits: (N, K), labels: N class indices → loss
export function softmaxCrossEntropy(logits: Tensor, labels: ArrayLike<number>): CrossEntropyResult {
  expectRank(logits, 2, 'cross_entropy input');
  const [N, K] = logits.shape;
  if (labels.length !== N) throw new Error(`cross_entropy: ${labels.length} labels for a batch of ${N}`);
  const z = logits.data;
  const probs = allocLike(z, N * K);
  let total = 0;
  for (let n = 0; n < N; n++) {
    const label = labels[n];
    if (!Number.isInteger(label) || label < 0 || label >= K) throw new Error(`cross_entropy: label ${label} at index ${n} is outside [0, ${K})`);
    const off = n * K;
    let mx = -Infinity;
    for (let k = 0; k < K; k++) if (z[off + k] > mx) mx = z[off + k];
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(z[off + k] - mx);
    const lse = mx + Math.log(s);
    for (let k = 0; k < K; k++) probs[off + k] = Math.exp(z[off + k] - lse);
    total += lse - z[off + label];
  }
  return { loss: total / N, probs: new Tensor(probs, [N, K]) };
}

export function softmaxCrossEntropyBackward(probs: Tensor, labels: ArrayLike<number>): Tensor {
  const [N, K] = probs.shape;
  const dz = allocLike(probs.data, N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) dz[n * K + k] = probs.data[n * K + k] / N;
    dz[n * K + labels[n]] -= 1 / N;
  }
  return new Tensor(dz, [N, K]);
}
