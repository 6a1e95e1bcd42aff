// Encoding float16 and bfloat16 (the ONNX writer's, for float16 graphs fuse-onnx writes back): each
// value rounded once to nearest even, checked against numpy (float64 → float16) and torch (float32 →
// bfloat16) on random values over each format's range, exact ties and the edges
// (fixtures/make_half_fixtures.py), and every one of the 2¹⁶ patterns read back to itself.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bfloat16Bits, bfloat16ToFloat, halfBits, halfToFloat, storedFloats } from '../../src/io/dtypes.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { fixturePath } from '../helpers.js';

const golden = parseSafetensors(new Uint8Array(readFileSync(fixturePath('dtypes/half_rounding.safetensors')))).tensors;

describe('float16 and bfloat16 encoding', () => {
  it('float16: numpy\'s rounding of 35,000 float64 values (ties, subnormals, 65520 → ∞) bit for bit', () => {
    const src = golden.get('src64')!.data as Float64Array, want = golden.get('f16')!.data as Float32Array; // widened exactly
    expect(src.length).toBeGreaterThan(30000);
    let differ = 0;
    for (let i = 0; i < src.length; i++) if (!Object.is(halfToFloat(halfBits(src[i])), want[i])) differ++;
    expect(differ).toBe(0);
  });

  it('bfloat16: torch\'s rounding of 25,000 float32 values (5,000 of them exact ties) bit for bit', () => {
    const src = golden.get('src32')!.data as Float32Array, want = golden.get('bf16')!.data as Float32Array;
    let differ = 0;
    for (let i = 0; i < src.length; i++) if (!Object.is(bfloat16ToFloat(bfloat16Bits(src[i])), want[i])) differ++;
    expect(differ).toBe(0);
  });

  it('every float16 and bfloat16 pattern encodes back to itself (NaNs to a NaN)', () => {
    let differ = 0;
    for (let h = 0; h < 65536; h++) {
      for (const [dec, enc] of [[halfToFloat, halfBits], [bfloat16ToFloat, bfloat16Bits]] as const) {
        const v = dec(h), b = enc(v);
        if (Number.isNaN(v) ? !Number.isNaN(dec(b)) : b !== h) differ++;
      }
    }
    expect(differ).toBe(0);
    // IEEE 754 binary16 by hand: 1 + 2⁻¹¹ is a tie (to 1), 1 + 3·2⁻¹¹ a tie (to 1 + 2⁻⁹, even), 2⁻²⁵ a tie (to 0)
    expect([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -25, 65504, 65520, -0, NaN].map(halfBits)).toEqual([0x3c00, 0x3c02, 0, 2, 0x7bff, 0x7c00, 0x8000, 0x7e00]);
  });

  it('storedFloats: what a file of each type will hold', () => {
    const v = [1 + 2 ** -11, 1 / 3, -2.5];
    expect(Array.from(storedFloats('float16', v))).toEqual([1, 0.333251953125, -2.5]);
    expect(Array.from(storedFloats('bfloat16', v))).toEqual([1, 0.333984375, -2.5]);
    expect(Array.from(storedFloats('float32', v))).toEqual(v.map(Math.fround));
    expect(Array.from(storedFloats('float64', v))).toEqual(v);
  });
});
