import { type ParsedArgs, num, oneOf, parseNumberArg, required, str } from '../args.js';
import { type Command, type Io, configFromArgs, modelFromConfig } from '../command.js';
import { readCheckpointFile, withLock, writeSafetensorsFile } from '../files.js';
import { loadIdxDir } from '../data.js';
import { trainWithProgress } from '../training.js';
import { DEMO_CONFIG } from './demo.js';
import type { RepVGG } from '../../nn/repvgg.js';
import type { MobileOne } from '../../nn/mobileone.js';
import { classifierFromStateDict, stateDict } from '../../io/state_dict.js';
import { accuracy, checkLabels, predict } from '../../train/fit.js';

export const train: Command = {
  spec: {
    name: 'train',
    summary: 'train on an IDX dataset (MNIST / Fashion-MNIST layout), resumable from a checkpoint',
    usage: 'repvgg train --data DIR [--arch NAME | --config FILE.json] [--epochs 10] [--batch-size 32] [--lr 0.05] [--seed 0] --out CKPT.safetensors [--resume CKPT.safetensors]\n' +
      '  DIR holds train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-…; the Debian package\n' +
      '  dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist. Without --arch/--config the\n' +
      '  demo\'s small RepVGG is used (1 input channel, 10 classes). A checkpoint is written after every epoch;\n' +
      '  --resume continues its schedule and data order (momentum buffers restart from zero).\n' +
      '  --train-algorithm: im2col (default: a seed always gives the same model), auto, direct or winograd.',
    flags: { threads: 'count', backend: 'string', data: 'string', arch: 'string', config: 'string', epochs: 'count', 'batch-size': 'count', lr: 'positive', seed: 'seed', out: 'string', resume: 'string', 'train-algorithm': 'string' },
    positionals: 0,
    // --out may be the --resume checkpoint (training continues into it), never a --data file or the --config
    files: [{ arg: 'data', role: 'in-dir' }, { arg: 'config', role: 'in' }, { arg: 'resume', role: 'inout' }, { arg: 'out', role: 'out' }],
  },
  async run(a: ParsedArgs, io: Io): Promise<number> {
    const out = required(a, 'out', 'train');
    const epochs = num(a, 'epochs', 10), batchSize = num(a, 'batch-size', 32), lr = num(a, 'lr', 0.05), seed = num(a, 'seed', 0);
    const { train: trainSet, test } = await loadIdxDir(required(a, 'data', 'train'));
    const resume = str(a, 'resume');
    let model: RepVGG | MobileOne;
    let startStep = 0;
    let configJson: string;
    if (resume !== undefined) {
      // any checkpoint format, errors naming the file; step and config come from safetensors metadata
      // (a .pth has none: it resumes at step 0)
      const file = readCheckpointFile(resume);
      model = classifierFromStateDict(file.entries, { dtype: 'float32' });
      if (model.deploy) throw new Error(`'${resume}' is a deploy checkpoint; training needs the training-time one`);
      startStep = parseNumberArg(file.metadata.step ?? '0', 'index', `checkpoint '${resume}': metadata 'step'`);
      configJson = file.metadata.config ?? '';
      io.err(`resuming from ${resume} at step ${startStep}`);
    } else {
      const cfg = a.flags.has('arch') || a.flags.has('config') ? configFromArgs(a, 'train').config : DEMO_CONFIG;
      model = modelFromConfig(cfg, { seed });
      configJson = JSON.stringify(cfg);
    }
    model.setAlgorithm(oneOf(str(a, 'train-algorithm', 'im2col'), ['im2col', 'auto', 'direct', 'winograd'] as const, '--train-algorithm'));
    checkLabels(test.y, model.numClasses, 'test label'); // before training, as the training labels are
    const totalSteps = Math.ceil(trainSet.x.shape[0] / batchSize) * epochs;
    if (startStep >= totalSteps) {
      io.out(`nothing to do: '${resume}' is already at step ${startStep}, and ${epochs} epochs of ${Math.ceil(trainSet.x.shape[0] / batchSize)} steps end at step ${totalSteps}; wrote nothing (raise --epochs to train further)`);
      return 0;
    }
    const [, C, H, W] = trainSet.x.shape;
    if (model.inChannels !== C) throw new Error(`the model takes ${model.inChannels} input channels but the data has ${C} (${H}×${W} images); use a config with "in_channels": ${C}`);
    const save = (step: number, epoch: number) => writeSafetensorsFile(out, stateDict(model), { config: configJson, step: String(step), epoch: String(epoch), seed: String(seed), lr: String(lr) });
    // one writer per checkpoint: a second `train --resume` on it is refused while this one runs
    const run = await withLock(out, () => trainWithProgress(model, trainSet, { epochs, batchSize, lr, seed, startStep, onEpoch: (e, step) => save(step, e.epoch + 1) }, io));
    const acc = accuracy(predict(model.setAlgorithm('auto'), test.x), test.y);
    io.out(`test accuracy ${(100 * acc).toFixed(2)}% on ${test.x.shape[0]} images; ${run.seconds.toFixed(1)} s training (${run.imagesPerSecond.toFixed(0)} images/s); wrote ${out}`);
    return 0;
  },
};
