import { type ParsedArgs, num, required } from './args.js';
import { readNpyFile } from './files.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * --calib X.npy (N, C, H, W) images, the first --calib-count of them, as float32 (quantize and
 * quant-report). `channels`: the model's input channels, when the command knows them.
 */
export function readCalibration(a: ParsedArgs, cmd: string, channels?: number): Tensor {
  const x = readNpyFile(required(a, 'calib', cmd));
  if (x.shape.length !== 4 || (channels !== undefined && x.shape[1] !== channels)) throw new Error(`--calib: expected (N, ${channels ?? 'C'}, H, W) images, got shape [${x.shape.join(', ')}]`);
  if (x.shape[0] === 0) throw new Error('--calib: the calibration file holds no images');
  const n = num(a, 'calib-count', x.shape[0]);
  if (n > x.shape[0]) throw new Error(`--calib-count ${n}: the calibration file holds ${x.shape[0]} images`);
  const first = n < x.shape[0] ? new Tensor(x.data.subarray(0, (n * x.size) / x.shape[0]), [n, ...x.shape.slice(1)]) : x;
  return first.to('float32');
}
