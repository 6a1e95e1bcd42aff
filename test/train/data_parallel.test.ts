// Training by halves of the batch (src/train/data_parallel.ts): on two threads each half of a batch
// goes through its own copy of the network, the halves meeting at every BatchNorm; on one thread the
// same sums are taken by halves (src/ops/batch_shards.ts). The test is the contract itself: whole
// runs of fit give the same bits on one thread and on two, for even and odd batches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/tensor/tensor.js';
import { getThreads, setThreads, workersReady } from '../../src/backend/threads.js';
import { RepVGG } from '../../src/nn/repvgg.js';
import { type StepInfo, fit, setHalvesWarmup, trialOutcome } from '../../src/train/fit.js';
import { HalvesTrainer, halvesStats } from '../../src/train/data_parallel.js';
import { AUTO_AFTER } from '../../src/ops/conv2d.js';

const CONFIG = { num_blocks: [1, 2, 1, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 3, in_channels: 1 };

function dataset(N: number, size: number): { x: Tensor; y: Int32Array } {
  const x = new Float32Array(N * size * size), y = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    y[n] = n % 3;
    for (let i = 0; i < size * size; i++) x[n * size * size + i] = Math.sin(n * 7 + i * (1 + y[n])) + 0.1 * y[n];
  }
  return { x: new Tensor(x, [N, 1, size, size]), y };
}

// A run of fit on `threads`: the weights, running statistics and per-epoch losses after it.
function run(threads: number, batchSize: number, data: { x: Tensor; y: Int32Array }, halves?: boolean) {
  setThreads(threads);
  const model = RepVGG.fromConfig(CONFIG, { seed: 5 }).setAlgorithm('im2col');
  const before = halvesStats.steps;
  const hist = fit(model, data, { epochs: 2, batchSize, lr: 0.05, seed: 2, halves });
  return {
    halves: halvesStats.steps - before,
    losses: hist.map((h) => h.loss),
    accuracy: hist.map((h) => h.accuracy),
    weights: model.namedParameters().map(([n, p]) => [n, Array.from(p.data.data)]),
    buffers: model.namedBuffers().map(([n, b]) => [n, b.kind === 'tensor' ? Array.from(b.value.data) : b.value]),
  };
}

describe('training by halves of the batch', () => {
  let threads = 1;
  beforeAll(async () => {
    threads = getThreads();
    setThreads(2);
    await workersReady(1);
  });
  afterAll(() => setThreads(threads));

  // 30 images of 12×12: batches of 8 (halves 4 + 4) and a last one of 6 (3 + 3); of 7 (4 + 3) and a
  // last one of 2 (1 + 1). Every step after the first runs by halves on two threads.
  for (const batchSize of [8, 7]) {
    it(`fit gives the same weights, running statistics, losses and accuracies on two threads (halves) as on one, bit for bit: batches of ${batchSize}`, () => {
      const data = dataset(30, 12);
      const two = run(2, batchSize, data, true), one = run(1, batchSize, data);
      expect(two.halves).toBe(2 * Math.ceil(30 / batchSize) - 1); // every step but the run's first
      expect(one.halves).toBe(0);
      expect(two.losses).toEqual(one.losses);
      expect(two.accuracy).toEqual(one.accuracy);
      expect(two.weights).toEqual(one.weights);
      expect(two.buffers).toEqual(one.buffers);
    });
  }

  // Under 'auto' the halves wait until every conv has timed its candidates on the whole batch, then
  // run what it chose (pinned for the step: on a half's batch it would time anew), the convs left on
  // 'auto'. (Its bits against one thread's are not checked: what 'auto' chooses is a timing.)
  it('under \'auto\', steps go by halves once every conv has chosen, run its choice, and leave it on \'auto\'', () => {
    const data = dataset(96, 12);
    setThreads(2);
    const model = RepVGG.fromConfig(CONFIG, { seed: 5 });
    const before = halvesStats.steps;
    const [, conv] = model.namedConvs()[3], forward = conv.forward.bind(conv), seen: string[] = [];
    conv.forward = (...a: Parameters<typeof conv.forward>) => { seen.push(conv.algorithm); return forward(...a); };
    fit(model, data, { epochs: 1, batchSize: 2, lr: 0.05, seed: 2, halves: true }); // 48 steps
    expect(halvesStats.steps - before).toBe(48 - (AUTO_AFTER + 2));
    expect(seen.slice(0, AUTO_AFTER + 2).every((a) => a === 'auto')).toBe(true);
    expect(seen.slice(AUTO_AFTER + 2).every((a) => a === model.algorithmPlan()[3].algorithm)).toBe(true); // pinned in every half
    expect(model.namedConvs().every(([, c]) => c.algorithm === 'auto')).toBe(true);
  });

  // Unpinned, fit runs steps by halves untimed (300 by default: the worker builds its replica, and V8
  // compiles both halves' code over hundreds of steps; 20 here), then times 32 steps each way, the
  // two ways taking turns four steps at a time, keeps the faster by its median step, and says so in
  // each step's info; the same bits whichever it keeps. Pinned false, no step goes by halves.
  it('unpinned, a trial of both ways taking turns keeps the faster and reports it; pinned false, none by halves; the same bits every way', () => {
    const data = dataset(96, 12);
    const trained = (threads: number, halves?: boolean) => {
      setThreads(threads);
      const model = RepVGG.fromConfig(CONFIG, { seed: 5 }).setAlgorithm('im2col');
      const infos: (StepInfo['halves'])[] = [], byHalves: boolean[] = [];
      let before = halvesStats.steps;
      fit(model, data, { epochs: 3, batchSize: 3, lr: 0.05, seed: 2, halves, onStep: (i) => { infos.push(i.halves); byHalves.push(halvesStats.steps > before); before = halvesStats.steps; } }); // 96 steps
      return { byHalves, infos, weights: model.namedParameters().map(([, p]) => Array.from(p.data.data)) };
    };
    const warmup = setHalvesWarmup(20);
    try {
      expect(warmup).toBe(300);
      const trial = trained(2), never = trained(2, false), one = trained(1);
      const decided = trial.infos.findIndex((i) => i !== null);
      expect(decided).toBe(1 + 20 + 64 - 1); // the first step, 20 by halves, 64 taking turns
      const t = trial.infos[decided]!;
      expect(t.halvesMs > 0 && t.otherMs > 0).toBe(true);
      expect(t.byHalves).toBe(t.halvesMs < t.otherMs);
      expect(trial.infos.slice(decided).every((i) => i === t)).toBe(true);
      // step 0 on the whole batch, 1–20 by halves, then four by halves and four the other way, then the choice
      const expected = trial.byHalves.map((_, s) => s === 0 ? false : s <= 20 ? true : s <= decided ? Math.floor((s - 21) / 4) % 2 === 0 : t.byHalves);
      expect(trial.byHalves).toEqual(expected);
      expect(never.byHalves.every((h) => !h)).toBe(true);
      expect(never.infos.every((i) => i === null)).toBe(true);
      expect(trial.weights).toEqual(one.weights);
      expect(never.weights).toEqual(one.weights);
    } finally {
      setHalvesWarmup(warmup);
    }
  });

  it("the trial keeps the way whose median step is faster, whatever a few slow steps do to the mean", () => {
    // the shape of a trial on a busy VM: steps by halves at 5 ms with two compilation stalls of 40 ms
    // (mean 7.1875), the other way at 6 ms throughout; medians 5 and 6
    const halves = [...new Array(30).fill(5), 40, 40], other = new Array(32).fill(6);
    expect(trialOutcome(halves, other)).toEqual({ byHalves: true, halvesMs: 5, otherMs: 6 });
    // an even count's median is the mean of its two middle values; a tie keeps the other way
    expect(trialOutcome([1, 4, 6, 9], [4, 6, 7, 2])).toEqual({ byHalves: false, halvesMs: 5, otherMs: 5 });
    expect(trialOutcome([3, 1, 2], [2, 9, 9])).toEqual({ byHalves: true, halvesMs: 2, otherMs: 9 });
  });

  it('a step whose second half fails throws that half\'s error, leaves no thread waiting, and the next step runs', () => {
    setThreads(2);
    const model = RepVGG.fromConfig(CONFIG, { seed: 5 }).setAlgorithm('im2col').train();
    const { x, y } = dataset(6, 12);
    const labels = Array.from(y);
    const trainer = new HalvesTrainer((model.forward(x), model));
    const bad = labels.slice();
    bad[5] = 7; // in the worker's half only: this thread's half finds nothing wrong with its own
    expect(() => trainer.step(x, bad)).toThrow(/worker: cross_entropy: label 7 at index 2 is outside \[0, 3\)/);
    const before = halvesStats.steps;
    const r = trainer.step(x, labels);
    expect(halvesStats.steps).toBe(before + 1);
    expect(r.logits.shape).toEqual([6, 3]);
    expect(Number.isFinite(r.loss)).toBe(true);
  });

  it('applies to a RepVGG in float32 training, on two threads and a batch of two or more', () => {
    setThreads(2);
    const pinned = RepVGG.fromConfig(CONFIG, { seed: 5 }).setAlgorithm('im2col').train();
    expect(HalvesTrainer.applies(pinned, 2)).toBe(true);
    expect(HalvesTrainer.applies(pinned, 1)).toBe(false);
    expect(HalvesTrainer.applies(RepVGG.fromConfig(CONFIG, { seed: 5, dtype: 'float64' }).setAlgorithm('im2col').train(), 8)).toBe(false);
    expect(HalvesTrainer.applies(pinned.eval(), 8)).toBe(false);
    setThreads(1);
    expect(HalvesTrainer.applies(pinned.train(), 8)).toBe(false);
  });
});
