// Argument normalisation for conv2d, following torch.nn.functional.conv2d.

import { fmtShape } from '../tensor/check.js';

export type Pair = number | readonly [number, number];
/** number | [h, w] (symmetric per axis, as PyTorch), [[top, bottom], [left, right]] (explicit, as TF.js), 'same' or 'valid'. */
export type Padding = Pair | readonly [readonly [number, number], readonly [number, number]] | 'same' | 'valid';

export interface ConvGeometry {
  N: number; C: number; H: number; W: number;
  F: number; KH: number; KW: number;
  groups: number; Cg: number; Fg: number;
  sh: number; sw: number; dh: number; dw: number;
  /** padding: top, bottom, left, right */
  pt: number; pb: number; pl: number; pr: number;
  Ho: number; Wo: number;
}

function pair(v: Pair | undefined, dflt: number, what: string, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (typeof v === 'object' && v !== null && (v as readonly number[]).length !== 2) {
    throw new Error(`conv2d: ${what} must be a number or an [h, w] pair`);
  }
  for (let i = 0; i < 2; i++) { // (indexed: called for every conv call, and for-of allocates an iterator)
    if (!Number.isInteger(p[i]) || p[i] < min) throw new Error(`conv2d: ${what} must be integers ≥ ${min}, got ${String(v)}`);
  }
  return p;
}

/** What a conv's kernel and arguments fix, whatever the input: kernel, stride, dilation, padding (top, bottom, left, right). */
export type KernelGeometry = Pick<ConvGeometry, 'KH' | 'KW' | 'sh' | 'sw' | 'dh' | 'dw' | 'pt' | 'pb' | 'pl' | 'pr'>;

// w: (F, C/g, kH, kW) → the input-independent part of the geometry
export function kernelGeometry(wShape: readonly number[], opts: { stride?: Pair; padding?: Padding; dilation?: Pair }): KernelGeometry {
  const KH = wShape[2], KW = wShape[3]; // (indexed: see convGeometry)
  const stride = pair(opts.stride, 1, 'stride', 1), dilation = pair(opts.dilation, 1, 'dilation', 1);
  const sh = stride[0], sw = stride[1], dh = dilation[0], dw = dilation[1];
  let pt: number, pb: number, pl: number, pr: number;
  const pad = opts.padding ?? 0;
  if (pad === 'valid') {
    pt = pb = pl = pr = 0;
  } else if (pad === 'same') {
    if (sh !== 1 || sw !== 1) throw new Error("conv2d: padding='same' is not supported for strided convolutions");
    // PyTorch: total = d·(k−1), left = total/2 (floor), the extra one on the bottom/right.
    const th = dh * (KH - 1), tw = dw * (KW - 1);
    pt = th >> 1; pb = th - pt; pl = tw >> 1; pr = tw - pl;
  } else if (typeof pad === 'object' && Array.isArray(pad[0])) {
    const p = pad as readonly [readonly [number, number], readonly [number, number]];
    [pt, pb] = pair(p[0], 0, 'padding', 0);
    [pl, pr] = pair(p[1], 0, 'padding', 0);
  } else {
    [pt, pl] = pair(pad as Pair, 0, 'padding', 0);
    pb = pt; pr = pl;
  }
  return { KH, KW, sh, sw, dh, dw, pt, pb, pl, pr };
}

export function convGeometry(
  xShape: readonly number[], wShape: readonly number[],
  opts: { stride?: Pair; padding?: Padding; dilation?: Pair; groups?: number },
): ConvGeometry {
  if (xShape.length !== 4) throw new Error(`conv2d: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape ${fmtShape(xShape)}`);
  if (wShape.length !== 4) throw new Error(`conv2d: weight must be 4-D (F, C/groups, kH, kW), got shape ${fmtShape(wShape)}`);
  // (shapes are frozen arrays, whose destructuring V8 runs through an iterator: indexed, as this runs
  // for every conv call)
  const N = xShape[0], C = xShape[1], H = xShape[2], W = xShape[3];
  const F = wShape[0], Cw = wShape[1], KH = wShape[2], KW = wShape[3];
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`conv2d: groups must be a positive integer, got ${groups}`);
  if (C % groups !== 0) throw new Error(`conv2d: input channels ${C} are not divisible by groups ${groups}`);
  if (F % groups !== 0) throw new Error(`conv2d: output channels ${F} (weight shape ${fmtShape(wShape)}) are not divisible by groups ${groups}`);
  if (Cw * groups !== C) {
    throw new Error(`conv2d: weight shape ${fmtShape(wShape)} expects ${Cw * groups} input channels with groups=${groups}, but input shape ${fmtShape(xShape)} has ${C}`);
  }
  if (KH < 1 || KW < 1) throw new Error(`conv2d: weight shape ${fmtShape(wShape)} has an empty kernel`);
  const { sh, sw, dh, dw, pt, pb, pl, pr } = kernelGeometry(wShape, opts);
  const effH = dh * (KH - 1) + 1, effW = dw * (KW - 1) + 1;
  const Hp = H + pt + pb, Wp = W + pl + pr;
  if (effH > Hp || effW > Wp) {
    throw new Error(`conv2d: kernel ${effH}×${effW} (dilated) is larger than the padded input ${Hp}×${Wp} (input shape ${fmtShape(xShape)})`);
  }
  const Ho = Math.floor((Hp - effH) / sh) + 1;
  const Wo = Math.floor((Wp - effW) / sw) + 1;
  return { N, C, H, W, F, KH, KW, groups, Cg: C / groups, Fg: F / groups, sh, sw, dh, dw, pt, pb, pl, pr, Ho, Wo };
}

/** Multiply-accumulates of a forward conv: N·F·Ho·Wo·(C/g)·kH·kW. */
export function convMacs(g: ConvGeometry): number {
  return g.N * g.F * g.Ho * g.Wo * g.Cg * g.KH * g.KW;
}
