// repvgg-ts public API.
export { Tensor, zeros, full, type DType, type FloatArray } from './tensor/tensor.js';
export { Rng, uniform } from './tensor/rng.js';
export { conv2d, conv2dBackward, type Conv2dOptions, type ConvAlgorithm, type Padding, type Pair } from './ops/conv2d.js';
export { WINOGRAD_F2, WINOGRAD_F4, winogradWeights, type WinogradMatrices, type WinogradWeights } from './ops/conv2d_winograd.js';
export { batchNorm2d, batchNorm2dBackward, type BatchNormParams, type BatchNormOptions } from './ops/batchnorm.js';
export { relu, reluBackward } from './ops/relu.js';
export { globalAvgPool, globalAvgPoolBackward } from './ops/pool.js';
export { linear, linearBackward } from './ops/linear.js';
export { softmaxCrossEntropy, softmaxCrossEntropyBackward } from './ops/loss.js';
