// Structural re-parameterization, one algebraic step per function. A "linear branch" is a conv
// kernel K (F, C/g, kH, kW) and a bias b (F): y = K ⊛ x + b. All arithmetic is float64; the result
// is rounded once into the caller's dtype. Each step is exact in real arithmetic.

import { Tensor, allocArray, type DType } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/check.js';
import { identityKernel } from '../nn/identity_kernel.js';

export interface KernelBias {
  /** (F, C/g, kH, kW) */
  kernel: Tensor;
  /** (F) */
  bias: Tensor;
}

export interface BNStats {
  gamma: Tensor;
  beta: Tensor;
  mean: Tensor;
  variance: Tensor;
  eps: number;
}

/**
 * Fold a BatchNorm (eval mode) into the conv before it. With s = γ/√(σ² + ε):
 *   BN(K ⊛ x + b) = s·(K ⊛ x + b − μ) + β  ⇒  K' = K·s (per output channel),  b' = β + (b − μ)·s
 * With b = 0 this is the familiar W' = W·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε).
 */
export function fuseConvBN(branch: KernelBias, bn: BNStats, dtype: DType = branch.kernel.dtype, inPlace = false): KernelBias {
  const K = branch.kernel;
  const F = K.shape[0];
  if (bn.gamma.size !== F) throw new Error(`fuseConvBN: BN has ${bn.gamma.size} channels but the kernel ${fmtShape(K.shape)} has ${F} outputs`);
  if (inPlace && (K.dtype !== dtype || branch.bias.dtype !== dtype)) throw new Error(`fuseConvBN: in place needs the branch in ${dtype}`);
  const per = K.size / F;
  // inPlace: the result overwrites the branch's own arrays (the fuser's intermediates: no second copy)
  const k = inPlace ? K.data : allocArray(dtype, K.size);
  const b = inPlace ? branch.bias.data : allocArray(dtype, F);
  const kin = K.data, g = bn.gamma.data, beta = bn.beta.data, mu = bn.mean.data, v = bn.variance.data, b0 = branch.bias.data;
  for (let f = 0; f < F; f++) {
    const s = g[f] / Math.sqrt(v[f] + bn.eps);
    const off = f * per;
    for (let i = off; i < off + per; i++) k[i] = kin[i] * s;
    b[f] = beta[f] + (b0[f] - mu[f]) * s;
  }
  return { kernel: new Tensor(k, K.shape), bias: new Tensor(b, [F]) };
}

/** A conv with no bias: b = 0. */
export function withZeroBias(kernel: Tensor): KernelBias {
  return { kernel, bias: new Tensor(allocArray(kernel.dtype, kernel.shape[0]), [kernel.shape[0]]) };
}

/**
 * Zero-pad a kH×kW kernel to size×size, centred: a 1×1 kernel becomes a 3×3 one with its weight at
 * the centre; 1×3 fills the middle row, 3×1 the middle column. (With padding kernel/2 on each conv,
 * the centres align, so K_small ⊛ x = pad(K_small) ⊛ x.)
 */
export function padKernel(kernel: Tensor, size = 3): Tensor {
  const [F, Cg, kh, kw] = kernel.shape;
  if (kh > size || kw > size || (size - kh) % 2 !== 0 || (size - kw) % 2 !== 0) {
    throw new Error(`padKernel: cannot centre a ${kh}×${kw} kernel (shape ${fmtShape(kernel.shape)}) in ${size}×${size}`);
  }
  const oh = (size - kh) / 2, ow = (size - kw) / 2;
  const out = allocArray(kernel.dtype, F * Cg * size * size);
  const src = kernel.data;
  if (kh === size && kw === size) { out.set(src); return new Tensor(out, [F, Cg, size, size]); } // nothing to pad: a native copy
  for (let fc = 0; fc < F * Cg; fc++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) out[fc * size * size + (i + oh) * size + j + ow] = src[fc * kh * kw + i * kw + j];
    }
  }
  return new Tensor(out, [F, Cg, size, size]);
}

/**
 * A conv with dilation r as the plain conv it equals: tap (i, j) of a kh×kw kernel reads the input r·i,
 * r·j from the window's corner, so K'[r·i, r·j] = K[i, j] on an (r(kh − 1) + 1)×(r(kw − 1) + 1) kernel,
 * zeros between (UniRepLKNet's dilated branches, merged into its large kernel). The padding stays.
 */
export function dilateKernel(kernel: Tensor, r: number): Tensor {
  const [F, Cg, kh, kw] = kernel.shape;
  const H = r * (kh - 1) + 1, W = r * (kw - 1) + 1;
  const out = allocArray(kernel.dtype, F * Cg * H * W);
  const src = kernel.data;
  for (let fc = 0; fc < F * Cg; fc++) {
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) out[(fc * H + r * i) * W + r * j] = src[(fc * kh + i) * kw + j];
  }
  return new Tensor(out, [F, Cg, H, W]);
}

/**
 * The inverse where it exists: a kernel whose every tap off the lattice r·(i, j) is zero is the
 * ((H − 1)/r + 1)×((W − 1)/r + 1) kernel of its lattice taps with dilation r (the same function on
 * any input, r² fewer multiply-adds); null when a tap off the lattice is not zero.
 */
export function undilateKernel(kernel: Tensor, r: number): Tensor | null {
  const [F, Cg, H, W] = kernel.shape;
  if ((H - 1) % r !== 0 || (W - 1) % r !== 0) return null;
  const kh = (H - 1) / r + 1, kw = (W - 1) / r + 1;
  const src = kernel.data;
  for (let fc = 0; fc < F * Cg; fc++) {
    for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) if ((i % r !== 0 || j % r !== 0) && src[(fc * H + i) * W + j] !== 0) return null;
  }
  const out = allocArray(kernel.dtype, F * Cg * kh * kw);
  for (let fc = 0; fc < F * Cg; fc++) {
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) out[(fc * kh + i) * kw + j] = src[(fc * H + r * i) * W + r * j];
  }
  return new Tensor(out, [F, Cg, kh, kw]);
}

// The identity as a conv kernel: I ⊛ x = x, a 1 at the centre tap of each channel's own input
// (in-group index i mod C/g). Defined in src/nn (IdentityConv1x1's W + I needs it, and nn sits below
// reparam); it is this file's step all the same.
export { identityKernel } from '../nn/identity_kernel.js';

/**
 * Parallel branches add: Σ (K_i ⊛ x + b_i) = (Σ K_i) ⊛ x + Σ b_i (same shapes required). inPlace: the
 * sum is accumulated into the first branch's own arrays (the same additions in the same order).
 */
export function sumBranches(branches: readonly KernelBias[], dtype: DType = branches[0].kernel.dtype, inPlace = false): KernelBias {
  const first = branches[0].kernel;
  if (inPlace && (first.dtype !== dtype || branches[0].bias.dtype !== dtype)) throw new Error(`sumBranches: in place needs the first branch in ${dtype}`);
  const k = inPlace ? first.data : allocArray(dtype, first.size);
  const b = inPlace ? branches[0].bias.data : allocArray(dtype, first.shape[0]);
  for (const br of inPlace ? branches.slice(1) : branches) {
    if (br.kernel.shape.join() !== first.shape.join()) {
      throw new Error(`sumBranches: kernel shape ${fmtShape(br.kernel.shape)} differs from ${fmtShape(first.shape)}; pad it first`);
    }
    const bk = br.kernel.data, bb = br.bias.data;
    for (let i = 0; i < k.length; i++) k[i] += bk[i];
    for (let i = 0; i < b.length; i++) b[i] += bb[i];
  }
  return { kernel: new Tensor(k, first.shape), bias: new Tensor(b, [first.shape[0]]) };
}

/**
 * A 1×1 conv (D ← C) followed by a k×k conv (E ← D), both with `groups` groups, the k×k one unpadded:
 *   K2 ⊛ (K1·x + b1) + b2 = (K2 ∘ K1) ⊛ x + (b2 + Σ_{d,taps} K2[e,d]·b1[d])
 *   with (K2 ∘ K1)[e, c, i, j] = Σ_d K2[e, d, i, j]·K1[d, c], d and c in e's group
 * (With zero padding on the k×k conv the border would see 0 instead of b1; this merge is exact for
 * the unpadded case, or when the border holds the first conv's value at 0, as DBB's BNAndPad does.)
 */
export function mergeSequential1x1kxk(first: KernelBias, second: KernelBias, dtype: DType = second.kernel.dtype, groups = 1): KernelBias {
  const [D, Cg, h1, w1] = first.kernel.shape;
  const [E, Dg, kh, kw] = second.kernel.shape;
  if (h1 !== 1 || w1 !== 1 || Dg * groups !== D || D % groups !== 0 || E % groups !== 0) {
    throw new Error(`mergeSequential1x1kxk: expected a (D, C/g, 1, 1) kernel then an (E, D/g, k, k) one with g = ${groups}, got ${fmtShape(first.kernel.shape)} and ${fmtShape(second.kernel.shape)}`);
  }
  const T = kh * kw, Eg = E / groups;
  const k = allocArray(dtype, E * Cg * T);
  const b = allocArray(dtype, E);
  const K1 = first.kernel.data, K2 = second.kernel.data, b1 = first.bias.data;
  for (let e = 0; e < E; e++) {
    const d0 = Math.floor(e / Eg) * Dg; // the first channel of e's group
    let be = second.bias.data[e];
    for (let dl = 0; dl < Dg; dl++) {
      const k2 = (e * Dg + dl) * T, k1 = (d0 + dl) * Cg;
      for (let t = 0; t < T; t++) {
        const w = K2[k2 + t];
        be += w * b1[d0 + dl];
        for (let c = 0; c < Cg; c++) k[(e * Cg + c) * T + t] += w * K1[k1 + c];
      }
    }
    b[e] = be;
  }
  return { kernel: new Tensor(k, [E, Cg, kh, kw]), bias: new Tensor(b, [E]) };
}

/**
 * AvgPool2d(k) (zeros of the padding counted) as a conv kernel (C, C/g, k, k): channel i reads its
 * own input channel (in-group index i mod C/g, as identityKernel) with weight 1/k² on every tap.
 */
export function avgPoolKernel(channels: number, groups: number, k: number, dtype: DType = 'float64'): Tensor {
  const id = identityKernel(channels, groups, dtype, 1);
  const out = allocArray(dtype, id.size * k * k);
  for (let i = 0; i < id.size; i++) if (id.data[i] !== 0) out.fill(1 / (k * k), i * k * k, (i + 1) * k * k);
  return new Tensor(out, [channels, channels / groups, k, k]);
}

/** Cast a fused branch to a dtype (float64 → float32 rounds once, to nearest). */
export function castKernelBias(kb: KernelBias, dtype: DType): KernelBias {
  return kb.kernel.dtype === dtype ? kb : { kernel: kb.kernel.to(dtype), bias: kb.bias.to(dtype) };
}
