// Winograd's minimal filtering matrices F(m×m, 3×3) (Lavin & Gray 2016; src/ops/conv2d_winograd.ts
// explains them): y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A. One definition for the TypeScript transforms in
// src/ops and the SIMD kernels in ./wasm, which must compute with the same numbers.

export interface WinogradMatrices {
  /** output tile size m */
  m: number;
  /** α = m + 2 */
  alpha: number;
  /** Bᵀ: α×α, input transform */
  BT: readonly number[][];
  /** G: α×3, filter transform */
  G: readonly number[][];
  /** Aᵀ: m×α, output transform */
  AT: readonly number[][];
}

// F(2, 3), points 0, 1, −1, ∞.
export const WINOGRAD_F2: WinogradMatrices = {
  m: 2,
  alpha: 4,
  BT: [
    [1, 0, -1, 0],
    [0, 1, 1, 0],
    [0, -1, 1, 0],
    [0, 1, 0, -1],
  ],
  G: [
    [1, 0, 0],
    [1 / 2, 1 / 2, 1 / 2],
    [1 / 2, -1 / 2, 1 / 2],
    [0, 0, 1],
  ],
  AT: [
    [1, 1, 1, 0],
    [0, 1, -1, -1],
  ],
};

// F(4, 3), points 0, 1, −1, 2, −2, ∞.
export const WINOGRAD_F4: WinogradMatrices = {
  m: 4,
  alpha: 6,
  BT: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
  G: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
  AT: [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
  ],
};

