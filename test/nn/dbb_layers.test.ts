// ChannelPad2d (src/nn/dbb_layers.ts), the border stage fuse-onnx makes of an exported BNAndPad:
// values written out by hand (closed form), forward and backward.
import { describe, expect, it } from 'vitest';
import { ChannelPad2d } from '../../src/nn/dbb_layers.js';
import { Tensor } from '../../src/tensor/tensor.js';

describe('ChannelPad2d', () => {
  it('pads each channel with its own value, ph rows and pw columns on each side; backward is the interior', () => {
    const pad = new ChannelPad2d(Float64Array.of(7, -1), [1, 0]);
    const x = new Tensor(Float64Array.of(1, 2, 3, 4), [1, 2, 1, 2]); // channel 0: [1 2], channel 1: [3 4]
    const y = pad.forward(x);
    expect(y.shape).toEqual([1, 2, 3, 2]);
    expect([...y.data]).toEqual([7, 7, 1, 2, 7, 7, -1, -1, 3, 4, -1, -1]);
    const dy = new Tensor(Float64Array.from({ length: 12 }, (_, i) => i), [1, 2, 3, 2]);
    expect([...pad.backward(dy).data]).toEqual([2, 3, 8, 9]);
    expect(() => pad.forward(new Tensor(new Float64Array(3), [1, 3, 1, 1]))).toThrow('ChannelPad2d: 2 border values for 3 channels');
  });
});
