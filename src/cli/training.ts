// Training with a progress bar, shared by demo, train and ablate.

import type { Io } from './command.js';
import { clock, progressBar } from './progress.js';
import { exitInterrupted } from './files.js';
import { type Dataset, type EpochStats, type FitOptions, fitAsync } from '../train/fit.js';
import type { Module } from '../nn/module.js';
import type { RepVGG } from '../nn/repvgg.js';
import { Tensor } from '../tensor/tensor.js';
import { readOnnx } from '../io/onnx_read.js';
import { toOnnx } from '../io/onnx.js';
import { quantizeOnnx } from '../onnx/quantize.js';
import { runOnnx } from '../onnx/run.js';
import { accuracy } from '../train/fit.js';

export interface TrainResult {
  history: EpochStats[];
  /** [step, loss] for every step */
  stepLosses: [number, number][];
  seconds: number;
  imagesPerSecond: number;
}

export async function trainWithProgress(model: Module, data: Dataset, opts: FitOptions, io: Io, label = 'train'): Promise<TrainResult> {
  const stepLosses: [number, number][] = [];
  const t0 = performance.now();
  let images = 0, lastDraw = 0, smooth = NaN, trialSaid = false;
  // Ctrl-C or SIGTERM between batches: remove temporary files and locks, keep the last complete
  // checkpoint, exit 130/143 (fitAsync returns to the event loop often enough for this to run).
  const onSignal = (sig: NodeJS.Signals) => {
    io.progress('');
    exitInterrupted(sig, `${label}: interrupted by ${sig}; the last checkpoint written is complete`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let history: EpochStats[];
  try {
    history = await fitAsync(model, data, {
      ...opts,
      onStep: (s) => {
        images += s.images;
        stepLosses.push([s.step, s.loss]);
        if (s.halves !== null && !trialSaid) { // the two threads' trial, once (the same bits either way)
          trialSaid = true;
          io.progress('');
          const how = s.halves.byHalves ? 'by halves of the batch, one on each thread' : 'on this thread, the blocks\' dW on the other';
          io.err(`${label}: two threads: steps ${how} (a median step of the trial ${s.halves.halvesMs.toFixed(1)} ms by halves, ${s.halves.otherMs.toFixed(1)} ms the other way; the same bits either way)`);
        }
        smooth = Number.isNaN(smooth) ? s.loss : 0.9 * smooth + 0.1 * s.loss;
        const now = performance.now();
        if (now - lastDraw > 150 || s.step === s.totalSteps) {
          lastDraw = now;
          const perEpoch = s.totalSteps / opts.epochs;
          const done = s.step - (opts.startStep ?? 0);
          const eta = ((now - t0) / 1000 / Math.max(1, done)) * (s.totalSteps - s.step);
          const name = label === 'train' ? '' : `${label} `;
          io.progress(progressBar(`${name}epoch ${s.epoch + 1}/${opts.epochs}`, (s.step - s.epoch * perEpoch) / perEpoch, `loss ${smooth.toFixed(3)} ETA ${clock(eta)}`));
        }
        opts.onStep?.(s);
      },
      onEpoch: (h, step) => {
        // one plain line per epoch as it ends (the bar above only draws on a terminal)
        io.progress('');
        const ips = images / ((performance.now() - t0) / 1000);
        io.err(`${label} epoch ${h.epoch + 1}/${opts.epochs}: loss ${h.loss.toFixed(4)}, train accuracy ${(100 * h.accuracy).toFixed(2)}%, ${ips.toFixed(0)} images/s`);
        opts.onEpoch?.(h, step);
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { history, stepLosses, seconds, imagesPerSecond: images / seconds };
}

/** Calibration images for INT8 accuracies (demo, ablate): the first of the training set, min-max ranges as `quantize` by default. */
export const CALIBRATION_IMAGES = 256;

/** The first CALIBRATION_IMAGES images of a set. */
export function calibrationBatch(x: Tensor): Tensor {
  const n = Math.min(CALIBRATION_IMAGES, x.shape[0]), per = x.size / x.shape[0];
  return new Tensor(x.data.slice(0, n * per), [n, ...x.shape.slice(1)]);
}

/** Test accuracy of a deploy network quantized (per tensor or per channel) and run as exact integers, as `quantize` and `run` do. */
export function int8Accuracy(deploy: RepVGG, calib: Tensor, test: Dataset, perChannel: boolean): number {
  const { model } = quantizeOnnx(readOnnx(toOnnx(deploy)), calib, { perChannel });
  const logits = runOnnx(model, { input: test.x }, { algorithm: 'im2col' }).get('logits')!;
  return accuracy(new Tensor(logits.data, logits.shape), test.y);
}
