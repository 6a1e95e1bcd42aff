// How a layer inside a branch describes itself to the one fuser (src/reparam/fuse.ts), so that the
// fuser needs no list of layer classes: a new layer type implements Module.fuseStage() and fuses.
//   conv:      y = W ⊛ pad(x) + b (stride, dilation, groups as given)
//   bn:        y = BN(x), with `pad` more pixels of border whose value is BN(0) (DBB's BNAndPad); any
//              per-channel x ↦ γ·x + β is one too (affineAsBN: FastViT's layer scale); `what` for traces
//   avgpool:   y = AvgPool_k(x), each channel its own (the fuser makes its 1/k² kernel)
//   border:    y = x with `pad` pixels of border holding per-channel `values` (ChannelPad2d)
//   nonlinear: no single conv represents it (ReLU, SiLU, SE): the fuser refuses it by name
import type { Tensor } from '../tensor/tensor.js';
import type { Padding, Pair } from '../ops/conv2d_geometry.js';
import type { BatchNorm2d } from './layers.js';

export type FuseStage =
  | { kind: 'conv'; weight: Tensor; bias: Tensor | null; padding: Padding; stride: Pair; dilation: Pair; groups: number; what: string }
  | { kind: 'bn'; bn: BatchNorm2d; pad: number; statsAt: string; what?: string }
  | { kind: 'avgpool'; kernel: number; stride: number; padding: number }
  | { kind: 'border'; pad: readonly [number, number]; values: Float64Array }
  | { kind: 'nonlinear' };
