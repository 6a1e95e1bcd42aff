import { statSync } from 'node:fs';
import { type ParsedArgs, num, required } from './args.js';
import { readNpyFile } from './files.js';
import { loadIdxDir } from './data.js';
import { CALIBRATION_IMAGES } from './training.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * --calib X.npy (N, C, H, W) images, or --calib DATA, an IDX folder (the training images, normalized
 * as `train` and `demo` feed them), the first --calib-count of them (default: all of an .npy, 256 of a
 * folder), as float32 (quantize and quant-report). `channels`: the model's input channels, when known;
 * `rank` 3: (N, C, L) sequences, for a 1-D graph.
 */
export async function readCalibration(a: ParsedArgs, cmd: string, channels?: number, rank: 3 | 4 = 4): Promise<Tensor> {
  const path = required(a, 'calib', cmd);
  let folder = false;
  try { folder = statSync(path).isDirectory(); } catch { /* missing: reported by the reader */ }
  const x = folder ? (await loadIdxDir(path)).train.x : readNpyFile(path);
  if (x.shape.length !== rank || (channels !== undefined && x.shape[1] !== channels)) throw new Error(`--calib: expected ${rank === 4 ? `(N, ${channels ?? 'C'}, H, W) images` : `(N, ${channels ?? 'C'}, L) sequences (the graph's input is 1-D)`}, got shape [${x.shape.join(', ')}]`);
  if (x.shape[0] === 0) throw new Error('--calib: the calibration file holds no images');
  const n = num(a, 'calib-count', folder ? Math.min(CALIBRATION_IMAGES, x.shape[0]) : x.shape[0]);
  if (n > x.shape[0]) throw new Error(`--calib-count ${n}: the calibration ${folder ? 'folder' : 'file'} holds ${x.shape[0]} images`);
  const first = n < x.shape[0] ? new Tensor(x.data.subarray(0, (n * x.size) / x.shape[0]), [n, ...x.shape.slice(1)]) : x;
  return first.to('float32');
}
