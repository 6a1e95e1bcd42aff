// Augmentations against their definitions: a flip reverses every row; a shift is a translation by
// some (dy, dx) in [−s, s]² with the fill value where nothing was shifted in.
import { describe, expect, it } from 'vitest';
import { randomHorizontalFlip, randomShift } from '../../src/train/augment.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';

// distinct values, so every pixel's origin is recoverable
const image = (N: number, C: number, H: number, W: number) => new Tensor(Float32Array.from({ length: N * C * H * W }, (_, i) => i + 1), [N, C, H, W]);

describe('randomHorizontalFlip', () => {
  for (const W of [5, 6]) {
    it(`p = 1 reverses every row exactly (width ${W}), p = 0 changes nothing`, () => {
      const x = image(2, 2, 3, W), orig = x.data.slice();
      randomHorizontalFlip(x, new Rng(1), 1);
      for (let r = 0; r < 2 * 2 * 3; r++) for (let j = 0; j < W; j++) expect(x.data[r * W + j]).toBe(orig[r * W + W - 1 - j]);
      const y = image(2, 2, 3, W);
      randomHorizontalFlip(y, new Rng(1), 0);
      expect(y.data).toEqual(orig);
    });
  }

  it('flips exactly the images whose draw falls below p', () => {
    const x = image(16, 1, 2, 4), orig = x.data.slice();
    randomHorizontalFlip(x, new Rng(7), 0.5);
    const draws = new Rng(7);
    let flipped = 0;
    for (let n = 0; n < 16; n++) {
      const flip = draws.next() < 0.5;
      flipped += flip ? 1 : 0;
      for (let h = 0; h < 2; h++) for (let j = 0; j < 4; j++) {
        const at = (n * 2 + h) * 4;
        expect(x.data[at + j]).toBe(orig[at + (flip ? 3 - j : j)]);
      }
    }
    expect(flipped).toBeGreaterThan(0);
    expect(flipped).toBeLessThan(16);
  });
});

describe('randomShift', () => {
  it('translates each image by one (dy, dx) in [−s, s]², filling the rest', () => {
    const [N, C, H, W, s, fill] = [12, 2, 5, 6, 2, -1];
    const x = image(N, C, H, W), orig = x.data.slice();
    randomShift(x, new Rng(3), s, fill);
    const seen = new Set<string>();
    for (let n = 0; n < N; n++) {
      const match = (dy: number, dx: number) => {
        for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
          const sh = h - dy, sw = w - dx, at = ((n * C + c) * H + h) * W + w;
          const want = sh >= 0 && sh < H && sw >= 0 && sw < W ? orig[((n * C + c) * H + sh) * W + sw] : fill;
          if (x.data[at] !== want) return false;
        }
        return true;
      };
      const found: string[] = [];
      for (let dy = -s; dy <= s; dy++) for (let dx = -s; dx <= s; dx++) if (match(dy, dx)) found.push(`${dy},${dx}`);
      expect(found, `image ${n}`).toHaveLength(1);
      seen.add(found[0]);
    }
    expect(seen.size).toBeGreaterThan(3); // the offsets vary
  });
});
