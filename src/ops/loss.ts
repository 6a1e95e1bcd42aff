// Softmax cross-entropy with mean reduction, as torch.nn.functional.cross_entropy:
//   loss = (1/N) Σ_n [ logsumexp(z_n) − z_n[y_n] ],   dz = (softmax(z) − onehot(y)) / N
// (Σ_n by the batch's halves, and N the whole batch's where this thread holds half of it: batch_shards.ts)

import { type FloatArray, Tensor, allocLike } from '../tensor/tensor.js';
import { workspace64 } from '../tensor/workspace.js';
import { batchImages, batchSums } from './batch_shards.js';
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
  for (let n = 0; n < N; n++) {
    const label = labels[n];
    if (!Number.isInteger(label) || label < 0 || label >= K) throw new Error(`cross_entropy: label ${label} at index ${n} is outside [0, ${K})`);
  }
  // the loss by the batch's halves (batch_shards.ts), over the whole batch's images
  const total = workspace64('loss.total', 1).subarray(0, 1);
  batchSums(N, total, (n0, n1, out) => { out[0] = imageLosses(z, labels, n0, n1, K, probs); });
  return { loss: total[0] / batchImages(N), probs: new Tensor(probs, [N, K]) };
}

// Σ over images [n0, n1) of logsumexp(z_n) − z_n[y_n], and each image's softmax into probs
function imageLosses(z: FloatArray, labels: ArrayLike<number>, n0: number, n1: number, K: number, probs: FloatArray): number {
  let total = 0;
  for (let n = n0; n < n1; n++) {
    const off = n * K;
    let mx = -Infinity;
    for (let k = 0; k < K; k++) if (z[off + k] > mx) mx = z[off + k];
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(z[off + k] - mx);
    const lse = mx + Math.log(s);
    for (let k = 0; k < K; k++) probs[off + k] = Math.exp(z[off + k] - lse);
    total += lse - z[off + labels[n]];
  }
  return total;
}

// N: the whole batch's images, where this thread holds half of it (batch_shards.ts)
export function softmaxCrossEntropyBackward(probs: Tensor, labels: ArrayLike<number>): Tensor {
  const [Nh, K] = probs.shape;
  const N = batchImages(Nh);
  const dz = allocLike(probs.data, Nh * K);
  for (let n = 0; n < Nh; n++) {
    for (let k = 0; k < K; k++) dz[n * K + k] = probs.data[n * K + k] / N;
    dz[n * K + labels[n]] -= 1 / N;
  }
  return new Tensor(dz, [Nh, K]);
}
