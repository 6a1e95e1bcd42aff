import { type ParsedArgs, dialectFlag, num, str } from '../args.js';
import { type Command, type Io, classifierForwardBytes, refuseLargeForward } from '../command.js';
import { MobileOne } from '../../nn/mobileone.js';
import { convertMobileOne } from '../../reparam/branches.js';
import { checkpointFormatOf, readCheckpointFile, readRawCheckpointFile, writeCheckpointFile } from '../files.js';
import { fuseStateDictBlocks } from '../../reparam/state_dict_blocks.js';
import { showText } from '../../tensor/untrusted.js';
import { classifierFromStateDict, stateDict } from '../../io/state_dict.js';
import { branchName } from '../../io/dialects.js';
import { convert as convertModel } from '../../reparam/repvgg.js';
import { Rng, uniform } from '../../tensor/rng.js';

export const convert: Command = {
  spec: {
    name: 'convert',
    summary: 'fuse a training-time RepVGG or MobileOne checkpoint into a deploy checkpoint (one conv per block)',
    usage: 'repvgg convert TRAIN DEPLOY [--names official|timm|mmpretrain] [--key NAME] [--probe-size 32] [--probe-batch 2] [--seed 0]\n' +
      '       repvgg convert TRAIN DEPLOY --blocks [--eps 1e-3] [--qarepvgg yolov6|folded] [--key NAME]\n' +
      '  TRAIN: safetensors or a torch.save .pth (any naming; recognised by its bytes). DEPLOY is written as its\n' +
      '  extension says (.pth/.pt/.bin/.pth.tar or .safetensors) with keys in --names (default: the input\'s naming).\n' +
      '  A MobileOne (apple\'s or timm\'s keys) becomes apple\'s inference_mode model: reparam_conv per block, SE kept.\n' +
      '  Prints the largest |Δ logit| between the two models on a random probe batch (eval mode).\n' +
      '  --blocks: any network\'s state dict. Every Rep-block found by its keys at any prefix (RepVGG and YOLOv6\n' +
      '  RepVGGBlock, RepConv as YOLOv7 and Ultralytics name it, QARepVGG, MobileOne as apple and timm name it,\n' +
      '  DBB and ACB as DingXiaoH\'s DiverseBranchBlock and ACNet name them, RepLKNet\'s large-kernel conv, and\n' +
      '  FastViT\'s RepMixer, RepCPE and patch-embedding convs as apple and timm name them: a whole FastViT)\n' +
      '  becomes its deploy keys; every other key is written as it was. --eps: the BN eps of blocks named like\n' +
      '  RepVGG (1e-5) and YOLOv6\'s RepVGGBlock (1e-3) alike; the others have their upstream\'s. --qarepvgg\n' +
      '  yolov6 keeps its post-sum bn apart (YOLOv6\'s deploy model, the default); folded puts it in the conv.\n' +
      '  The table\'s in is per group, and groups 1, where no identity branch says the groups (a state dict does\n' +
      '  not record them; the fused kernel is the same either way).',
    flags: { threads: 'count', backend: 'string', 'probe-size': 'count', 'probe-batch': 'count', seed: 'seed', names: 'string', key: 'string', blocks: 'boolean', eps: 'positive', qarepvgg: 'string' },
    positionals: 2,
    files: [{ arg: 0, label: 'TRAIN', role: 'in' }, { arg: 1, label: 'DEPLOY', role: 'out' }],
  },
  run(a: ParsedArgs, io: Io): number {
    const [src, dst] = a.positionals;
    checkpointFormatOf(dst, 'DEPLOY');
    if (a.flags.get('blocks') === true) return convertBlocks(a, io);
    for (const f of ['eps', 'qarepvgg']) if (a.flags.has(f)) throw new Error(`--${f} goes with --blocks`);
    const names = dialectFlag(a);
    const ck = readCheckpointFile(src, { key: str(a, 'key') });
    const model = classifierFromStateDict(ck.entries, { share: true }); // one-shot: no copy of the weights
    const mobileOne = model instanceof MobileOne;
    if (mobileOne && names !== undefined) throw new Error(`--names renames RepVGG keys; '${src}' is a MobileOne, written in its own (${ck.dialect === 'timm' ? 'timm\'s' : 'apple\'s'}) names`);
    if (model.deploy) throw new Error(`'${src}' is already a deploy checkpoint (it has ${mobileOne ? 'reparam_conv' : branchName('rbr_reparam', ck.dialect)} keys)`);
    model.eval();
    const deploy = model instanceof MobileOne ? convertMobileOne(model) : convertModel(model);
    const size = num(a, 'probe-size', 32), batch = num(a, 'probe-batch', 2);
    refuseLargeForward(classifierForwardBytes(model, batch, size, size) * 3, `a ${batch}×${model.inChannels}×${size}×${size} probe batch (--probe-size, --probe-batch; both models)`);
    const x = uniform([batch, model.inChannels, size, size], new Rng(num(a, 'seed', 0)), -1, 1, model.dtype);
    const y0 = model.forward(x), y1 = deploy.forward(x);
    let maxDiff = 0, maxAbs = 0;
    for (let i = 0; i < y0.size; i++) {
      if (!Number.isFinite(y0.data[i]) || !Number.isFinite(y1.data[i])) {
        throw new Error(`the probe batch gives non-finite logits (training-time ${y0.data[i]}, deploy ${y1.data[i]} at index ${i}), so the fusion cannot be verified; nothing written`);
      }
      maxDiff = Math.max(maxDiff, Math.abs(y0.data[i] - y1.data[i]));
      maxAbs = Math.max(maxAbs, Math.abs(y0.data[i]));
    }
    // a MobileOne's stateDict is already in its own naming (apple's or timm's)
    writeCheckpointFile(dst, stateDict(deploy), { names: mobileOne ? undefined : names ?? ck.dialect, metadata: { converted_from: src }, flag: 'DEPLOY' });
    const fused = deploy instanceof MobileOne ? deploy.blocks.length : deploy.blocks().length;
    io.out(`wrote ${dst}: ${fused} blocks fused, ${deploy.parameterCount().toLocaleString('en-US')} parameters (was ${model.parameterCount().toLocaleString('en-US')}), ${mobileOne ? `MobileOne, ${ck.dialect === 'timm' ? 'timm' : 'apple (official)'}` : names ?? ck.dialect} names`);
    io.out(`max |Δ logit| on a ${batch}×${model.inChannels}×${size}×${size} probe batch: ${maxDiff.toExponential(3)} (max |logit| ${maxAbs.toExponential(3)})`);
    return 0;
  },
};

/** convert --blocks: fuse every Rep-block of any network's state dict in place (src/reparam/state_dict_blocks.ts). */
function convertBlocks(a: ParsedArgs, io: Io): number {
  const [src, dst] = a.positionals;
  if (a.flags.has('names')) throw new Error('--names goes with RepVGG checkpoints; --blocks keeps the file\'s own keys');
  const qa = str(a, 'qarepvgg', 'yolov6');
  if (qa !== 'yolov6' && qa !== 'folded') throw new Error(`--qarepvgg must be yolov6 or folded, got '${qa}'`);
  const ck = readRawCheckpointFile(src, { key: str(a, 'key') });
  const { entries, blocks } = fuseStateDictBlocks(ck.entries, { eps: num(a, 'eps'), qarepvgg: qa });
  if (blocks.length === 0) throw new Error(`'${src}': no Rep-block found by its keys (RepVGG/YOLOv6 rbr_dense.conv, YOLOv7 rbr_dense.0, Ultralytics conv1.conv + conv2.conv, QARepVGG, MobileOne rbr_conv / conv_kxk, DBB dbb_origin, ACB square_conv, large kernel lkb_origin / large_conv, FastViT's RepMixer mixer.* and RepCPE pe / pos_enc); nothing written`);
  writeCheckpointFile(dst, entries, { names: 'official', metadata: { converted_from: src }, flag: 'DEPLOY' });
  // columns as wide as their longest entry, a prefix shown up to 48 characters (a summary past that)
  const names = blocks.map((b) => showText(b.prefix.replace(/\.$/, '') || '(top)', 48));
  const p = Math.max(5, ...names.map((n) => n.length)), w = Math.max(6, ...blocks.map((b) => b.family.length));
  io.out(`${'block'.padEnd(p)} ${'family'.padEnd(w)} ${'in→out'.padEnd(9)} ${'kernel'.padEnd(6)} ${'groups'.padEnd(6)} eps`);
  blocks.forEach((b, i) => io.out(`${names[i].padEnd(p)} ${b.family.padEnd(w)} ${`${b.in}→${b.out}`.padEnd(9)} ${`${b.kernelSize}×${b.kernelSize}`.padEnd(6)} ${String(b.groups).padEnd(6)} ${b.eps.toExponential()}`));
  io.out(`wrote ${dst}: ${blocks.length} block(s) fused, ${ck.entries.size} → ${entries.size} keys; every other key as it was`);
  return 0;
}
