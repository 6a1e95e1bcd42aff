// The demo model's training step (forward, backward, SGD; batch 32, 1×28×28, im2col as the demo
// trains) with this code and with another build of the library, alternating in one process:
//   git worktree add /tmp/before 098b6ab~1 && (cd /tmp/before && npm install && npx tsc -p tsconfig.build.json)
//   node build/bench/versus.js /tmp/before/dist [threads (1)]
// (098b6ab~1: the code before the worker pool and the SIMD GEMM, what #11's "today" measured.)
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as current from '../src/index.js';
import { alternate } from './harness.js';

type Lib = typeof current;
const [otherDir, threadsS] = process.argv.slice(2);
if (otherDir === undefined) throw new Error('usage: node build/bench/versus.js OTHER_DIST_DIR [threads]');
const other = (await import(pathToFileURL(resolve(otherDir, 'index.js')).href)) as Lib;
current.setThreads(Number(threadsS ?? 1));

const B = 32;
function trainStep(R: Lib): () => void {
  const cfg = { num_blocks: [1, 2, 2, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 10, in_channels: 1 };
  const model = R.RepVGG.fromConfig(cfg, { seed: 1 }).setAlgorithm('im2col');
  const x = R.uniform([B, 1, 28, 28], new R.Rng(2), -1, 1);
  const labels = Array.from({ length: B }, (_, i) => i % 10);
  const opt = new R.SGD(model.namedParameters().map(([, p]) => p), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
  model.train();
  return () => {
    model.zeroGrad();
    const { probs } = R.softmaxCrossEntropy(model.forward(x), labels);
    model.backward(R.softmaxCrossEntropyBackward(probs, labels));
    opt.step();
  };
}

const ms = await alternate([['this code', trainStep(current)], ['other', trainStep(other)]], 20_000, 30);
const row = (n: string) => `${n.padEnd(10)} ${ms[n].toFixed(2).padStart(8)} ms  ${((B * 1000) / ms[n]).toFixed(0).padStart(6)} images/s`;
process.stdout.write(`demo training step, batch ${B}, threads ${current.getThreads()} (this code):\n${row('this code')}\n${row('other')}\nratio ${(ms.other / ms['this code']).toFixed(2)}×\n`);
process.exit(0);
