// Every zoo architecture at full width fuses exactly at a small input (see helpers.ts: checkModel).
// Split in two files so the test runner can spread the largest models over both cores.
import { describe, it } from 'vitest';
import { ZOO } from '../../src/nn/config.js';
import { checkModel } from './helpers.js';

// Full-width zoo models at 16×16: float64 for all (the ≤ 1e-12 check); float32 too for the A and B0
// models (the wider B models repeat the same blocks, and allocating their float32 twins doubles the
// run time on this machine's slow first-touch memory).
describe('every zoo architecture fuses exactly (small input)', () => {
  for (const name of Object.keys(ZOO).filter((n) => !/B2|B3/.test(n))) {
    it(name, () => checkModel({ ...ZOO[name], num_classes: 10 }, 11, 16, 1, /A\d|B0/.test(name)));
  }
});

