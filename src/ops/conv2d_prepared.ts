// A conv's weights prepared for the algorithms that run it, made once per weight version: Winograd's
// transformed filters U (per tile; U is prepared for the GEMM on first use), im2col's filters
// prepared for the GEMM, and a copy in shared memory where the pool's workers read the weights.
// One object per conv owns them: Conv2d keeps one for its weights (kept: from the second call on,
// what it prepares stays resident in each thread's kernel memory), 'auto' makes one for the
// candidates it times and releases it, conv2d() takes one as an option (the bench's way to time a
// deploy conv). At the first call im2col packs its filters in the GEMM, as a plain call does, and
// Winograd's are copied block by block into the kernel's scratch: a one-shot run makes no prepared
// copy of its weights and grows no kernel memory for them (first-touched memory is the dearest part
// of a one-shot run; docs/performance.md).

import { Tensor, sharedArrayLike } from '../tensor/tensor.js';
import { type PreparedFilters, releaseFilters, takesPreparedFilters } from '../backend/gemm.js';
import { isShared, poolStats } from '../backend/threads.js';
import type { ConvGeometry } from './conv2d_geometry.js';
import { im2colFilters } from './conv2d_im2col.js';
import { type WinogradTile, type WinogradWeights, winogradWeights } from './conv2d_winograd.js';

export class PreparedConv {
  /** the weights (tensor and version) everything here was made from */
  private source: Tensor | null = null;
  private version = -1;
  private readonly winograd = new Map<WinogradTile, WinogradWeights>();
  private im2col: PreparedFilters | undefined;
  private shared: Tensor | null = null;
  /** calls that asked for prepared filters since the weights changed */
  private calls = 0;

  /** kept: used call after call (a module's weights), so the prepared filters stay resident from the second call */
  constructor(readonly kept: boolean) {}

  // the prepared filters made so far
  private *filters(): Generator<PreparedFilters> {
    for (const U of this.winograd.values()) if (U.panels !== undefined) yield U.panels;
    if (this.im2col !== undefined) yield this.im2col;
  }

  // counts a call; at the second, what is prepared becomes resident (and what is prepared later is made so)
  private use(): boolean {
    this.calls++;
    const resident = this.kept && this.calls >= 2;
    if (resident) for (const p of this.filters()) p.panels.kept = true;
    return resident;
  }

  /**
   * This object for weights `w` at `version` (a Parameter's, bumped by every in-place edit): what it
   * holds for other weights, or an older version, is released first.
   */
  for(w: Tensor, version: number): this {
    if (w !== this.source || version !== this.version) {
      this.release();
      this.source = w;
      this.version = version;
    }
    return this;
  }

  private weights(): Tensor {
    if (this.source === null) throw new Error('PreparedConv: call for(weights, version) first');
    return this.source;
  }

  /** Winograd's U for this tile (w: (F, C/g, 3, 3) → (groups, α², F/g, C/g)). */
  winogradFilters(g: ConvGeometry, tile: WinogradTile): WinogradWeights {
    const resident = this.use();
    let U = this.winograd.get(tile);
    if (U === undefined) {
      U = { ...winogradWeights(this.weights().data, g.F, g.Cg, g.groups, tile), kept: resident };
      this.winograd.set(tile, U);
    }
    return U;
  }

  /** im2col's filters prepared for the GEMM, where the selected kernel takes them (else undefined: it packs A itself). */
  im2colFilters(g: ConvGeometry): PreparedFilters | undefined {
    const w = this.weights();
    if (!takesPreparedFilters(w.data)) return undefined;
    const resident = this.use();
    // a kept conv's first call packs its filters in the GEMM, as a plain call does: a one-shot run
    // makes no prepared copy of its weights
    if (this.kept && !resident) return undefined;
    this.im2col ??= im2colFilters(g, w.data as Float32Array, resident);
    return this.im2col;
  }

  /** The weights where the pool's workers can read them: themselves if shared, else one copy in shared memory. */
  poolWeights(): Tensor {
    const w = this.weights();
    if (isShared(w.data)) return w;
    if (this.shared === null) {
      const copy = sharedArrayLike(w.size, w.data);
      copy.set(w.data);
      poolStats.copiedBytes += copy.byteLength;
      this.shared = new Tensor(copy, w.shape);
    }
    return this.shared;
  }

  /**
   * Gives back the prepared filters' place in the kernel's memory and forgets everything. In the
   * reverse order of first use where it can (Winograd's tiles, then im2col's: the order in which
   * 'auto' first runs its candidates is the reverse), so that the memory shrinks back.
   */
  release(): void {
    for (const U of [...this.winograd.values()].reverse()) if (U.panels !== undefined) releaseFilters(U.panels);
    if (this.im2col !== undefined) releaseFilters(this.im2col);
    this.winograd.clear();
    this.im2col = undefined;
    this.shared = null;
    this.source = null;
    this.version = -1;
    this.calls = 0;
  }
}
