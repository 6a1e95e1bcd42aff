// Training step (forward + backward + SGD) with every conv on im2col vs 'auto' (measured per shape;
// Winograd forward and Winograd dx where it wins), side by side. Run: node build/bench/train_step.js
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig } from '../src/nn/config.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { SGD } from '../src/train/sgd.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from '../src/ops/loss.js';
import { medians, table } from './harness.js';
import { AUTO_AFTER, type ConvAlgorithm } from '../src/ops/conv2d.js';

const [arch = 'A0', size = '64', batch = '8'] = process.argv.slice(2);
const N = Number(batch), S = Number(size);
function step(algorithm: ConvAlgorithm): () => void {
  const cfg = zooConfig(arch);
  const model = RepVGG.fromConfig(cfg, { seed: 1 }).setAlgorithm(algorithm).train();
  const x = uniform([N, 3, S, S], new Rng(2), -1, 1);
  const labels = Array.from({ length: N }, (_, i) => i);
  const opt = new SGD(model.namedParameters().map(([, p]) => p), { lr: 0.01, momentum: 0.9 });
  const fn = () => {
    model.zeroGrad();
    const { probs } = softmaxCrossEntropy(model.forward(x), labels);
    model.backwardParameters(softmaxCrossEntropyBackward(probs, labels));
    opt.step();
  };
  // warm-up; 'auto' times each conv after AUTO_AFTER calls, so it runs that many steps first
  for (let i = 0; i <= (algorithm === 'auto' ? AUTO_AFTER : 0); i++) fn();
  return fn;
}
const res = await medians([['im2col', step('im2col')], ['auto', step('auto')]], { time: 3000, iterations: 3 });
console.log(`training step, RepVGG-${arch} at ${S}×${S}, batch ${N}`);
console.log(table(res.map((r) => [r.name, r.medianMs, (N * 1000) / r.medianMs]), ['convs', 'median ms', 'images/s']));
console.log(`auto / im2col speed-up: ${(res[0].medianMs / res[1].medianMs).toFixed(2)}×`);
