// The RepVGG paper's ablations at small scale on the bundled data, with error bars over seeds:
//   fig6: which branches a block has (none / identity / 1×1 / both), its accuracy and its speed
//         without re-parameterization;
//   fig7: the other block designs of its Table 6 (src/nn/variants.ts) and Residual Reorg
//         (src/nn/residual_reorg.ts), all in the same network layout;
//   int8: RepVGG against QARepVGG deployed in INT8 (src/onnx/quantize.ts, run as exact integers):
//         FP32, INT8 per tensor and per channel, and whether QARepVGG's smaller drop shows.
// Every row trains with the same budget, data order and seeds; conv algorithms are pinned to im2col,
// so rows differ only by their structure and a seed gives the same model on every run.
import { type ParsedArgs, num, oneOf, str } from '../args.js';
import type { Command, Io } from '../command.js';
import { BUNDLED_DATA, loadIdxDir } from '../data.js';
import { CALIBRATION_IMAGES, calibrationBatch, int8Accuracy, trainWithProgress } from '../training.js';
import { RepVGG } from '../../nn/repvgg.js';
import type { RepVGGConfig } from '../../nn/config.js';
import type { Module } from '../../nn/module.js';
import { VariantNet } from '../../nn/variant_net.js';
import { ResidualReorg } from '../../nn/residual_reorg.js';
import type { VariantName } from '../../nn/variants.js';
import { convert } from '../../reparam/repvgg.js';
import { DEMO_CONFIG } from './demo.js';
import { accuracy, argmaxRow, checkLabels, predict } from '../../train/fit.js';
import type { Tensor } from '../../tensor/tensor.js';

/**
 * The network every row uses: RepVGG-B0's proportions (stages of 4, 6, 16, 1 layers: even counts in
 * stages 1–3, so Residual Reorg can pair them) scaled down to 2, 2, 2, 1 at a quarter of the width,
 * for 28×28 grey images and 10 classes.
 */
const ABLATION_CONFIG: RepVGGConfig = { num_blocks: [2, 2, 2, 1], width_multiplier: [0.25, 0.25, 0.25, 0.25], num_classes: 10, in_channels: 1 };

interface Row {
  name: string;
  /** the paper's RepVGG-B0 ImageNet top-1 (%) and, for fig6, its examples/s without re-parameterization */
  paper: { accuracy: number; speed?: number };
  /** a training-time network for a seed */
  make: (seed: number) => Module;
  /** its deploy network, or why there is none */
  deploy: (m: Module) => Module | string;
}

const repvgg = (identity: boolean, pointwise: boolean, cfg = ABLATION_CONFIG) => (seed: number) =>
  RepVGG.fromConfig({ ...cfg, use_identity: identity, use_1x1: pointwise }, { seed }).setAlgorithm('im2col');
const fuseRepVGG = (m: Module) => convert(m as RepVGG).setAlgorithm('im2col');
const variant = (name: VariantName, paper: number, cfg = ABLATION_CONFIG): Row => ({
  name,
  paper: { accuracy: paper },
  make: (seed) => new VariantNet(name, cfg, { seed }).setAlgorithm('im2col'),
  deploy: name === '+ReLU in branch'
    ? () => 'cannot fuse: a ReLU inside each branch makes the block nonlinear'
    : (m) => convert(m as VariantNet).setAlgorithm('im2col'),
});

const TABLES: Record<'fig6' | 'fig7' | 'int8', { title: string; rows: Row[]; config?: RepVGGConfig }> = {
  fig6: {
    title: 'branch ablation (the paper\'s Fig. 6: RepVGG-B0, ImageNet top-1 and examples/s without re-parameterization)',
    rows: [
      { name: 'none (3×3 only)', paper: { accuracy: 72.39, speed: 1810 }, make: repvgg(false, false), deploy: fuseRepVGG },
      { name: 'identity', paper: { accuracy: 74.79, speed: 1569 }, make: repvgg(true, false), deploy: fuseRepVGG },
      { name: '1×1', paper: { accuracy: 73.15, speed: 1230 }, make: repvgg(false, true), deploy: fuseRepVGG },
      { name: 'identity + 1×1 (RepVGG)', paper: { accuracy: 75.14, speed: 1061 }, make: repvgg(true, true), deploy: fuseRepVGG },
    ],
  },
  fig7: {
    title: 'block designs (the paper\'s Fig. 7 / Table 6: RepVGG-B0 variants, ImageNet top-1)',
    rows: [
      variant('Identity w/o BN', 74.18),
      variant('Post-addition BN', 73.52),
      { name: 'RepVGG', paper: { accuracy: 75.14 }, make: repvgg(true, true), deploy: fuseRepVGG },
      variant('+ReLU in branch', 75.69),
      variant('DiracNet', 73.97),
      variant('Trivial Re-param', 73.51),
      variant('ACB', 73.58),
      {
        name: 'Residual Reorg', paper: { accuracy: 74.56 },
        make: (seed) => new ResidualReorg(ABLATION_CONFIG, { seed }).setAlgorithm('im2col'),
        deploy: () => 'cannot fuse: a ReLU between the two convs of each residual block',
      },
    ],
  },
  int8: {
    title: 'INT8 after fusion (Chu et al., AAAI 2024, Fig. 1: post-training INT8 ImageNet top-1 of RepVGG-A0 52.2%, of QARepVGG-A0 70.4%, at about equal FP32)',
    // the demo's model (its INT8 drop with error bars), in RepVGG blocks and in QARepVGG blocks
    config: DEMO_CONFIG,
    rows: [
      { name: 'RepVGG', paper: { accuracy: 52.2 }, make: repvgg(true, true, DEMO_CONFIG), deploy: fuseRepVGG },
      variant('QARepVGG', 70.4, DEMO_CONFIG),
    ],
  },
};


export interface AblationRow {
  name: string;
  paper: { accuracy: number; speed?: number };
  params: number;
  fuses: boolean;
  /** why not, when it does not */
  note?: string;
  /** test accuracy (fraction) per seed, and their mean and sample standard deviation */
  accuracy: number[];
  mean: number;
  std: number;
  /** inference on the test set, images/s per seed: training-time network (eval) and deploy network */
  speed: { trainingTime: number[]; deploy: number[] | null };
  /** per seed: the fraction of test images on which the deploy network predicts the same class */
  deployAgreement: number[] | null;
  /** the int8 table: test accuracy per seed of the deploy network in INT8, per tensor and per channel */
  int8?: { perTensor: number[]; perChannel: number[] };
}

/** What `ablate --json` prints. */
export interface AblationResult {
  table: 'fig6' | 'fig7' | 'int8';
  config: RepVGGConfig;
  epochs: number;
  batchSize: number;
  lr: number;
  seeds: number[];
  trainImages: number;
  testImages: number;
  seconds: number;
  rows: AblationRow[];
}

/** The table `ablate` prints (from the same object `--json` prints). */
export function formatAblation(r: AblationResult): string[] {
  const pct = (v: number) => (100 * v).toFixed(2);
  const fig6 = r.table === 'fig6';
  const w = Math.max(...r.rows.map((x) => x.name.length));
  if (r.table === 'int8') return formatInt8(r, w);
  const out = [
    `${r.table}: ${TABLES[r.table].title}`,
    `ours: ${JSON.stringify(r.config.num_blocks)} layers at width ×${r.config.width_multiplier[0]}, ${r.epochs} epochs on ${r.trainImages} Fashion-MNIST images, seeds ${r.seeds.join(', ')}, tested on ${r.testImages}; ${r.seconds.toFixed(0)} s`,
    `${'row'.padEnd(w)}  test acc (mean ± sd)  paper top-1  training-time img/s  deploy img/s${fig6 ? '  paper img/s' : ''}`,
  ];
  for (const x of r.rows) {
    const ipsT = meanStd(x.speed.trainingTime).mean, ipsD = x.speed.deploy === null ? null : meanStd(x.speed.deploy).mean;
    out.push(`${x.name.padEnd(w)}  ${`${pct(x.mean)} ± ${pct(x.std)}%`.padStart(20)}  ${`${x.paper.accuracy.toFixed(2)}%`.padStart(11)}  ${ipsT.toFixed(0).padStart(19)}  ${(ipsD === null ? 'does not fuse' : ipsD.toFixed(0)).padStart(13)}${fig6 ? `  ${String(x.paper.speed).padStart(11)}` : ''}`);
  }
  for (const x of r.rows) if (x.note !== undefined) out.push(`${x.name}: ${x.note}`);
  out.push(`Speeds: inference on the ${r.testImages} test images, median of ${SPEED_ROUNDS} passes with every network taking turns, every conv on im2col, this machine. Accuracy differences smaller than the standard deviations are noise.`);
  return out;
}

// FP32 against INT8 per tensor and per channel, each mean ± sd over seeds, the drops, and the verdict
function formatInt8(r: AblationResult, w: number): string[] {
  const pct = (v: number) => (100 * v).toFixed(2);
  const ms = (v: number[]) => { const m = meanStd(v); return `${pct(m.mean)} ± ${pct(m.std)}%`.padStart(17); };
  const drop = (x: AblationRow, q: number[]) => meanStd(x.accuracy.map((a, i) => a - q[i]));
  const out = [
    `int8: ${TABLES.int8.title}`,
    `ours: ${JSON.stringify(r.config.num_blocks)} layers at width ×${r.config.width_multiplier[0]}, ${r.epochs} epochs on ${r.trainImages} Fashion-MNIST images, seeds ${r.seeds.join(', ')}, tested on ${r.testImages}; calibrated on ${Math.min(CALIBRATION_IMAGES, r.trainImages)} training images (min-max); ${r.seconds.toFixed(0)} s`,
    `${'row'.padEnd(w)}  ${'FP32'.padStart(17)}  ${'INT8 per tensor'.padStart(17)}  ${'INT8 per channel'.padStart(17)}  drop per tensor  drop per channel`,
  ];
  for (const x of r.rows) {
    const t = drop(x, x.int8!.perTensor), c = drop(x, x.int8!.perChannel);
    out.push(`${x.name.padEnd(w)}  ${ms(x.accuracy)}  ${ms(x.int8!.perTensor)}  ${ms(x.int8!.perChannel)}  ${`${pct(t.mean)} ± ${pct(t.std)}`.padStart(15)}  ${`${pct(c.mean)} ± ${pct(c.std)}`.padStart(16)}`);
  }
  const [rep, qa] = r.rows;
  if (rep !== undefined && qa !== undefined && r.seeds.length > 1) {
    // the claim: a smaller INT8 drop (per tensor, where RepVGG suffers) at about equal FP32 accuracy; held to
    // the standard error of the difference of the two mean drops
    const a = drop(rep, rep.int8!.perTensor), b = drop(qa, qa.int8!.perTensor), n = r.seeds.length;
    const se = Math.sqrt((a.std ** 2 + b.std ** 2) / n), diff = a.mean - b.mean;
    out.push(diff > 2 * se
      ? `QARepVGG's claim holds here: its per-tensor INT8 drop is ${pct(diff)} points smaller than RepVGG's (${(diff / (se || Infinity)).toFixed(1)} standard errors).`
      : diff < -2 * se
        ? `QARepVGG's claim does not hold here: its per-tensor INT8 drop is ${pct(-diff)} points larger than RepVGG's (${(-diff / (se || Infinity)).toFixed(1)} standard errors).`
        : `QARepVGG's claim is not shown at this scale: the per-tensor INT8 drops differ by ${pct(diff)} points, within 2 standard errors (${pct(se)}); more seeds, epochs or data would be needed.`);
  }
  out.push('INT8: the deploy network quantized by `repvgg quantize` (int8 weights, uint8 activations, the classifier included) and run as exact integers (`repvgg run`).');
  return out;
}

/** Sample mean and standard deviation (n − 1; 0 for one value). */
export function meanStd(v: readonly number[]): { mean: number; std: number } {
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const ss = v.reduce((s, x) => s + (x - mean) ** 2, 0);
  return { mean, std: v.length > 1 ? Math.sqrt(ss / (v.length - 1)) : 0 };
}

/** Timed passes over the test set per network in the speed phase (after one warm-up pass each). */
const SPEED_ROUNDS = 5;

// images/s of predict on x for each network: after every row has trained, all of them (training-time
// and deploy, every row and seed) take turns, one pass each per round, and each gets its median.
// Measuring each network right after its training put the same deploy network at 10–16 thousand
// images/s from row to row: the machine's noise, not the structure.
function speedPhase(nets: Module[], x: Tensor): Map<Module, number> {
  for (const m of nets) predict(m, x);
  const t = new Map(nets.map((m) => [m, [] as number[]]));
  for (let r = 0; r < SPEED_ROUNDS; r++) {
    for (const m of nets) {
      const t0 = performance.now();
      predict(m, x);
      t.get(m)!.push(performance.now() - t0);
    }
  }
  return new Map([...t].map(([m, v]) => [m, x.shape[0] / (v.sort((a, b) => a - b)[v.length >> 1] / 1000)]));
}

function agreement(a: Tensor, b: Tensor): number {
  const [N, K] = a.shape;
  let same = 0;
  for (let n = 0; n < N; n++) if (argmaxRow(a, n, K) === argmaxRow(b, n, K)) same++;
  return same / N;
}

export const ablate: Command = {
  spec: {
    name: 'ablate',
    summary: "the paper's ablations (fig6: branches, fig7: block designs; int8: RepVGG vs QARepVGG in INT8) at small scale: mean ± sd over seeds",
    usage: 'repvgg ablate [--table fig6|fig7|int8 (fig6)] [--seeds 3] [--epochs 3] [--batch-size 32] [--lr 0.05] [--seed 0] [--data DIR] [--json]\n' +
      '  Every row trains with the same budget, data order and seeds (--seed, --seed + 1, …) and is tested\n' +
      '  on the test set: mean ± sample standard deviation beside the paper\'s figure, and inference speed\n' +
      '  of the training-time network and, where it fuses, of the deployed one. int8: the demo\'s model in RepVGG and\n' +
      '  in QARepVGG blocks, deployed in INT8 (per tensor and per channel, calibrated on 256 training images, run as\n' +
      '  exact integers).',
    flags: { threads: 'count', backend: 'string', table: 'string', seeds: 'count', epochs: 'count', 'batch-size': 'count', lr: 'positive', seed: 'seed', data: 'string', json: 'boolean' },
    positionals: 0,
    files: [{ arg: 'data', role: 'in-dir' }],
  },
  async run(a: ParsedArgs, io: Io): Promise<number> {
    const table = oneOf(str(a, 'table', 'fig6'), ['fig6', 'fig7', 'int8'] as const, '--table');
    const seeds = num(a, 'seeds', 3), epochs = num(a, 'epochs', 3), batchSize = num(a, 'batch-size', 32), lr = num(a, 'lr', 0.05), seed0 = num(a, 'seed', 0);
    const { train, test } = await loadIdxDir(str(a, 'data', BUNDLED_DATA));
    checkLabels(test.y, ABLATION_CONFIG.num_classes ?? 1000, 'test label'); // before training, as the training labels are
    const specs = TABLES[table].rows;
    const seedList = Array.from({ length: seeds }, (_, i) => seed0 + i);
    const t0 = performance.now();
    // train and test every row and seed; keep the networks for the speed phase
    const trained: { acc: number[]; nets: Module[]; deploys: Module[]; agree: number[]; params: number; note?: string; int8: { perTensor: number[]; perChannel: number[] } }[] = [];
    const calib = calibrationBatch(train.x);
    for (const spec of specs) {
      const row: (typeof trained)[number] = { acc: [], nets: [], deploys: [], agree: [], params: 0, int8: { perTensor: [], perChannel: [] } };
      for (const seed of seedList) {
        const model = spec.make(seed);
        row.params = model.namedParameters().reduce((s, [, p]) => s + p.data.size, 0);
        await trainWithProgress(model, train, { epochs, batchSize, lr, seed }, io, `${spec.name} seed ${seed}`);
        const logits = predict(model, test.x);
        row.acc.push(accuracy(logits, test.y));
        row.nets.push(model);
        const deploy = spec.deploy(model.eval());
        if (typeof deploy === 'string') row.note = deploy;
        else {
          row.deploys.push(deploy);
          row.agree.push(agreement(logits, predict(deploy, test.x)));
          if (table === 'int8') {
            io.progress(`${spec.name} seed ${seed}: INT8 on the test set…`);
            row.int8.perTensor.push(int8Accuracy(deploy as RepVGG, calib, test, false));
            row.int8.perChannel.push(int8Accuracy(deploy as RepVGG, calib, test, true));
          }
        }
      }
      trained.push(row);
    }
    io.progress('timing inference…');
    const ips = speedPhase(trained.flatMap((r) => [...r.nets, ...r.deploys]), test.x);
    io.progress('');
    const rows: AblationRow[] = trained.map((r, i) => {
      const fuses = r.note === undefined;
      return {
        name: specs[i].name, paper: specs[i].paper, params: r.params, fuses, ...(fuses ? {} : { note: r.note }),
        accuracy: r.acc, ...meanStd(r.acc),
        speed: { trainingTime: r.nets.map((m) => ips.get(m)!), deploy: fuses ? r.deploys.map((m) => ips.get(m)!) : null },
        deployAgreement: fuses ? r.agree : null,
        ...(table === 'int8' ? { int8: r.int8 } : {}),
      };
    });
    const result: AblationResult = {
      table, config: TABLES[table].config ?? ABLATION_CONFIG, epochs, batchSize, lr, seeds: seedList,
      trainImages: train.x.shape[0], testImages: test.x.shape[0], seconds: (performance.now() - t0) / 1000, rows,
    };
    if (a.flags.get('json') === true) io.out(JSON.stringify(result));
    else for (const line of formatAblation(result)) io.out(line);
    return 0;
  },
};
