// BatchNorm2d, as torch.nn.functional.batch_norm over NCHW: per channel c,
//   y = γ·(x − μ)/√(σ² + ε) + β
// training: μ, σ² are the batch statistics over (N, H, W) (σ² biased), and the running statistics
// move by momentum: r ← (1 − m)·r + m·stat, with the unbiased σ²·M/(M − 1) for running_var;
// eval: μ, σ² are the running statistics. Statistics are computed in float64.

import { Tensor, allocLike } from '../tensor/tensor.js';
import { expectRank, expectSameDtype, fmtShape } from '../tensor/check.js';

export interface BatchNormParams {
  /** γ: (C) or null for affine=False */
  weight: Tensor | null;
  /** β: (C) or null */
  bias: Tensor | null;
  /** (C), updated in place in training mode */
  runningMean: Tensor;
  /** (C), updated in place in training mode */
  runningVar: Tensor;
}

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

export interface BatchNormResult {
  y: Tensor;
  /** μ used per channel (batch or running) */
  mean: Float64Array;
  /** 1/√(σ² + ε) used per channel */
  invStd: Float64Array;
}

function checkBN(x: Tensor, p: BatchNormParams): number {
  expectRank(x, 4, 'batch_norm input');
  const C = x.shape[1];
  const named: [string, Tensor | null][] = [['weight', p.weight], ['bias', p.bias], ['running_mean', p.runningMean], ['running_var', p.runningVar]];
  for (const [name, t] of named) {
    if (t !== null && (t.shape.length !== 1 || t.shape[0] !== C)) {
      throw new Error(`batch_norm: ${name} shape ${fmtShape(t.shape)} does not match ${C} channels of input shape ${fmtShape(x.shape)}`);
    }
    if (t !== null) expectSameDtype(x, t, 'batch_norm input', `batch_norm ${name}`);
  }
  return C;
}

// x: (N, C, H, W) → y: (N, C, H, W)
export function batchNorm2d(x: Tensor, p: BatchNormParams, opts: BatchNormOptions): BatchNormResult {
  const C = checkBN(x, p);
  const [N, , H, W] = x.shape;
  const P = H * W;
  const M = N * P;
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const xd = x.data;
  const mean = new Float64Array(C);
  const invStd = new Float64Array(C);
  if (opts.training) {
    if (M <= 1) throw new Error(`batch_norm: expected more than 1 value per channel when training, got input shape ${fmtShape(x.shape)}`);
    const rm = p.runningMean.data, rv = p.runningVar.data;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) {
        const off = (n * C + c) * P;
        for (let i = 0; i < P; i++) s += xd[off + i];
      }
      const mu = s / M;
      let ss = 0;
      for (let n = 0; n < N; n++) {
        const off = (n * C + c) * P;
        for (let i = 0; i < P; i++) {
          const d = xd[off + i] - mu;
          ss += d * d;
        }
      }
      const variance = ss / M;
      mean[c] = mu;
      invStd[c] = 1 / Math.sqrt(variance + eps);
      rm[c] = (1 - momentum) * rm[c] + momentum * mu;
      rv[c] = (1 - momentum) * rv[c] + momentum * (ss / (M - 1));
    }
  } else {
    for (let c = 0; c < C; c++) {
      mean[c] = p.runningMean.data[c];
      invStd[c] = 1 / Math.sqrt(p.runningVar.data[c] + eps);
    }
  }
  const y = allocLike(xd, xd.length);
  for (let c = 0; c < C; c++) {
    const scale = (p.weight === null ? 1 : p.weight.data[c]) * invStd[c];
    const shift = (p.bias === null ? 0 : p.bias.data[c]) - mean[c] * scale;
    for (let n = 0; n < N; n++) {
      const off = (n * C + c) * P;
      for (let i = 0; i < P; i++) y[off + i] = xd[off + i] * scale + shift;
    }
  }
  return { y: new Tensor(y, x.shape), mean, invStd };
}

export interface BatchNormGrads {
  dx: Tensor;
  dweight: Tensor | null;
  dbias: Tensor | null;
}

// dy: (N, C, H, W) → dx: (N, C, H, W), dγ: (C), dβ: (C), with x̂ = (x − μ)·invStd:
//   dβ = Σ dy,  dγ = Σ dy·x̂
//   eval:     dx = γ·invStd·dy
//   training: dx = γ·invStd·(dy − dβ/M − x̂·dγ/M)   (μ and σ² depend on x)
export function batchNorm2dBackward(
  dy: Tensor, x: Tensor, weight: Tensor | null, saved: { mean: Float64Array; invStd: Float64Array }, training: boolean,
): BatchNormGrads {
  const [N, C, H, W] = x.shape;
  if (dy.shape.length !== 4 || dy.shape[0] !== N || dy.shape[1] !== C || dy.shape[2] !== H || dy.shape[3] !== W) {
    throw new Error(`batch_norm backward: grad_output shape ${fmtShape(dy.shape)} does not match input shape ${fmtShape(x.shape)}`);
  }
  const P = H * W;
  const M = N * P;
  const xd = x.data, g = dy.data;
  const dx = allocLike(xd, xd.length);
  const dweight = allocLike(xd, C);
  const dbias = allocLike(xd, C);
  for (let c = 0; c < C; c++) {
    const mu = saved.mean[c], is = saved.invStd[c];
    let sb = 0, sg = 0;
    for (let n = 0; n < N; n++) {
      const off = (n * C + c) * P;
      for (let i = 0; i < P; i++) {
        const d = g[off + i];
        sb += d;
        sg += d * (xd[off + i] - mu) * is;
      }
    }
    dbias[c] = sb;
    dweight[c] = sg;
    const k = (weight === null ? 1 : weight.data[c]) * is;
    for (let n = 0; n < N; n++) {
      const off = (n * C + c) * P;
      if (training) {
        for (let i = 0; i < P; i++) dx[off + i] = k * (g[off + i] - sb / M - (xd[off + i] - mu) * is * (sg / M));
      } else {
        for (let i = 0; i < P; i++) dx[off + i] = k * g[off + i];
      }
    }
  }
  return {
    dx: new Tensor(dx, x.shape),
    dweight: weight === null ? null : new Tensor(dweight, [C]),
    dbias: new Tensor(dbias, [C]),
  };
}
