// Walk one tiny block through every fusion step with real numbers.
import type { Command, Io } from '../command.js';
import { RepVGGBlock } from '../../nn/repvgg.js';
import { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../tensor/rng.js';
import { fuseConvBN, identityKernel, padKernel, sumBranches, withZeroBias, type KernelBias } from '../../reparam/kernels.js';
import { bnStats } from '../../reparam/fuse.js';
import { conv2d } from '../../ops/conv2d.js';
import { relu } from '../../ops/relu.js';
import { oneOf } from '../args.js';
import type { Module } from '../../nn/module.js';
import { BatchNorm2d, Conv2d } from '../../nn/layers.js';
import { IdentityConv1x1 } from '../../nn/dbb_layers.js';
import { type FamilySpec, deployKey, familyBlock } from '../../nn/families.js';
import { BranchBlock } from '../../nn/branch_block.js';
import { setConvAlgorithm } from '../../nn/conv_algorithm.js';
import { fuseBranchBlock, deployBlock } from '../../reparam/branches.js';
import { fuseLinearBranches } from '../../reparam/fuse.js';
import { fuseOnnx } from '../../onnx/fuse.js';
import { readOnnxFile } from '../files.js';
import { showText } from '../../tensor/untrusted.js';

const r2 = (rng: Rng, lo: number, hi: number) => Math.round((lo + (hi - lo) * rng.next()) * 100) / 100;

function fmt(v: number): string {
  const s = v.toFixed(3);
  return (s.startsWith('-') ? s : ' ' + s).padStart(7);
}

/** Kernel (F, C, k, k) as rows of k×k blocks: one line per kernel row, channels side by side. */
function showKernel(io: Io, title: string, k: Tensor): void {
  const [F, C, kh, kw] = k.shape;
  io.out(`  ${title}  shape (${k.shape.join(', ')})`);
  for (let f = 0; f < F; f++) {
    for (let i = 0; i < kh; i++) {
      const parts: string[] = [];
      for (let c = 0; c < C; c++) {
        const row: string[] = [];
        for (let j = 0; j < kw; j++) row.push(fmt(k.data[((f * C + c) * kh + i) * kw + j]));
        parts.push(`[${row.join('')} ]`);
      }
      io.out(`    ${i === 0 ? `out ${f}:` : '      '} ${parts.join('  ')}`);
    }
  }
}

function showBias(io: Io, title: string, b: Tensor): void {
  io.out(`  ${title}  [${Array.from(b.data, fmt).join('')} ]`);
}

const BLOCKS = ['repvgg', 'mobileone', 'repconv', 'qarepvgg', 'dbb', 'repmixer'] as const;

// The families' 2-channel examples and their training-time equations.
const FAMILY_WALKS: Record<Exclude<(typeof BLOCKS)[number], 'repvgg'>, { spec: FamilySpec; title: string }> = {
  mobileone: {
    spec: { family: 'mobileone', in: 2, out: 2, kernelSize: 3, branches: 2 },
    title: 'MobileOne block (k = 2), 2 → 2 channels: y = ReLU( BN(W₁ ⊛ x) + BN(x) + BN(W₃ᵃ ⊛ x) + BN(W₃ᵇ ⊛ x) )',
  },
  repconv: {
    spec: { family: 'repconv', in: 2, out: 2, names: 'yolov7' },
    title: 'RepConv (YOLOv7; BN eps 1e-3), 2 → 2 channels: y = SiLU( BN(W₃ ⊛ x) + BN(W₁ ⊛ x) + BN(x) )',
  },
  qarepvgg: {
    spec: { family: 'qarepvgg', in: 2, out: 2 },
    title: 'QARepVGG block, 2 → 2 channels: y = ReLU( BN( BN(W₃ ⊛ x) + W₁ ⊛ x + x ) )',
  },
  repmixer: {
    spec: { family: 'repmixer', in: 2, out: 2, kernelSize: 3, names: 'timm' },
    title: "FastViT's RepMixer, 2 channels, depthwise: y = x + γ·( BN(W₁ ⊛ x) + BN(x) + BN(W₃ ⊛ x) − BN_norm(x) ), γ per channel",
  },
  dbb: {
    spec: { family: 'dbb', in: 2, out: 2, activation: 'relu' },
    title: 'Diverse Branch Block, 2 → 2 channels: y = ReLU( BN(W₃ ⊛ x) + BN(W₁ ⊛ x) + BN(avg₃(BNpad(W₁ᵃ ⊛ x))) + BN(W₃ᵇ ⊛ BNpad((Wᶦ + I) ⊛ x)) )',
  },
};

/** Two-decimal parameters, so the printed numbers can be checked by hand. */
function roundParameters(m: Module, rng: Rng): void {
  const round = (t: Tensor, lo: number, hi: number) => { for (let i = 0; i < t.size; i++) t.data[i] = r2(rng, lo, hi); };
  if (m instanceof BatchNorm2d) {
    round(m.weight.data, 0.5, 1.5); round(m.bias.data, -0.5, 0.5); round(m.runningMean, -0.5, 0.5); round(m.runningVar, 0.5, 2);
  } else if (m instanceof Conv2d) round(m.weight.data, -1, 1);
  else if (m instanceof IdentityConv1x1) round(m.weight.data, -0.2, 0.2);
  for (const [, p] of m instanceof BranchBlock ? m.ownParameters() : []) round(p.data, 0.5, 1.5); // RepMixer's γ
  for (const [, c] of m.children()) roundParameters(c, rng);
}

// The family's block through the one fuser's steps (src/reparam/fuse.ts), then both forms on one input.
function walkFamily(io: Io, which: keyof typeof FAMILY_WALKS, rng: Rng): number {
  const { spec, title } = FAMILY_WALKS[which];
  const block = familyBlock({ ...spec, dtype: 'float64' });
  roundParameters(block, rng);
  block.eval();
  setConvAlgorithm(block, 'direct'); // so that timing ('auto') never changes what is printed
  io.out(`${title}
`);
  io.out('Branches (state-dict names as the public implementation):');
  for (const chain of block.linearBranches().branches) io.out(`  ${chain.length === 0 ? '(identity, no parameters)' : chain.map(([n, m]) => `${n} (${m.constructor.name})`).join(' → ')}`);
  io.out('');
  let step = 0;
  fuseLinearBranches(block.linearBranches(), '', (st) => {
    io.out(`${++step}. ${st.at}: ${st.what}`);
    showKernel(io, 'K', st.kb.kernel);
    showBias(io, 'b', st.kb.bias);
  });
  const x = new Tensor(Float64Array.from({ length: 32 }, () => r2(rng, -1, 1)), [1, 2, 4, 4]);
  const deploy = deployBlock(block, deployKey(spec));
  setConvAlgorithm(deploy, 'direct');
  const yTrain = block.forward(x), yDeploy = deploy.forward(x);
  let worst = 0;
  for (let i = 0; i < yTrain.size; i++) worst = Math.max(worst, Math.abs(yTrain.data[i] - yDeploy.data[i]));
  const k = fuseBranchBlock(block).kernel.shape;
  io.out(`
Both forms on one 1×2×4×4 input: largest |Δ| = ${worst.toExponential(2)} (float64); the deploy form is one ${k[2]}×${k[3]} conv ('${deployKey(spec)}') + ${block.activation === 'silu' ? 'SiLU' : block.activation === 'relu' ? 'ReLU' : 'nothing'}.`);
  return 0;
}

// An ONNX graph's fusable patterns, and the first one through the fuser's steps with its numbers.
function explainOnnx(io: Io, path: string): number {
  const model = readOnnxFile(path);
  let step = 0;
  const shown: string[] = [];
  const r = fuseOnnx(model, {
    trace: (st) => {
      shown.push(`${++step}. ${showText(st.at, 60)}: ${st.what}`);
      const [F, C, kh, kw] = st.kb.kernel.shape;
      if (F * C * kh * kw <= 2 * 2 * 3 * 3) { showKernel({ ...io, out: (l) => shown.push(l) }, 'K', st.kb.kernel); showBias({ ...io, out: (l) => shown.push(l) }, 'b', st.kb.bias); }
      else shown.push(`  K (${st.kb.kernel.shape.join(', ')}): K[0, 0] = [${Array.from(st.kb.kernel.data.subarray(0, kh * kw), fmt).join('')} ]; b[0..2] = [${Array.from(st.kb.bias.data.subarray(0, 3), fmt).join('')} ]`);
    },
  });
  io.out(`${path}: ${model.nodes.length} nodes, opset ${model.opset}; ${r.fused.length} pattern(s) fuse, ${r.skipped.length} kept with a reason`);
  for (const f of r.fused) io.out(`  ${showText(f.at, 48).padEnd(48)} ${f.pattern} (${f.nodesBefore} nodes → 1)`);
  for (const s of r.skipped) io.out(`  kept ${showText(s.at, 43).padEnd(43)} ${showText(s.why, 400)}`);
  if (r.fused.length === 0) return 0;
  io.out(`\nThe first one fused, '${showText(r.fused[0].at, 60)}', step by step (the same fuser as repvgg convert; float64):`);
  for (const l of shown) io.out(l);
  io.out(`\nrepvgg fuse-onnx ${path} OUT.onnx writes the fused graph after checking it against this one.`);
  return 0;
}

export const explain: Command = {
  spec: {
    name: 'explain',
    summary: 'walk a tiny 2-channel block through every re-parameterization step',
    usage: `repvgg explain [--block ${BLOCKS.join('|')}] [--seed N] | --onnx MODEL.onnx\n` +
      '  --onnx lists every fusable pattern in the graph and walks the first through the fuser\'s steps.',
    flags: { threads: 'count', backend: 'string', seed: 'seed', block: 'string', onnx: 'string' },
    positionals: 0,
    files: [{ arg: 'onnx', role: 'in' }],
  },
  run(a, io: Io): number {
    const onnx = a.flags.get('onnx') as string | undefined;
    if (onnx !== undefined) return explainOnnx(io, onnx);
    const rng = new Rng((a.flags.get('seed') as number | undefined) ?? 1);
    const which = oneOf((a.flags.get('block') as string | undefined) ?? 'repvgg', BLOCKS, 'explain: --block');
    if (which !== 'repvgg') return walkFamily(io, which, rng);
    const block = new RepVGGBlock({ inChannels: 2, outChannels: 2, stride: 1, groups: 1, identity: true, pointwise: true }, { dtype: 'float64', rng });
    const round = (t: Tensor, lo: number, hi: number) => { for (let i = 0; i < t.size; i++) t.data[i] = r2(rng, lo, hi); };
    round(block.rbrDense!.conv.weight.data, -1, 1);
    round(block.rbr1x1!.conv.weight.data, -1, 1);
    for (const bn of [block.rbrDense!.bn, block.rbr1x1!.bn, block.rbrIdentity!]) {
      round(bn.weight.data, 0.5, 1.5); round(bn.bias.data, -0.5, 0.5); round(bn.runningMean, -0.5, 0.5); round(bn.runningVar, 0.5, 2);
    }
    block.eval();
    io.out('RepVGG block, 2 → 2 channels, stride 1: y = ReLU( BN(W₃ ⊛ x) + BN(W₁ ⊛ x) + BN(x) )\n');
    io.out('1. The three branches');
    showKernel(io, 'W₃ (rbr_dense.conv.weight)', block.rbrDense!.conv.weight.data);
    showKernel(io, 'W₁ (rbr_1x1.conv.weight)', block.rbr1x1!.conv.weight.data);
    io.out('  identity: x itself, followed by its own BN (rbr_identity)\n');
    io.out('2. Fold each BN into the conv before it: W\' = W·γ/√(σ²+ε), b\' = β − μ·γ/√(σ²+ε)');
    const named: [string, ReturnType<typeof bnStats>][] = [
      ['rbr_dense.bn', bnStats(block.rbrDense!.bn, 'rbr_dense.bn')],
      ['rbr_1x1.bn', bnStats(block.rbr1x1!.bn, 'rbr_1x1.bn')],
      ['rbr_identity', bnStats(block.rbrIdentity!, 'rbr_identity')],
    ];
    for (const [n, s] of named) {
      io.out(`  ${n.padEnd(13)} γ ${Array.from(s.gamma.data, fmt).join('')}   β ${Array.from(s.beta.data, fmt).join('')}   μ ${Array.from(s.mean.data, fmt).join('')}   σ² ${Array.from(s.variance.data, fmt).join('')}`);
    }
    const d = fuseConvBN(withZeroBias(block.rbrDense!.conv.weight.data), named[0][1], 'float64');
    const p = fuseConvBN(withZeroBias(block.rbr1x1!.conv.weight.data), named[1][1], 'float64');
    showKernel(io, 'W₃\'', d.kernel); showBias(io, 'b₃\'', d.bias);
    showKernel(io, 'W₁\'', p.kernel); showBias(io, 'b₁\'', p.bias);
    io.out('\n3. Pad the 1×1 kernel to 3×3 (zeros around a centred weight)');
    const p3: KernelBias = { kernel: padKernel(p.kernel, 3), bias: p.bias };
    showKernel(io, 'pad(W₁\')', p3.kernel);
    io.out('\n4. The identity as a 3×3 kernel (a 1 at the centre of channel i), then fold its BN');
    const idK = identityKernel(2, 1, 'float64');
    showKernel(io, 'I', idK);
    const id = fuseConvBN(withZeroBias(idK), named[2][1], 'float64');
    showKernel(io, 'I\'', id.kernel); showBias(io, 'b_id\'', id.bias);
    io.out('\n5. Sum the branches: kernels add, biases add');
    const fused = sumBranches([d, p3, id], 'float64');
    showKernel(io, 'W = W₃\' + pad(W₁\') + I\'', fused.kernel); showBias(io, 'b = b₃\' + b₁\' + b_id\'', fused.bias);
    io.out('\n6. Both models on one 1×2×3×3 input');
    const x = new Tensor(Float64Array.from({ length: 18 }, () => r2(rng, -1, 1)), [1, 2, 3, 3]);
    // both sides on the direct reference, so that timing ('auto') never changes what is printed
    for (const c of [block.rbrDense!.conv, block.rbr1x1!.conv]) c.algorithm = 'direct';
    const yTrain = block.forward(x);
    const yDeploy = relu(conv2d(x, fused.kernel, fused.bias, { padding: 1, algorithm: 'direct' }));
    io.out('  channel  position   training-time block   deploy conv     |Δ|');
    let worst = 0;
    for (let i = 0; i < yTrain.size; i++) {
      const c = Math.floor(i / 9), pos = i % 9;
      const dlt = Math.abs(yTrain.data[i] - yDeploy.data[i]);
      worst = Math.max(worst, dlt);
      io.out(`  ${String(c).padStart(7)}  (${Math.floor(pos / 3)}, ${pos % 3})   ${yTrain.data[i].toFixed(12).padStart(19)}   ${yDeploy.data[i].toFixed(12).padStart(15)}   ${dlt.toExponential(1)}`);
    }
    io.out(`\nlargest |Δ| = ${worst.toExponential(2)} (float64): one 3×3 conv computes the three-branch block.`);
    return 0;
  },
};
