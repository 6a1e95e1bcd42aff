// BatchNorm2d's passes on the SIMD kernels (batchnorm_simd.ts): the float32 arrays of one call are
// copied into kernel memory once, above the arena, and each pass reads them there; the statistics
// are bit for bit what the TypeScript passes in src/ops/batchnorm.ts compute, the outputs and input
// gradients their float32 counterparts (batchnorm_simd.ts).

import { getInstance, scratchAbove, simdStats, type Instance } from './instance.js';

const up4 = (n: number): number => Math.ceil(n / 4) * 4;

// floats from one array's start to the next: each is followed by three planes the sums may read
// past its last channel (lanes unused)
const arrayStride = (N: number, C: number, P: number): number => up4(N * C * P + 3 * P);

/** One BN call's arrays (N, C, P) in kernel memory: `inputs` copied in at construction (null: already there). */
export class BatchNormSimd {
  private readonly inst: Instance;
  private readonly at: number[] = [];
  private readonly outW: number;
  private readonly tableW: number;
  private readonly size: number;
  private readonly quads: number;

  // base: where its arrays start (a float offset; default just above the arena)
  constructor(private readonly N: number, private readonly C: number, private readonly P: number, inputs: (Float32Array | null)[], base?: number) {
    const inst = this.inst = getInstance();
    this.size = N * C * P;
    this.quads = Math.ceil(C / 4);
    const stride = arrayStride(N, C, P);
    let w = base ?? inst.arenaEnd;
    for (let j = 0; j <= inputs.length; j++, w += stride) this.at.push(w); // the inputs, then the output
    this.tableW = w;
    this.outW = w + 16 * this.quads * 4; // table: up to 8 float64 per channel (16 floats)
    const end = this.outW + 16 * this.quads * 4;
    const mem = scratchAbove(end - inst.arenaEnd);
    for (let j = 0; j < inputs.length; j++) {
      const a = inputs[j];
      if (a === null) continue;
      mem.set(a, this.at[j]);
      simdStats.bytesCopied += 4 * this.size;
    }
  }

  private f64(at: number, n: number): Float64Array {
    return new Float64Array(this.inst.f32.buffer, 4 * at, n);
  }

  /** sum[c] = Σ x over (n, i), or with `mean`, Σ (x − mean[c])² (input 0), over images [n0, n1) */
  sums(out: Float64Array, mean: Float64Array | undefined, n0: number, n1: number): void {
    const { C, P, quads } = this;
    if (mean !== undefined) this.f64(this.tableW, C).set(mean);
    (mean === undefined ? this.inst.bn.sums : this.inst.bn.squares)(4 * (this.at[0] + n0 * C * P), quads, n1 - n0, 4 * P, 4 * C * P, 4 * P, 4 * this.outW, 4 * this.tableW);
    out.set(this.f64(this.outW, C));
  }

  // (scale, shift) per channel in the table, as bnNormalize and bnAccumulate read them
  private scaleShiftTable(scale: Float64Array, shift: Float64Array): void {
    const t = this.f64(this.tableW, 2 * this.C);
    for (let c = 0; c < this.C; c++) {
      t[2 * c] = scale[c];
      t[2 * c + 1] = shift[c];
    }
  }

  /** y = x·scale[c] + shift[c] (input 0) */
  normalize(scale: Float64Array, shift: Float64Array, y: Float32Array): void {
    const { N, C, P } = this;
    this.scaleShiftTable(scale, shift);
    const yW = this.at[1];
    this.inst.bn.normalize(4 * this.at[0], 4 * yW, N, C, 4 * P, 4 * this.tableW);
    y.set(this.inst.f32.subarray(yW, yW + this.size));
    simdStats.bytesCopied += 4 * this.size;
  }

  /** sum.out (+)= x·scale[c] + shift[c] (input 0), as bnNormalize rounds it, then ReLU (see BatchNormSumSimd) */
  accumulate(scale: Float64Array, shift: Float64Array, sum: BatchNormSumSimd, first: boolean, relu: boolean): void {
    const { N, C, P } = this;
    this.scaleShiftTable(scale, shift);
    this.inst.bn.accumulate[(first ? 2 : 0) + (relu ? 1 : 0)](4 * this.at[0], 4 * sum.out, N, C, 4 * P, 4 * this.tableW);
  }

  /** Σ dy and Σ dy·(x − μ)·invStd per channel (inputs dy, x), over images [n0, n1) */
  gradSums(mean: Float64Array, invStd: Float64Array, sumDy: Float64Array, sumDyXhat: Float64Array, n0: number, n1: number): void {
    const { C, P, quads } = this;
    const t = this.f64(this.tableW, 8 * quads);
    for (let c = 0; c < C; c++) {
      const q = c >> 2, k = c & 3;
      t[8 * q + k] = mean[c];
      t[8 * q + 4 + k] = invStd[c];
    }
    const skip = 4 * n0 * C * P;
    this.inst.bn.gradSums(4 * this.at[0] + skip, 4 * this.at[1] + skip, quads, n1 - n0, 4 * P, 4 * C * P, 4 * P, 4 * this.tableW, 4 * this.outW);
    const o = this.f64(this.outW, 8 * quads);
    for (let c = 0; c < C; c++) {
      const q = c >> 2, k = c & 3;
      sumDy[c] = o[8 * q + k];
      sumDyXhat[c] = o[8 * q + 4 + k];
    }
  }

  /** dx = k·((dy − a) − ((x − μ)·invStd)·b), each constant per channel (inputs dy, x) */
  gradInput(k: Float64Array, a: Float64Array, mean: Float64Array, invStd: Float64Array, b: Float64Array, dx: Float32Array): void {
    const { N, C, P } = this;
    const t = this.f64(this.tableW, 8 * C);
    for (let c = 0; c < C; c++) {
      t[8 * c] = k[c];
      t[8 * c + 1] = a[c];
      t[8 * c + 2] = mean[c];
      t[8 * c + 3] = invStd[c];
      t[8 * c + 4] = b[c];
    }
    const dxW = this.at[2];
    this.inst.bn.gradInput(4 * this.at[0], 4 * this.at[1], 4 * dxW, N, C, 4 * P, 4 * this.tableW);
    dx.set(this.inst.f32.subarray(dxW, dxW + this.size));
    simdStats.bytesCopied += 4 * this.size;
  }
}

/**
 * The sum of a block's branches that each end in a BN, never storing the BN outputs: `out` stays in
 * kernel memory; each branch's input is copied in above it (`branch`), its statistics found, and
 * its normalized values added (BatchNormSimd.accumulate); `result` copies the sum out.
 */
export class BatchNormSumSimd {
  readonly out: number;
  private readonly size: number;

  constructor(private readonly N: number, private readonly C: number, private readonly P: number) {
    const inst = getInstance();
    this.out = inst.arenaEnd;
    this.size = N * C * P;
  }

  /** The passes over one branch's input, laid out above the sum. */
  branch(x: Float32Array): BatchNormSimd {
    return new BatchNormSimd(this.N, this.C, this.P, [x], this.out + up4(this.size));
  }

  result(y: Float32Array): void {
    const inst = getInstance();
    y.set(inst.f32.subarray(this.out, this.out + this.size));
    simdStats.bytesCopied += 4 * this.size;
  }
}

/**
 * The gradient flowing into a block's tail (batchNormSum) kept in kernel memory for its branches'
 * BN backward passes: dy, or with the tail's ReLU output y, ReLU's gradient of it (reluGrad), found
 * once and read there by every branch instead of copied in for each.
 */
export class BatchNormSumGradSimd {
  private readonly at: number;

  constructor(private readonly N: number, private readonly C: number, private readonly P: number, dy: Float32Array, y: Float32Array | null) {
    const inst = getInstance();
    this.at = inst.arenaEnd;
    const stride = arrayStride(N, C, P), size = N * C * P;
    const mem = scratchAbove(2 * stride); // this.at: the arena's end
    mem.set(dy, this.at);
    simdStats.bytesCopied += 4 * size;
    if (y !== null) {
      mem.set(y, this.at + stride); // where the branches' inputs go next
      inst.bn.reluGrad(4 * this.at, 4 * (this.at + stride), 4 * this.at, 4 * size);
      simdStats.bytesCopied += 4 * size;
    }
  }

  /** The passes of one branch's BN backward: the gradient already in place, its input x copied in. */
  branch(x: Float32Array): BatchNormSimd {
    return new BatchNormSimd(this.N, this.C, this.P, [null, x], this.at);
  }
}
