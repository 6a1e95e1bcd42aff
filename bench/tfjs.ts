// The peer: TensorFlow.js's CPU backend (pure JS, like us) running conv2d on the same shapes.
// tfjs is NHWC with HWIO filters; layouts are prepared outside the timed region.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

let ready: Promise<boolean> | null = null;

export function tfjsReady(): Promise<boolean> {
  ready ??= tf.setBackend('cpu');
  return ready;
}

/** A closure running tfjs conv2d for this shape (explicit padding p on every side, groups = 1). */
export function tfjsConv(N: number, C: number, H: number, F: number, k: number, stride: number, pad: number): { run: () => void; dispose: () => void } {
  const x = tf.randomUniform([N, H, H, C], -1, 1);
  const w = tf.randomUniform([k, k, C, F], -1, 1);
  const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [pad, pad], [pad, pad], [0, 0]];
  return {
    run: () => {
      const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, padding);
      y.dataSync();
      y.dispose();
    },
    dispose: () => { x.dispose(); w.dispose(); },
  };
}
