// In-place batch augmentations for (N, C, H, W) images.

import type { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../tensor/rng.js';

/** Mirror each image left–right with probability p. */
export function randomHorizontalFlip(x: Tensor, rng: Rng, p = 0.5): void {
  const [N, C, H, W] = x.shape;
  const d = x.data;
  for (let n = 0; n < N; n++) {
    if (rng.next() >= p) continue;
    for (let c = 0; c < C; c++) {
      for (let h = 0; h < H; h++) {
        const row = ((n * C + c) * H + h) * W;
        for (let i = 0, j = W - 1; i < j; i++, j--) {
          const t = d[row + i];
          d[row + i] = d[row + j];
          d[row + j] = t;
        }
      }
    }
  }
}

/** Translate each image by a random (dy, dx) in [−s, s]², filling with `fill` (the background). */
export function randomShift(x: Tensor, rng: Rng, s: number, fill: number): void {
  const [N, C, H, W] = x.shape;
  const d = x.data;
  const tmp = new Float64Array(H * W);
  for (let n = 0; n < N; n++) {
    const dy = rng.int(2 * s + 1) - s, dx = rng.int(2 * s + 1) - s;
    if (dy === 0 && dx === 0) continue;
    for (let c = 0; c < C; c++) {
      const off = (n * C + c) * H * W;
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          const sh = h - dy, sw = w - dx;
          tmp[h * W + w] = sh >= 0 && sh < H && sw >= 0 && sw < W ? d[off + sh * W + sw] : fill;
        }
      }
      for (let i = 0; i < H * W; i++) d[off + i] = tmp[i];
    }
  }
}
