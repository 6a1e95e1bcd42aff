import { type ParsedArgs, num } from '../args.js';
import type { Command, Io } from '../command.js';
import { readNpyFile } from '../files.js';
import { compareArrays } from '../../io/compare.js';
import { fmtShape } from '../../tensor/check.js';

export const verify: Command = {
  spec: {
    name: 'verify',
    summary: 'compare an output with a reference (.npy): max abs, max rel and ULP error; non-zero exit past tolerance',
    usage: 'repvgg verify REF.npy OUT.npy [--rtol 1e-5] [--atol 1e-8]\n' +
      '  passes when every element has |out − ref| ≤ atol + rtol·|ref|: numpy.allclose(OUT, REF) and\n' +
      '  torch.testing.assert_close(OUT, REF) — rtol scales the reference, an infinity matches only itself, NaN nothing,\n' +
      '  tolerances 0 ask for equality (computed in float64). ULPs are counted in OUT\'s precision.',
    flags: { rtol: 'nonnegative', atol: 'nonnegative' },
    positionals: 2,
    files: [{ arg: 0, label: 'REF', role: 'in' }, { arg: 1, label: 'OUT', role: 'in' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const [refPath, outPath] = a.positionals;
    const ref = readNpyFile(refPath, 'reference');
    const out = readNpyFile(outPath, 'output');
    if (ref.shape.length !== out.shape.length || ref.shape.some((d, i) => d !== out.shape[i])) {
      throw new Error(`shape mismatch: reference '${refPath}' is ${fmtShape(ref.shape)}, output '${outPath}' is ${fmtShape(out.shape)}`);
    }
    const rtol = num(a, 'rtol', 1e-5), atol = num(a, 'atol', 1e-8);
    const c = compareArrays(ref.data, out.data, rtol, atol);
    io.out(`elements ${c.count}  max abs ${c.maxAbs.toExponential(3)}  max rel ${c.maxRel.toExponential(3)}  max ULP (${out.dtype}) ${c.maxUlp}`);
    if (c.failures > 0) {
      const i = c.worstIndex;
      io.err(`repvgg: FAIL: ${c.failures} of ${c.count} elements exceed atol ${atol} + rtol ${rtol}·|ref|; worst at flat index ${i}: ref ${ref.data[i]}, out ${out.data[i]}`);
      return 1;
    }
    io.out(`PASS (rtol ${rtol}, atol ${atol})`);
    return 0;
  },
};
