// SGD with momentum and weight decay, as torch.optim.SGD (dampening 0, not Nesterov):
//   g ← ∇ + λ·θ;   v ← μ·v + g (v = g on the first step);   θ ← θ − η·v

import type { Parameter } from '../nn/module.js';
import type { FloatArray } from '../tensor/tensor.js';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

export class SGD {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  private readonly params: Parameter[];
  private readonly velocity: (FloatArray | null)[];

  constructor(params: Parameter[], opts: SGDOptions) {
    if (!(opts.lr >= 0)) throw new Error(`SGD: lr must be ≥ 0, got ${opts.lr}`);
    this.params = params;
    this.lr = opts.lr;
    this.momentum = opts.momentum ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.velocity = params.map(() => null);
  }

  step(): void {
    const { lr, momentum: mu, weightDecay: wd } = this;
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k];
      const th = p.data.data, g = p.grad.data;
      let v = this.velocity[k];
      const first = v === null;
      if (mu !== 0 && v === null) v = this.velocity[k] = th instanceof Float64Array ? new Float64Array(th.length) : new Float32Array(th.length);
      // one loop per case (no branch inside): d = ∇ + λθ, then v = μv + d after the first step
      const n = th.length;
      if (v === null) {
        for (let i = 0; i < n; i++) th[i] -= lr * (g[i] + wd * th[i]);
      } else if (first) {
        for (let i = 0; i < n; i++) {
          const d = g[i] + wd * th[i];
          v[i] = d;
          th[i] -= lr * d;
        }
      } else {
        for (let i = 0; i < n; i++) {
          const d = mu * v[i] + (g[i] + wd * th[i]);
          v[i] = d;
          th[i] -= lr * d;
        }
      }
      p.version++;
    }
  }
}

/** Cosine annealing from lr0 to lrMin over totalSteps: η_t = ηmin + (η0 − ηmin)·(1 + cos(π·t/T))/2 */
export function cosineLR(lr0: number, step: number, totalSteps: number, lrMin = 0): number {
  const t = Math.min(Math.max(step, 0), totalSteps);
  return lrMin + ((lr0 - lrMin) * (1 + Math.cos((Math.PI * t) / Math.max(1, totalSteps)))) / 2;
}
