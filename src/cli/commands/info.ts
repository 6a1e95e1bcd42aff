import { type ParsedArgs } from '../args.js';
import { type Command, type Io, configFromArgs, isMobileOneConfig } from '../command.js';
import { countPlan, planFromConfig } from '../../nn/config.js';
import { countMobileOne, mobileOnePlan } from '../../nn/mobileone.js';

export const info: Command = {
  spec: {
    name: 'info',
    summary: 'parameter and operation counts of an architecture for one 224×224 image',
    usage: 'repvgg info --arch NAME | --config FILE.json [--size 224] [--json]\n' +
      '  NAME: a RepVGG (A0 … B3g4) or a MobileOne (S0 … S4); FILE: either constructor\'s arguments (JSON).',
    flags: { arch: 'string', config: 'string', json: 'boolean', size: 'count' },
    positionals: 0,
    files: [{ arg: 'config', role: 'in' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const { name, config } = configFromArgs(a, 'info');
    const size = (a.flags.get('size') as number | undefined) ?? 224;
    const mobileOne = isMobileOneConfig(config);
    const c = mobileOne ? countMobileOne(mobileOnePlan(config), size) : countPlan(planFromConfig(config), size);
    const winogradMuls = 'winogradMuls' in c ? c.winogradMuls as number : null; // RepVGG's 3×3 convs only
    if (a.flags.get('json') === true) {
      io.out(JSON.stringify({ arch: name, params: c.params, macs: c.macs, ...(winogradMuls === null ? {} : { winogradMuls }) }));
      return 0;
    }
    const rows = c.stages.map((s) => [s.stage, String(s.blocks), String(s.outChannels), `${s.outSize}×${s.outSize}`, s.trainParams.toLocaleString('en-US'), s.deployParams.toLocaleString('en-US'), s.macs.toLocaleString('en-US')]);
    rows.push(['total', '', '', '', c.params.train.toLocaleString('en-US'), c.params.deploy.toLocaleString('en-US'), c.macs.toLocaleString('en-US')]);
    const head = ['stage', 'blocks', 'channels', 'output', 'train params', 'deploy params', 'MACs'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    io.out(`${name} at ${size}×${size}`);
    io.out(head.map((h, i) => h.padStart(w[i])).join('  '));
    for (const r of rows) io.out(r.map((v, i) => v.padStart(w[i])).join('  '));
    if (winogradMuls !== null) io.out(`deploy params ${(Math.trunc(c.params.deploy / 1e4) / 100).toFixed(2)} M (truncated, as the paper), ${(c.macs / 1e9).toFixed(2)} GMACs, Winograd F(2×2,3×3) multiplications ${(winogradMuls / 1e9).toFixed(2)} G`);
    else io.out(`deploy params ${(c.params.deploy / 1e6).toFixed(1)} M, ${(c.macs / 1e6).toFixed(0)} M MACs (the MobileOne paper's Table 8 columns, rounded as it rounds)`);
    return 0;
  },
};
