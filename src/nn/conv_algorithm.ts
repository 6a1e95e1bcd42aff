// Pinning the conv algorithm of every conv in a network.

import type { ConvAlgorithm } from '../ops/conv2d.js';
import type { Module } from './module.js';
import { Conv2d } from './layers.js';
import { DiracConv2d } from './variants.js';
import { IdentityConv1x1 } from './dbb_layers.js';

/**
 * Sets the forward algorithm of every conv below `root`. 'winograd' applies to the 3×3 stride-1
 * convs and leaves the others (stride 2, 1×1, 1×3, …) on im2col, since no network could run otherwise.
 */
export function setConvAlgorithm(root: Module, algorithm: ConvAlgorithm): void {
  const visit = (m: Module) => {
    if (m instanceof Conv2d) {
      const [, , kh, kw] = m.weight.data.shape;
      const stride1 = m.stride === 1 || (typeof m.stride !== 'number' && m.stride[0] === 1 && m.stride[1] === 1);
      m.algorithm = algorithm === 'winograd' && !(kh === 3 && kw === 3 && stride1) ? 'im2col' : algorithm;
    } else if (m instanceof IdentityConv1x1) {
      m.algorithm = algorithm === 'winograd' ? 'im2col' : algorithm; // 1×1
    } else if (m instanceof DiracConv2d) {
      m.algorithm = algorithm === 'winograd' && m.stride !== 1 ? 'im2col' : algorithm;
    }
    for (const [, c] of m.children()) visit(c);
  };
  visit(root);
}
