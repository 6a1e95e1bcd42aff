import { type ParsedArgs, dialectFlag, num, required } from '../args.js';
import { type Command, type Io, configFromArgs, isMobileOneConfig, modelFromConfig } from '../command.js';
import { checkpointFormatOf, writeCheckpointFile } from '../files.js';
import { stateDict } from '../../io/state_dict.js';

export const init: Command = {
  spec: {
    name: 'init',
    summary: 'write a freshly initialised training-time checkpoint (deterministic for a seed)',
    usage: 'repvgg init --arch NAME | --config FILE.json [--seed N] [--float64] [--names official|timm|mmpretrain] --out CKPT\n' +
      '  NAME: a RepVGG (A0 … B3g4) or a MobileOne (S0 … S4) of the zoos; FILE: either constructor\'s arguments.\n' +
      '  CKPT is written as its extension says: .pth/.pt/.bin/.pth.tar (torch.save zip) or .safetensors.',
    flags: { arch: 'string', config: 'string', seed: 'seed', out: 'string', float64: 'boolean', names: 'string' },
    positionals: 0,
    files: [{ arg: 'config', role: 'in' }, { arg: 'out', role: 'out' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const { name, config } = configFromArgs(a, 'init');
    const out = required(a, 'out', 'init');
    checkpointFormatOf(out, '--out');
    const names = dialectFlag(a);
    const seed = num(a, 'seed', 0);
    const mobileOne = isMobileOneConfig(config);
    // a MobileOne is built in apple's or timm's naming (their SE widths differ, so keys are not renamed after)
    if (mobileOne && names === 'mmpretrain') throw new Error('--names: a MobileOne is named as apple (official) or timm names it; MMPretrain\'s is not modelled');
    const model = modelFromConfig(mobileOne ? { ...config, names: (names as 'official' | 'timm' | undefined) ?? config.names } : config, { seed, dtype: a.flags.get('float64') === true ? 'float64' : 'float32' });
    writeCheckpointFile(out, stateDict(model), { names: mobileOne ? undefined : names, metadata: { arch: name, seed: String(seed) }, flag: '--out' });
    io.out(`wrote ${out}: ${name}, ${model.parameterCount().toLocaleString('en-US')} parameters, seed ${seed}`);
    return 0;
  },
};
