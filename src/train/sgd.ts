// SGD with momentum and weight decay, as torch.optim.SGD (dampening 0, not Nesterov):
//   g ← ∇ + λ·θ;   v ← μ·v + g (v = g on the first step);   θ ← θ − η·v
// (the update itself, element by element and on threads: src/ops/sgd.ts)

import type { Parameter } from '../nn/module.js';
import { type FloatArray, allocLike, sharedArrayLike } from '../tensor/tensor.js';
import { isShared } from '../backend/threads.js';
import { type SgdArrays, sgdUpdate } from '../ops/sgd.js';

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
    const arrays: SgdArrays[] = [];
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k];
      const th = p.data.data;
      let v = this.velocity[k];
      const first = v === null;
      // beside shared values (a model built with workers), shared: the pool's threads then update it
      if (mu !== 0 && v === null) v = this.velocity[k] = isShared(th) ? sharedArrayLike(th.length, th) : allocLike(th, th.length);
      arrays.push({ theta: th, grad: p.grad.data, velocity: v, first });
      p.version++;
    }
    sgdUpdate(arrays, lr, mu, wd);
  }
}

/** Cosine annealing from lr0 to lrMin over totalSteps: η_t = ηmin + (η0 − ηmin)·(1 + cos(π·t/T))/2 */
export function cosineLR(lr0: number, step: number, totalSteps: number, lrMin = 0): number {
  const t = Math.min(Math.max(step, 0), totalSteps);
  return lrMin + ((lr0 - lrMin) * (1 + Math.cos((Math.PI * t) / Math.max(1, totalSteps)))) / 2;
}
