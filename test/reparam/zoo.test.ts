// Every zoo architecture fuses exactly (see helpers.ts: checkModel). The fusion algebra is per block
// and does not depend on width, so the whole zoo runs at 1/8 width with its real depths, strides and
// group maps (every group count still divides every width), in float64 (≤ 1e-12) and float32. Full
// widths end to end are a bench check (`npm run bench:fusion`: A0 and B0 by the same error model), so
// their seconds do not slow every run; full-width parameter and MAC counts are checked exactly
// against the paper in test/cli/cli.test.ts (repvgg info).
import { describe, expect, it } from 'vitest';
import { ZOO, planFromConfig, type RepVGGConfig } from '../../src/nn/config.js';
import { checkModel } from './helpers.js';

const narrow = (cfg: RepVGGConfig): RepVGGConfig => ({ ...cfg, width_multiplier: cfg.width_multiplier.map((w) => w / 8), num_classes: 10 });

describe('every zoo architecture fuses exactly (1/8 width, real depths, strides and groups)', () => {
  for (const name of Object.keys(ZOO)) {
    it(name, () => {
      const full = planFromConfig(ZOO[name]), small = planFromConfig(narrow(ZOO[name]));
      // the reduced model keeps the architecture's shape: blocks per stage, strides and groups
      expect(small.stages.map((s) => s.map((b) => [b.stride, b.groups]))).toEqual(full.stages.map((s) => s.map((b) => [b.stride, b.groups])));
      checkModel(narrow(ZOO[name]), 11, 16, 2, true);
    });
  }
});
