// repvgg-ts public API. Everything here runs in browsers and Node alike (no Node-only APIs).

// tensors
export { Tensor, zeros, full, type DType, type FloatArray } from './tensor/tensor.js';
export { Rng, uniform } from './tensor/rng.js';

// ops (forward and backward)
export { conv2d, conv2dBackward, type Conv2dOptions, type Conv2dGrads, type ConvAlgorithm, type Padding, type Pair } from './ops/conv2d.js';
export { WINOGRAD_F2, WINOGRAD_F4, winogradWeights, type WinogradMatrices, type WinogradWeights } from './ops/conv2d_winograd.js';
export { batchNorm2d, batchNorm2dBackward, type BatchNormParams, type BatchNormOptions } from './ops/batchnorm.js';
export { relu, reluBackward } from './ops/relu.js';
export { globalAvgPool, globalAvgPoolBackward, avgPool2d, avgPool2dBackward, type AvgPoolOptions } from './ops/pool.js';
export { sigmoid, sigmoidBackward, silu, siluBackward } from './ops/sigmoid.js';
export { linear, linearBackward } from './ops/linear.js';
export { softmaxCrossEntropy, softmaxCrossEntropyBackward } from './ops/loss.js';

// threads (one worker pool; results are bitwise identical for every count)
export { setThreads, getThreads } from './backend/threads.js';
// GEMM kernels: 'wasm' (WebAssembly SIMD, default where available) or 'js' (the TypeScript reference)
export { setBackend, getBackend, setFusedMultiplyAdd, getFusedMultiplyAdd, type Backend } from './backend/backend.js';

// modules and models
export { Module, Parameter } from './nn/module.js';
export { Conv2d, BatchNorm2d, ReLU, SiLU, Identity, AvgPool2d, Linear } from './nn/layers.js';
export { RepVGG, RepVGGBlock, ConvBN, type AlgorithmPlanEntry } from './nn/repvgg.js';
export { ZOO, zooConfig, planFromConfig, countPlan, type RepVGGConfig, type RepVGGPlan, type BlockSpec, type Counts } from './nn/config.js';
export { DiracConv2d, VARIANTS, variantBlock, type VariantName, type VariantBlockOptions } from './nn/variants.js';
export { BranchBlock, FusedBlock, type Activation, type LinearBranches, type BranchBlockOptions } from './nn/branch_block.js';
export { FAMILIES, familyBlock, deployKey, mobileOneBlock, repConv, qaRepVGGBlock, dbbBlock, repvggSEBlock, acbBlock, largeKernelBlock, repMixerBlock, repCPEBlock, type FamilyOptions, type FamilySpec } from './nn/families.js';
export { LayerScale } from './nn/layer_scale.js';
export { SqueezeExcite } from './nn/squeeze_excite.js';
export { BNAndPad, IdentityConv1x1 } from './nn/dbb_layers.js';
export { VariantNet } from './nn/variant_net.js';
export { StageNet, type BlockBuilder, type ModelOptions } from './nn/stage_net.js';
export { ResidualReorg, BasicBlock } from './nn/residual_reorg.js';
export { MobileOne, MOBILEONE_ZOO, mobileOnePlan, countMobileOne, type MobileOneConfig, type MobileOnePlan, type MobileOneBlockSpec, type MobileOneOptions, type MobileOneCounts } from './nn/mobileone.js';

// the fuser
export { fuseConvBN, padKernel, identityKernel, sumBranches, mergeSequential1x1kxk, avgPoolKernel, withZeroBias, type KernelBias, type BNStats } from './reparam/kernels.js';
export { fuseLinearBranches } from './reparam/fuse.js';
export { convert, fuseRepVGGBlock, repvggFusionSteps, type RepVGGFusionSteps } from './reparam/repvgg.js';
export { fuseBranchBlock, deployBlock, convertMobileOne } from './reparam/branches.js';

// checkpoints and arrays
export { parseSafetensors, serializeSafetensors, SafetensorsError, type SafeEntry, type SafeFile } from './io/safetensors.js';
export { parseNpy, serializeNpy, NpyError } from './io/npy.js';
export { stateDict, loadStateDict, modelFromStateDict, planFromStateDict, classifierFromStateDict, mobileOnePlanFromStateDict } from './io/state_dict.js';
export { compareArrays, ulpDistance, type Comparison } from './io/compare.js';
export { parseCheckpoint, parseRawCheckpoint, serializeCheckpoint, checkpointFormat, WRAPPER_KEYS, type Checkpoint, type CheckpointFormat } from './io/checkpoint.js';
export { serializePth } from './io/pth.js';
export { renameKeys, detectDialect, DIALECTS, type Dialect } from './io/dialects.js';
export { toOnnx, type OnnxOptions } from './io/onnx.js';
export { readOnnx, OnnxError, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo, type ReadOnnxOptions } from './io/onnx_read.js';
export { fuseOnnx, type FuseOnnxResult, type FusedPattern, type SkippedPattern } from './onnx/fuse.js';
export { checkFused, fuseBound, probeShape, type FuseCheck } from './onnx/check.js';
export { onnxProtoOf } from './io/onnx.js';
export { runOnnx, unsupportedNodes, SUPPORTED_OPS, OnnxRunError, type RunOnnxOptions, type Value as OnnxValue } from './onnx/run.js';
export { quantizeOnnx, type QuantizeOptions, type QuantizedLayer } from './onnx/quantize.js';
export { quantReport, weightSqnr, type LayerQuantReport } from './onnx/quant_report.js';
export { fuseStateDictBlocks, type FuseBlocksOptions, type FusedStateDictBlock } from './reparam/state_dict_blocks.js';
export { VERSION } from './version.js';

// training
export { SGD, cosineLR } from './train/sgd.js';
export { fit, predict, accuracy, type Dataset, type FitOptions, type EpochStats } from './train/fit.js';
export { parseIdx, gunzipIfNeeded, idxToDataset } from './train/idx.js';
export { randomHorizontalFlip, randomShift } from './train/augment.js';
