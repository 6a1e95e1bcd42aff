// A per-channel scale, y_c = sign·γ_c·x_c: FastViT's layer scale (timm's LayerScale2d, apple's bare
// (C, 1, 1) parameter) as a stage of a branch. RepMixer computes x + γ·(mixer(x) − norm(x)); as a sum
// of branches that is x + Σ_i γ·mixer_i(x) + (−γ)·norm(x), so each of those branches ends in a
// LayerScale, all reading one γ (sign −1 on norm's). γ null: no layer scale (timm's
// layer_scale_init_value=None), the stage multiplies by `sign` alone. The stages hold no parameters
// of their own: the block lists γ once (BranchBlockOptions.shared). To the fuser a scale is a BN with
// γ = sign·γ, β = μ = 0, σ² = 1, ε = 0 (affineAsBN, as fuse-onnx sees a Mul by a constant).
import { Tensor, allocLike } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/check.js';
import type { FuseStage } from './fuse_stage.js';
import { Module, type Parameter } from './module.js';
import { affineAsBN } from './layers.js';

export class LayerScale extends Module {
  readonly gamma: Parameter | null;
  readonly sign: 1 | -1;
  readonly channels: number;
  private x: Tensor | null = null;

  constructor(channels: number, gamma: Parameter | null, sign: 1 | -1 = 1) {
    super();
    if (gamma !== null && gamma.data.size !== channels) throw new Error(`LayerScale: γ has ${gamma.data.size} values for ${channels} channels`);
    this.channels = channels;
    this.gamma = gamma;
    this.sign = sign;
  }

  /** sign·γ_c per channel, in float64 */
  scales(): Float64Array {
    const s = new Float64Array(this.channels).fill(this.sign);
    if (this.gamma !== null) for (let c = 0; c < this.channels; c++) s[c] = this.sign * this.gamma.data.data[c];
    return s;
  }

  override fuseStage(): FuseStage {
    const what = `the ${this.sign < 0 ? 'negated ' : ''}layer scale as a BN (γ = ${this.sign < 0 ? '−' : ''}${this.gamma === null ? '1' : 'γ'}, β = μ = 0, σ² = 1, ε = 0), folded: K' = K·γ, b' = b·γ`;
    return { kind: 'bn', bn: affineAsBN(this.scales(), new Float64Array(this.channels)), pad: 0, statsAt: '', what };
  }

  // x: (N, C, H, W) → y: (N, C, H, W), y[n, c] = sign·γ_c·x[n, c] (one rounding: sign·γ_c is exact)
  forward(x: Tensor): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== this.channels) throw new Error(`LayerScale: input ${fmtShape(x.shape)} is not (N, ${this.channels}, H, W)`);
    this.x = x;
    return scaleEach(x, this.scales());
  }

  // dy: (N, C, H, W) → dx = sign·γ_c·dy; dγ_c += sign·Σ_{n,h,w} dy·x
  backward(dy: Tensor): Tensor {
    const x = this.x;
    if (x === null) throw new Error('LayerScale.backward: call forward first');
    if (this.gamma !== null) {
      const [N, C, H, W] = x.shape, P = H * W;
      const g = new Tensor(new Float64Array(C), [C]);
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const off = (n * C + c) * P;
          for (let p = off; p < off + P; p++) acc += dy.data[p] * x.data[p];
        }
        g.data[c] = this.sign * acc;
      }
      this.gamma.accumulate(g);
    }
    return scaleEach(dy, this.scales());
  }
}

// t: (N, C, H, W) → t[n, c]·s[c], in t's dtype (float32: the exact product rounded once)
function scaleEach(t: Tensor, s: Float64Array): Tensor {
  const [N, C, H, W] = t.shape, P = H * W;
  const out = new Tensor(allocLike(t.data, t.size), t.shape);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const off = (n * C + c) * P, k = s[c];
      for (let p = off; p < off + P; p++) out.data[p] = t.data[p] * k;
    }
  }
  return out;
}
