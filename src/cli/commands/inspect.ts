import { type ParsedArgs, str } from '../args.js';
import type { Command, Io } from '../command.js';
import { readCheckpointFile, readRawCheckpointFile } from '../files.js';
import type { Checkpoint } from '../../io/checkpoint.js';
import { checkStateDictKeys, mobileOneNamesOf, mobileOnePlanFromStateDict, planFromStateDict } from '../../io/state_dict.js';
import { MobileOne, mobileOneZooNameOf } from '../../nn/mobileone.js';
import { RepVGG } from '../../nn/repvgg.js';
import { showText } from '../../tensor/untrusted.js';
import { zooNameOf } from '../../nn/config.js';
import { type FusedStateDictBlock, fuseStateDictBlocks } from '../../reparam/state_dict_blocks.js';

export const inspect: Command = {
  spec: {
    name: 'inspect',
    summary: 'what a checkpoint is: format, wrapper, key naming, architecture, training-time or deploy, dtypes, parameters',
    usage: 'repvgg inspect CKPT [--key NAME] [--json]\n' +
      '  CKPT: safetensors, a torch.save zip (.pth/.pt/.bin) or a legacy torch.save stream, recognised by its bytes.\n' +
      '  The state dict is the top level if every value is a tensor, else the first of state_dict, model,\n' +
      '  model_ema, ema, state_dict_ema; --key NAME (dots descend: model.ema) picks one explicitly.\n' +
      '  Another network\'s state dict (a YOLO, a FastViT): the Rep-blocks `convert --blocks` finds in it, by family.',
    flags: { key: 'string', json: 'boolean' },
    positionals: 1,
    files: [{ arg: 0, label: 'CKPT', role: 'in' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const path = a.positionals[0];
    let ck: Checkpoint;
    try {
      ck = readCheckpointFile(path, { key: str(a, 'key') });
    } catch (e) {
      // keys that are no RepVGG's in any naming: another network, described by the Rep-blocks in it
      const raw = readRawCheckpointFile(path, { key: str(a, 'key') });
      const found = fuseStateDictBlocks(raw.entries, { eps: 1e-5 }); // eps changes values only, not what is found
      if (found.blocks.length === 0) throw e;
      return inspectBlocks(a, io, { ...raw, dialect: 'official' }, found.blocks, found.entries.size);
    }
    if (mobileOneNamesOf(ck.entries) !== null) return inspectMobileOne(a, io, ck);
    const { plan, deploy } = planFromStateDict(ck.entries);
    // what convert and forward would refuse, inspect refuses too (a partial 'module.' prefix, a stray key)
    checkStateDictKeys(new RepVGG(plan, { deploy, init: false }), ck.entries);
    const { dtypes, params } = tally(ck);
    const arch = zooNameOf(plan);
    const blocks = plan.stages.map((s) => s.length);
    const widths = plan.stages.map((s) => s[s.length - 1].outChannels);
    const groups = [...new Set(plan.stages.flat().map((b) => b.groups))];
    const info = { file: path, format: ck.format, wrapperKey: ck.wrapperKey, otherKeys: ck.otherKeys, records: ck.records, names: ck.dialect, kind: deploy ? 'deploy' : 'training-time',
      architecture: arch, blocks, widths, groups, inChannels: plan.inChannels, numClasses: plan.numClasses, dtypes, parameters: params, tensors: ck.entries.size };
    if (a.flags.get('json') === true) {
      io.out(JSON.stringify(info));
      return 0;
    }
    fileLines(io, ck, path);
    io.out(`  names         ${ck.dialect}`);
    io.out(`  model         ${deploy ? 'deploy (one 3×3 conv per block)' : 'training-time (3×3, 1×1 and identity branches)'}`);
    io.out(`  architecture  ${arch ?? 'not a zoo model'}: blocks per stage ${blocks.join(', ')}, widths ${widths.join(', ')}, groups ${groups.join('/')}, ${plan.inChannels} input channels, ${plan.numClasses} classes`);
    tallyLines(io, ck, dtypes, params);
    return 0;
  },
};

// dtypes by count, and the parameters (every tensor but BN's running statistics and counter)
function tally(ck: Checkpoint): { dtypes: Record<string, number>; params: number } {
  const dtypes: Record<string, number> = {};
  let params = 0;
  for (const [k, e] of ck.entries) {
    dtypes[e.dtype] = (dtypes[e.dtype] ?? 0) + 1;
    if (!k.endsWith('running_mean') && !k.endsWith('running_var') && !k.endsWith('num_batches_tracked')) params += e.data.length;
  }
  return { dtypes, params };
}

// the last two lines of every description: dtypes by count, parameters and tensors
function tallyLines(io: Io, ck: Checkpoint, dtypes: Record<string, number>, params: number): void {
  io.out(`  dtypes        ${Object.entries(dtypes).map(([d, n]) => `${d} ×${n}`).join(', ')}`);
  io.out(`  parameters    ${params.toLocaleString('en-US')} in ${ck.entries.size} tensors`);
}

function fileLines(io: Io, ck: Checkpoint, path: string): void {
  io.out(`${path}`);
  io.out(`  format        ${ck.format}${ck.wrapperKey === null ? ' (state dict at the top level)' : ` (state dict under '${showText(ck.wrapperKey)}')`}`);
  if (ck.otherKeys.length > 0) io.out(`  also holds    ${ck.otherKeys.map((k) => `'${showText(k, 60)}'`).join(', ')}`);
  // objects of other classes: recorded by name, never imported or called (docs/checkpoints.md: what is loaded)
  // (a pickled YOLO holds a record per module: the first few, the count of the rest; --json has all)
  const shown = ck.records.slice(0, 8).map((r) => `${r.at}: ${r.cls}`);
  if (ck.records.length > 8) shown.push(`… and ${ck.records.length - 8} more (--json lists them)`);
  if (ck.records.length > 0) io.out(`  records       ${shown.join(', ')} (inert: never imported or called)`);
}

function inspectBlocks(a: ParsedArgs, io: Io, ck: Checkpoint, blocks: FusedStateDictBlock[], deployKeys: number): number {
  const path = a.positionals[0];
  const { dtypes, params } = tally(ck);
  const byFamily = new Map<string, number>();
  for (const b of blocks) byFamily.set(b.family, (byFamily.get(b.family) ?? 0) + 1);
  const needEps = blocks.filter((b) => b.epsFrom === 'option').length;
  const info = { file: path, format: ck.format, wrapperKey: ck.wrapperKey, otherKeys: ck.otherKeys, records: ck.records, kind: 'blocks', tensors: ck.entries.size, deployTensors: deployKeys,
    blocks: blocks.map((b) => ({ prefix: b.prefix.replace(/\.$/, ''), family: b.family, in: b.in, out: b.out, kernelSize: b.kernelSize, groups: b.groups, epsFrom: b.epsFrom })), dtypes, parameters: params };
  if (a.flags.get('json') === true) {
    io.out(JSON.stringify(info));
    return 0;
  }
  fileLines(io, ck, path);
  io.out(`  model         not a RepVGG or MobileOne network: ${blocks.length} Rep-block(s) that \`repvgg convert --blocks\` fuses (${ck.entries.size} → ${deployKeys} tensors)`);
  io.out(`  blocks        ${[...byFamily].map(([f, n]) => `${f} ×${n}`).join(', ')}`);
  if (needEps > 0) io.out(`  note          ${needEps} block(s) named like RepVGG (BN eps 1e-5) and YOLOv6's RepVGGBlock (1e-3) alike: convert --blocks needs --eps`);
  tallyLines(io, ck, dtypes, params);
  return 0;
}

function inspectMobileOne(a: ParsedArgs, io: Io, ck: Checkpoint): number {
  const path = a.positionals[0];
  const { plan, deploy } = mobileOnePlanFromStateDict(ck.entries);
  checkStateDictKeys(new MobileOne(plan, { deploy }), ck.entries);
  const { dtypes, params } = tally(ck);
  const arch = mobileOneZooNameOf(plan);
  // units (a depthwise and a pointwise block) per stage, the stages' widths
  const stageOf = (name: string) => name.slice(0, name.lastIndexOf('.'));
  const stages = [...new Set(plan.blocks.slice(1).map((b) => stageOf(b.name)))];
  const units = stages.map((s) => plan.blocks.filter((b) => stageOf(b.name) === s).length / 2);
  const widths = stages.map((s) => plan.blocks.filter((b) => stageOf(b.name) === s).pop()!.outChannels);
  const branches = Math.max(...plan.blocks.map((b) => b.branches)), se = plan.blocks.filter((b) => b.se).length;
  const info = { file: path, format: ck.format, wrapperKey: ck.wrapperKey, otherKeys: ck.otherKeys, records: ck.records, names: ck.dialect, family: 'MobileOne', kind: deploy ? 'deploy' : 'training-time',
    architecture: arch, blocks: units, widths, convBranches: branches, seBlocks: se, inChannels: plan.inChannels, numClasses: plan.numClasses, dtypes, parameters: params, tensors: ck.entries.size };
  if (a.flags.get('json') === true) {
    io.out(JSON.stringify(info));
    return 0;
  }
  fileLines(io, ck, path);
  io.out(`  names         MobileOne, ${ck.dialect === 'timm' ? 'timm (byobnet: stem, stages.i.j, head.fc)' : 'apple (official: stage0, stageN.j, linear)'}`);
  io.out(`  model         ${deploy ? 'deploy (one conv per block: reparam_conv)' : `training-time (up to ${branches} k×k conv branch${branches === 1 ? '' : 'es'}, 1×1 scale and skip BN per block)`}`);
  io.out(`  architecture  ${arch ?? 'not a zoo model'}: depthwise+pointwise units per stage ${units.join(', ')}, widths ${widths.join(', ')}, ${se} SE block(s), ${plan.inChannels} input channels, ${plan.numClasses} classes`);
  tallyLines(io, ck, dtypes, params);
  return 0;
}
