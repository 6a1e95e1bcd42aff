#!/usr/bin/env node
// Mutation testing: plant each bug below, one at a time, run the tests that should catch it, and
// report which survive. A surviving mutant that changes results is a test to write.
//   node scripts/mutate.mjs            all mutants, each against the test files listed with it
//   node scripts/mutate.mjs --full     each against the whole suite (slower)
//   node scripts/mutate.mjs 3 7        only mutants 3 and 7
// The source is restored after every mutant (and on Ctrl-C). Not part of `npm test`.
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
process.chdir(root);

// [area, what, file, exact text, replacement, test files, 'build' when the mutant must reach dist/]
const MUTANTS = [
  // ops
  ['ops', 'ReLU passes negatives', 'src/ops/relu.ts', 'y[i] = xd[i] < 0 ? 0 : xd[i];', 'y[i] = xd[i] < -0.01 ? 0 : xd[i];', ['test/ops']],
  ['ops', 'float32 ReLU on bits lets −∞ through', 'src/ops/relu.ts', '  return b & ~(((u - 2139095040) & ~u) >> 31);', '  return b & ~(((u - 2139095039) & ~u) >> 31);', ['test/ops/ops.test.ts']],
  ['ops', 'float32 ReLU on bits zeroes −0 and NaN', 'src/ops/relu.ts', '  const u = b + 2147483647;', '  const u = b + 2147483648;', ['test/ops/ops.test.ts', 'test/ops/conv2d.test.ts']],
  ['ops', 'ReLU backward ignores the mask', 'src/ops/relu.ts', 'dx[i] = yd[i] <= 0 ? 0 : g[i];', 'dx[i] = g[i];', ['test/ops']],
  ['ops', 'ReLU turns NaN into 0', 'src/ops/relu.ts', 'y[i] = xd[i] < 0 ? 0 : xd[i];', 'y[i] = xd[i] > 0 ? xd[i] : 0;', ['test/ops', 'test/cli/faults.test.ts']],
  ['ops', 'deploy epilogue (Winograd) turns NaN into 0', 'src/ops/conv2d_winograd.ts', 'if (y[row + j] < 0) y[row + j] = 0;', 'if (!(y[row + j] > 0)) y[row + j] = 0;', ['test/cli/faults.test.ts', 'test/ops/conv2d.test.ts']],
  ['ops', 'deploy epilogue (GEMM, js) drops the bias', 'src/ops/gemm.ts', '        y[p] += bf;\n        if (y[p] < 0) y[p] = 0;', '        if (y[p] < 0) y[p] = 0;', ['test/ops/conv2d.test.ts', 'test/ops/gemm.test.ts']],
  ['ops', 'deploy epilogue (GEMM, SIMD) after the first panel, not the last', 'src/backend/wasm/gemm_simd.ts', '(pc + KC >= K ? last : 0)', '(pc === 0 ? last : 0)', ['test/ops/gemm.test.ts']],
  ['ops', 'im2col panels: a strip touching the bottom edge counted as interior', 'src/ops/conv2d_im2col.ts', 'if (y0 < 0 || y0 + spanH >= H || x0 < 0', 'if (y0 < 0 || y0 + spanH > H || x0 < 0', ['test/ops']],
  ['ops', 'im2col packed weights: group offset without row padding', 'src/ops/conv2d_im2col.ts', 'out.data, gi * Fgp * K);', 'out.data, gi * g.Fg * K);', ['test/ops', 'test/nn']],
  ['nn', 'im2col packed weights kept across weight versions', 'src/nn/layers.ts', 'if (!this.current(this.packed)) {', 'if (this.packed === null) {', ['test/nn']],
  ['ops', 'SIMD arena starts over without forgetting what it held', 'src/backend/wasm/instance.ts', '  inst.arena.clear();\n  inst.arenaEnd = 0;', '  inst.arenaEnd = 0;', ['test/backend/wasm.test.ts']],
  ['ops', 'SIMD arena: every block read from the start of the panels', 'src/backend/wasm/gemm_simd.ts', 'else if (at >= 0) a = at + src;', 'else if (at >= 0) a = at;', ['test/backend/wasm.test.ts', 'test/ops']],
  ['ops', 'SIMD im2col gather: every image read as the first of the chunk', 'src/ops/conv2d_im2col.ts', 'out[j] = (im - n0) * Cg * Hp * Wp + oh * sh * Wp', 'out[j] = 0 * (im - n0) * Cg * Hp * Wp + oh * sh * Wp', ['test/ops']],
  ['ops', 'SIMD im2col gather ignores dilation across columns', 'src/ops/conv2d_im2col.ts', 'tapOffsets[t] = (c * Hp + i * dh) * Wp + j * dw;', 'tapOffsets[t] = (c * Hp + i * dh) * Wp + j;', ['test/ops']],
  ['ops', 'SIMD im2col gather: padding columns read 4× their offset (a crash the demo found)', 'src/backend/wasm/gemm_simd.ts', 'ints.fill(ints[nc - 1], nc, ncp);', 'ints.fill(4 * ints[nc - 1], nc, ncp);', ['test/ops/conv2d.test.ts']],
  ['ops', "'auto' keeps its timing's filters in the arena", 'src/ops/conv2d.ts', '  for (const p of [...[...U.values()].reverse().map((u) => u.panels), panels]) if (p !== undefined) releasePanels(p);', '', ['test/backend/wasm.test.ts']],
  ['ops', 'deploy epilogue (GEMM, SIMD) drops the bias', 'src/backend/wasm/gemm_code.ts', 'if (bias) x.get(bv).f32x4Add();', 'if (bias && false) x.get(bv).f32x4Add();', ['test/ops/gemm.test.ts', 'test/ops/conv2d.test.ts']],
  ['ops', 'softmax without max-subtraction', 'src/ops/loss.ts', 'for (let k = 0; k < K; k++) s += Math.exp(z[off + k] - mx);', 'for (let k = 0; k < K; k++) s += Math.exp(z[off + k]);', ['test/ops']],
  ['ops', 'BN eval ignores eps', 'src/ops/batchnorm.ts', 'invStd[c] = 1 / Math.sqrt(p.runningVar.data[c] + eps);', 'invStd[c] = 1 / Math.sqrt(p.runningVar.data[c] + 1e-5);', ['test/ops', 'test/reparam']],
  ['ops', 'BN running var biased', 'src/ops/batchnorm.ts', 'rv[c] = (1 - momentum) * rv[c] + momentum * (ss / (M - 1));', 'rv[c] = (1 - momentum) * rv[c] + momentum * (ss / M);', ['test/ops', 'test/nn']],
  ['ops', 'BN momentum reversed', 'src/ops/batchnorm.ts', 'rm[c] = (1 - momentum) * rm[c] + momentum * mu;', 'rm[c] = momentum * rm[c] + (1 - momentum) * mu;', ['test/ops', 'test/nn']],
  ['ops', 'global pool divides by W only', 'src/ops/pool.ts', 'y[nc] = s / P;', 'y[nc] = s / W;', ['test/ops']],
  ['ops', 'linear drops the bias', 'src/ops/linear.ts', 'for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) y[n * O + o] += b.data[o];', '', ['test/ops']],
  ['ops', 'conv output size off by one', 'src/ops/conv2d_geometry.ts', 'const Ho = Math.floor((Hp - effH) / sh) + 1;', 'const Ho = Math.floor((Hp - effH) / sh) + (sh > 1 ? 0 : 1);', ['test/ops']],
  ['ops', 'GEMM column-block offset lost (N > 1024)', 'src/ops/gemm.ts', 'C, cOff + (ic + ir) * ldc + jc + jr, ldc, mr, nr, load);', 'C, cOff + (ic + ir) * ldc + jr, ldc, mr, nr, load);', ['test/ops/gemm.test.ts']],
  ['ops', 'GEMM drops the K-block carry', 'src/ops/gemm.ts', 'const load = accumulate || pc > 0;', 'const load = accumulate;', ['test/ops/gemm.test.ts']],
  ['ops', 'Winograd scratch in float32', 'src/ops/conv2d_winograd.ts', "const d = workspace64('winograd.d', 2 * A2);", "const d = workspaceLike('winograd.d', 2 * A2, x) as Float64Array;", ['test/ops/conv2d.test.ts']],
  ['ops', 'Winograd filter transform in float32', 'src/ops/conv2d_winograd.ts', 'const Gg = new Float64Array(alpha * 3);', 'const Gg = new Float32Array(alpha * 3);', ['test/ops/conv2d.test.ts']],
  ['ops', 'Winograd F4 output transform coefficient', 'src/ops/conv2d_winograd.ts', 'out[34 + j] = s + 8 * q + m5;', 'out[34 + j] = s + 8 * q;', ['test/ops']],
  ['ops', 'SIMD GEMM: row 3 multiplies the wrong half of B', 'src/backend/wasm/gemm_code.ts', 'x.get(acc(2 * r + 1)).get(s).get(b1)', 'x.get(acc(2 * r + 1)).get(s).get(r === 3 ? b0 : b1)', ['test/ops/gemm.test.ts']],
  ['ops', 'im2col backward: dW forgets the previous chunks', 'src/ops/conv2d_im2col.ts', 'dW, (gi * Fg + f0) * K, K, qa > 0);', 'dW, (gi * Fg + f0) * K, K, false);', ['test/ops', 'test/backend']],
  // threads (workers run the build: these rebuild dist/ with the mutant)
  ['pool', 'workers ignore the caller\'s backend', 'src/backend/threads.ts', '      setBackend(m.backend!);', '      void setBackend;', ['test/backend'], 'build'],
  ['pool', 'Winograd channel split misplaces M rows (TypeScript output pass)', 'src/ops/conv2d_winograd.ts', 'outputTransform(M, (fl - f0) * tbE + t, Fp * tbE, d);', 'outputTransform(M, fl * tbE + t, Fp * tbE, d);', ['test/backend'], 'build'],
  ['pool', 'Winograd channel split writes the wrong output channels (SIMD output pass)', 'src/ops/conv2d_winograd.ts', '(n * F + gi * Fg + f0 + f) * Ho * Wo + oy * Wo + a * 4', '(n * F + gi * Fg + f) * Ho * Wo + oy * Wo + a * 4', ['test/backend'], 'build'],
  ['pool', 'im2col forward: workers write a private copy of y', 'src/ops/conv2d_im2col.ts', "b: b === null ? null : shareInput('conv.b', b), y: ys, relu,", "b: b === null ? null : shareInput('conv.b', b), y, relu,", ['test/backend'], 'build'],
  // the learners' page (served from web/ over dist/)
  ['web', 'page: the fused kernel leaves out the identity', 'web/lesson.js', "const sum = sumBranches([dense, { kernel: padded, bias: point.bias }, ident], 'float64');", "const sum = sumBranches([dense, { kernel: padded, bias: point.bias }], 'float64');", ['test/web']],
  ['web', 'page: test images not normalised as in training', 'web/app.js', '(v) => (v / 255 - 0.286) / 0.353)', '(v) => v / 255)', ['test/web']],
  ['train', 'demo: the per-epoch test evaluation leaves the model in eval mode', 'src/cli/commands/demo.ts', '      testAccuracy.push(accuracy(predict(model, test.x), test.y));\n      model.train();', '      testAccuracy.push(accuracy(predict(model, test.x), test.y));', ['test/cli/demo.test.ts']],
  ['ops', 'dW: the transposed SIMD gather reads the first panel\'s taps for every panel', 'src/ops/conv2d_im2col.ts', '      cols = (jc, n, out) => out.set(tapOffsets.subarray(jc, jc + n));', '      cols = (jc, n, out) => out.set(tapOffsets.subarray(0, n));', ['test/ops/conv2d.test.ts']],
  ['ops', 'dW: the transposed TypeScript gather ignores the panel\'s first tap', 'src/ops/conv2d_im2col.ts', '        const t0 = jc + s * NR, nr = Math.min(NR, nc - s * NR);', '        const t0 = s * NR, nr = Math.min(NR, nc - s * NR);', ['test/ops/conv2d.test.ts']],
  ['ops', 'dx as a conv of dy: the kernel not rotated', 'src/ops/conv2d.ts', 'for (let k = 0; k < T; k++) wT[dst + k] = w[src + T - 1 - k];', 'for (let k = 0; k < T; k++) wT[dst + k] = w[src + k];', ['test/ops/conv2d.test.ts']],
  ['ops', 'ReLU backward mask lets −∞ pass', 'src/ops/relu.ts', 'return ((-b & ~b) | (b & ~(b + 8388607))) >> 31;', 'return ((-b & ~b) | (b & ~(b + 8388608))) >> 31;', ['test/ops/ops.test.ts']],
  ['ops', 'SIMD padded source (im2col gather, Winograd): planes placed without the left padding', 'src/backend/wasm/gather.ts', 'place(at + pt * Wp + pl, stage,', 'place(at + pt * Wp, stage,', ['test/ops/conv2d.test.ts']],
  ['ops', 'SIMD pad kernel: rows one float short', 'src/backend/wasm/gemm_code.ts', '  x.get(W).set(j);\n', '  x.get(W).i32(1).i32Sub().set(j);\n', ['test/ops/conv2d.test.ts']],
  ['ops', 'SIMD Winograd input transform stores V transposed', 'src/backend/wasm/winograd_simd.ts', 'x.get(vOut).get(kBytes).i32(6 * i + l).i32Mul().i32Add();', 'x.get(vOut).get(kBytes).i32(6 * l + i).i32Mul().i32Add();', ['test/backend/wasm.test.ts', 'test/ops/conv2d.test.ts']],
  ['ops', 'SIMD Winograd input transform: the second tile of a pair reads the first', 'src/backend/wasm/winograd_simd.ts', 'x.get(tiles).i32Load(4).get(src).i32Add().set(a1);', 'x.get(tiles).i32Load(0).get(src).i32Add().set(a1);', ['test/backend/wasm.test.ts', 'test/ops/conv2d.test.ts']],
  ['ops', 'SIMD packA: the strip\'s rows read one row apart too few', 'src/backend/wasm/gemm_code.ts', '    for (let i = 0; i < r; i++) x.get(ld).i32Add();', '    for (let i = 1; i < r; i++) x.get(ld).i32Add();', ['test/ops/gemm.test.ts']],
  ['ops', 'SIMD packB: a strip\'s second half copied from the first', 'src/backend/wasm/gemm_code.ts', '  x.get(out).get(r).v128Load(16).v128Store(16);', '  x.get(out).get(r).v128Load(0).v128Store(16);', ['test/ops/gemm.test.ts']],
  ['ops', 'SIMD Winograd output pass: every channel gets the first channel\'s bias', 'src/backend/wasm/winograd_simd.ts', '  x.get(bp).i32(4).i32Add().set(bp);', '', ['test/backend/wasm.test.ts', 'test/ops/conv2d.test.ts']],
  ['ops', 'SIMD Winograd output pass: the second tile of a pair stored over the first', 'src/backend/wasm/winograd_simd.ts', "      for (const [lane, d] of [[0, d0], [1, d1]] as const) {", "      for (const [lane, d] of [[0, d0], [1, d0]] as const) {", ['test/backend/wasm.test.ts', 'test/ops/conv2d.test.ts']],
  ['ops', 'SIMD Winograd output pass: ReLU as pmax(0, v) (turns NaN and −0 into 0)', 'src/backend/wasm/winograd_simd.ts', '      if (relu) x.get(zero).f32x4Pmax();', '      if (relu) x.set(mv[1]).get(zero).get(mv[1]).f32x4Pmax();', ['test/backend/wasm.test.ts']],
  // fuser
  ['fuser', 'fuseConvBN eps hard-coded', 'src/reparam/kernels.ts', 'const s = g[f] / Math.sqrt(v[f] + bn.eps);', 'const s = g[f] / Math.sqrt(v[f] + 1e-5);', ['test/reparam']],
  ['fuser', 'fuseConvBN ignores the conv bias', 'src/reparam/kernels.ts', 'b[f] = beta[f] + (b0[f] - mu[f]) * s;', 'b[f] = beta[f] - mu[f] * s;', ['test/reparam']],
  ['fuser', 'padKernel off-centre', 'src/reparam/kernels.ts', 'out[fc * size * size + (i + oh) * size + j + ow] = src[fc * kh * kw + i * kw + j];', 'out[fc * size * size + i * size + j] = src[fc * kh * kw + i * kw + j];', ['test/reparam']],
  ['fuser', 'identity kernel ignores groups', 'src/nn/identity_kernel.ts', 'for (let i = 0; i < channels; i++) k[(i * Cg + (i % Cg)) * size * size + c * size + c] = 1;', 'for (let i = 0; i < channels; i++) k[(i * Cg + (i % channels) % Cg) * size * size + c * size + c] = i < Cg ? 1 : 0;', ['test/reparam']],
  ['fuser', 'sumBranches drops the biases', 'src/reparam/kernels.ts', 'for (let i = 0; i < b.length; i++) b[i] += bb[i];', '', ['test/reparam']],
  ['fuser', 'the 1×1 branch bias left out', 'src/reparam/repvgg.ts', 'branches.push({ kernel: padKernel(k1.kernel, 3), bias: k1.bias });', 'branches.push({ kernel: padKernel(k1.kernel, 3), bias: withZeroBias(k1.kernel).bias });', ['test/reparam']],
  ['families', 'grouped 1×1→k×k merge reads group 0 for every output', 'src/reparam/kernels.ts', 'const d0 = Math.floor(e / Eg) * Dg;', 'const d0 = 0;', ['test/reparam/fuse.test.ts', 'test/nn/families.test.ts']],
  ['families', 'average pool as a kernel divides by k, not k²', 'src/reparam/kernels.ts', 'out.fill(1 / (k * k), i * k * k', 'out.fill(1 / k, i * k * k', ['test/reparam/fuse.test.ts', 'test/nn/families.test.ts']],
  ['families', "padding not moved to the input (DBB's BN-valued border)", 'src/reparam/fuse.ts', 'return { ...acc, pad: [acc.pad[0] + p[0], acc.pad[1] + p[1]] };', 'return acc;', ['test/reparam/fuse.test.ts']],
  ['families', 'BNAndPad fills its border with 0, not BN(0)', 'src/nn/dbb_layers.ts', 'y.fill(v[c], yo, yo + Hp * Wp);', 'y.fill(0, yo, yo + Hp * Wp);', ['test/nn/families.test.ts']],
  ['families', 'IdentityConv1x1 forgets the identity', 'src/nn/dbb_layers.ts', 'k.data[i] += this.weight.data.data[i];', 'k.data[i] = this.weight.data.data[i];', ['test/nn/families.test.ts']],
  ['families', 'SiLU backward as σ(x) only', 'src/ops/sigmoid.ts', 'dx[i] = g[i] * s * (1 + xd[i] * (1 - s));', 'dx[i] = g[i] * s;', ['test/nn/families.test.ts']],
  ['families', 'SE backward loses the direct term dy·s', 'src/nn/squeeze_excite.ts', 'for (let i = nc * P; i < (nc + 1) * P; i++) dx.data[i] += dy.data[i] * v;', '', ['test/nn/families.test.ts']],
  ['families', 'the deploy block drops the SE', 'src/reparam/branches.ts', 'const se = block.se === null ? null : block.se.copy();', 'const se = null;', ['test/reparam/fuse.test.ts', 'test/nn/families.test.ts']],
  // I/O
  ['io', 'dialect: timm BNs swapped between branches', 'src/io/dialects.ts', "{ official: 'rbr_1x1.bn', timm: 'conv_1x1.bn', mmpretrain: 'branch_1x1.norm' },", "{ official: 'rbr_1x1.bn', timm: 'conv_kxk.bn', mmpretrain: 'branch_1x1.norm' },", ['test/io']],
  ['io', 'dialect: timm stages numbered from 1', 'src/io/dialects.ts', "head: 'head.fc.', stageFirst: 0 },", "head: 'head.fc.', stageFirst: 1 },", ['test/io']],
  ['io', 'pth: storage offset ignored', 'src/io/pth.ts', 'let raw = s.bytes.subarray(offset * item, (offset + span) * item);', 'let raw = s.bytes.subarray(0, span * item);', ['test/io']],
  ['io', 'pth: a step in the first dimension taken for contiguous', 'src/io/pth.ts', '    if (shape[k] !== 1 && stride[k] !== expect) return false;', '    if (k > 0 && shape[k] !== 1 && stride[k] !== expect) return false;', ['test/io/pth.test.ts']],
  ['io', 'pth: the last dimension gathered as if its stride were 1', 'src/io/pth.ts', '      if (++idx[k] < shape[k]) { at += stride[k]; break; }', '      if (++idx[k] < shape[k]) { at += k === d - 1 ? 1 : stride[k]; break; }', ['test/io/pth.test.ts']],
  ['io', 'pth: a 0-size view at the end of its storage refused as out of range', 'src/io/pth.ts', '  if (t.numel > 0 && last >= storage.numel) {', '  if (last >= storage.numel) {', ['test/io/pth.test.ts']],
  ['io', 'pth: a stride-0 (expanded) dimension walked with stride 1', 'src/io/pth.ts', '      at -= (shape[k] - 1) * stride[k];\n      idx[k] = 0;', '      at -= (shape[k] - 1) * (stride[k] || 1);\n      idx[k] = 0;', ['test/io/pth.test.ts']],
  ['io', 'zip: CRC checked on entries over 16 bytes only', 'src/io/zip.ts', '    if (crc32(data) !== crc) throw', '    if (usize > 16 && crc32(data) !== crc) throw', ['test/io/integrity.test.ts']],
  ['io', 'zip: CRC checked on all entries but the first', 'src/io/zip.ts', '    if (crc32(data) !== crc) throw', '    if (e > 0 && crc32(data) !== crc) throw', ['test/io/integrity.test.ts']],
  ['io', 'safetensors: a 0-d tensor\'s byte count not checked', 'src/io/safetensors.ts', '    if (count * item !== end - begin) {', '    if ((shape as number[]).length > 0 && count * item !== end - begin) {', ['test/io/integrity.test.ts']],
  ['io', 'npy: trailing bytes after the data accepted', 'src/io/npy.ts', '  if (bytes.length - dataStart !== need) {', '  if (bytes.length - dataStart < need) {', ['test/io/integrity.test.ts']],
  ['io', 'IDX: trailing bytes after the data accepted', 'src/train/idx.ts', '  if (bytes.length - dataStart !== count) {', '  if (bytes.length - dataStart < count) {', ['test/io/integrity.test.ts']],
  ['io', 'pickle: the end of the data read as STOP', 'src/io/pickle.ts', '    op = bytes[take(1)];', '    op = pos >= bytes.length ? 0x2e : bytes[take(1)];', ['test/io/integrity.test.ts']],
  ['io', 'ONNX: raw data longer than its dims accepted', 'src/io/onnx_read.ts', '    if (src.length !== numel * item) throw', '    if (src.length < numel * item) throw', ['test/io/integrity.test.ts']],
  ['defaults', "BatchNorm2d eps default 1e-3", 'src/nn/layers.ts', "    this.eps = opts.eps ?? 1e-5;", "    this.eps = opts.eps ?? 1e-3;", ['test/nn/defaults.test.ts']],
  ['defaults', "BatchNorm2d momentum default 0.03", 'src/nn/layers.ts', "    this.momentum = opts.momentum ?? 0.1;", "    this.momentum = opts.momentum ?? 0.03;", ['test/nn/defaults.test.ts']],
  ['defaults', "Conv2d without bias unless asked", 'src/nn/layers.ts', "    this.bias = opts.bias === false ? null", "    this.bias = opts.bias !== true ? null", ['test/nn/defaults.test.ts']],
  ['defaults', "AvgPool2d stride defaults to 1", 'src/nn/layers.ts', "stride: opts.stride ?? kernel,", "stride: opts.stride ?? 1,", ['test/nn/defaults.test.ts']],
  ['defaults', "RepConv BN eps left at PyTorch's 1e-5", 'src/nn/families.ts', "  const p = parts(cin, cout, { eps: 1e-3, momentum: 0.03, ...o }); // each detector's", "  const p = parts(cin, cout, { momentum: 0.03, ...o }); // each detector's", ['test/nn/defaults.test.ts']],
  ['defaults', "QARepVGG BN momentum left at 0.1", 'src/nn/families.ts', "  const p = parts(cin, cout, { eps: 1e-3, momentum: 0.03, ...o }); // YOLOv6's", "  const p = parts(cin, cout, { eps: 1e-3, ...o }); // YOLOv6's", ['test/nn/defaults.test.ts']],
  ['defaults', "Ultralytics RepConv gets its identity BN by default", 'src/nn/families.ts', "(o.identity ?? names !== 'ultralytics')", "(o.identity ?? true)", ['test/nn/defaults.test.ts']],
  ['defaults', "YOLOv6 RepVGGBlock defaults to SiLU", 'src/nn/families.ts', "(names === 'yolov6' ? 'relu' : 'silu')", "'silu'", ['test/nn/defaults.test.ts']],
  ['defaults', "MobileOne k defaults to 2", 'src/nn/families.ts', "  const k = o.branches ?? 1;", "  const k = o.branches ?? 2;", ['test/nn/defaults.test.ts']],
  ['defaults', "MobileOne SE width rounded, not truncated", 'src/nn/families.ts', "Math.max(1, Math.floor(channels * 0.0625))", "Math.max(1, Math.round(channels * 0.0625))", ['test/nn/defaults.test.ts']],
  ['defaults', "timm SE width rounded up to 8", 'src/nn/families.ts', "Math.max(8, Math.floor(Math.floor(channels / 16 + 4) / 8) * 8)", "Math.max(8, Math.ceil(channels / 16 / 8) * 8)", ['test/nn/defaults.test.ts']],
  ['defaults', "RepVGG SE width rounded up", 'src/nn/families.ts', "Math.max(1, Math.floor(cout / 16))", "Math.max(1, Math.ceil(cout / 16))", ['test/nn/defaults.test.ts']],
  ['defaults', "DBB defaults to ReLU", 'src/nn/families.ts', "return block('DBB', p, chains, { activation: o.activation ?? 'none' });", "return block('DBB', p, chains, { activation: o.activation ?? 'relu' });", ['test/nn/defaults.test.ts']],
  ['defaults', "DBB depthwise internal width = in", 'src/nn/families.ts', "(depthwise ? 2 * cin : cin)", "cin", ['test/nn/defaults.test.ts']],
  ['defaults', "DBB BNAndPad ignores the momentum given", 'src/nn/families.ts', "new BNAndPad(internal, pad, { dtype: p.dtype, eps: o.eps, momentum: o.momentum })", "new BNAndPad(internal, pad, { dtype: p.dtype, eps: o.eps })", ['test/nn/defaults.test.ts']],
  ['defaults', "RepVGG num_classes defaults to 10", 'src/nn/config.ts', "  return { inChannels, numClasses: cfg.num_classes ?? 1000, stages };", "  return { inChannels, numClasses: cfg.num_classes ?? 10, stages };", ['test/nn/defaults.test.ts']],
  ['defaults', "MobileOne num_blocks_per_stage default changed", 'src/nn/mobileone.ts', "  const nb = cfg.num_blocks_per_stage ?? [2, 8, 10, 1];", "  const nb = cfg.num_blocks_per_stage ?? [2, 8, 8, 1];", ['test/nn/defaults.test.ts']],
  ['tests II', "protobuf: an 11-byte varint accepted", 'src/io/protobuf.ts', "    if (i === 10) throw", "    if (i === 11) throw", ['test/io/protobuf.test.ts', 'test/io/onnx_read.test.ts']],
  ['tests II', "protobuf: a LEN field may run one byte past its message", 'src/io/protobuf.ts', "      if (n > BigInt(end - pos)) throw", "      if (n > BigInt(end - pos + 1)) throw", ['test/io/protobuf.test.ts', 'test/io/onnx_read.test.ts']],
  ['tests II', "protobuf: a fixed-width field may run one byte past its message", 'src/io/protobuf.ts', "      if (pos + n > end) throw", "      if (pos + n > end + 1) throw", ['test/io/protobuf.test.ts', 'test/io/onnx_read.test.ts']],
  ['tests II', "protobuf: negative varints written as their magnitude", 'src/io/protobuf.ts', "    let x = BigInt.asUintN(64, BigInt(v));", "    let x = BigInt(v) < 0n ? -BigInt(v) : BigInt(v);", ['test/io/protobuf.test.ts', 'test/io/onnx_read.test.ts']],
  ['tests II', "protobuf: int64 read unsigned", 'src/io/protobuf.ts', "  const v = BigInt.asIntN(64, f.varint);\n  if (v >", "  const v = BigInt.asUintN(64, f.varint);\n  if (v >", ['test/io/protobuf.test.ts', 'test/io/onnx_read.test.ts']],
  ['tests II', "protobuf: field number 0 accepted", 'src/io/protobuf.ts', "    if (field === 0) throw", "    if (field === -1) throw", ['test/io/protobuf.test.ts', 'test/io/onnx_read.test.ts']],
  ['tests II', "protobuf: invalid UTF-8 strings replaced instead of refused", 'src/io/protobuf.ts', "const UTF8 = new TextDecoder('utf-8', { fatal: true });", "const UTF8 = new TextDecoder('utf-8', { fatal: false });", ['test/io/protobuf.test.ts', 'test/io/onnx_read.test.ts']],
  ['tests II', "ONNX: axis \u2212rank\u22121 accepted", 'src/onnx/value.ts', "axis < -rank || axis >= rank)", "axis < -rank - 1 || axis >= rank)", ['test/onnx/ops.test.ts']],
  ['tests II', "ONNX: shapes that do not broadcast accepted", 'src/onnx/value.ts', "    if (x !== y && x !== 1 && y !== 1) throw", "    if (x !== y && x !== 1 && y !== 1 && x * y === 0) throw", ['test/onnx/ops.test.ts']],
  ['tests II', "ONNX: 2-D integer lists accepted", 'src/onnx/value.ts', "  if (v.shape.length > 1) throw", "  if (v.shape.length > 2) throw", ['test/onnx/ops.test.ts']],
  ['tests II', "ONNX: an int attribute of another kind read anyway", 'src/onnx/value.ts', "  if (a.kind !== 'int') throw", "  if (a.kind === 'string') throw", ['test/onnx/ops.test.ts']],
  ['tests II', "Rng.shuffle never leaves an element in place (Sattolo)", 'src/tensor/rng.ts', "      const j = this.int(i + 1);", "      const j = this.int(i);", ['test/tensor']],
  ['tests II', "Rng.next drops its 26 low bits", 'src/tensor/rng.ts', "    return (hi * 67108864 + lo) / 9007199254740992;", "    return (hi * 67108864) / 9007199254740992;", ['test/tensor']],
  ['tests II', "Winograd applied to strided 3\u00d73", 'src/ops/conv2d.ts', "g.KH === 3 && g.KW === 3 && g.sh === 1 && g.sw === 1 && g.dh", "g.KH === 3 && g.KW === 3 && g.dh", ["test/nn", "test/ops"]],
  ['tests II', "algorithm plan: a missing entry accepted", 'src/nn/conv_algorithm.ts', "  if (missing.length > 0) throw", "  if (missing.length > 1) throw", ['test/nn/plan.test.ts']],
  ['tests II', "algorithm plan: winogradTile not checked", 'src/nn/conv_algorithm.ts', "e.winogradTile !== 2 && e.winogradTile !== 4) throw", "e.winogradTile === 3) throw", ['test/nn/plan.test.ts']],
  ['tests II', "convert: probe compares against the deploy model itself", 'src/cli/commands/convert.ts', "    const y0 = model.forward(x), y1 = deploy.forward(x);", "    const y0 = deploy.forward(x), y1 = deploy.forward(x);", ['test/cli/cli.test.ts']],
  ['tests II', "convert: max |logit| taken from the difference", 'src/cli/commands/convert.ts', "      maxAbs = Math.max(maxAbs, Math.abs(y0.data[i]));", "      maxAbs = Math.max(maxAbs, Math.abs(y0.data[i] - y1.data[i]));", ['test/cli/cli.test.ts']],
  ['tests II', "direct conv: dilation ignored across rows", 'src/ops/conv2d_direct.ts', "      for (let oh = 0; oh < Ho; oh++) {\n        for (let ow = 0; ow < Wo; ow++) {\n          let acc = bias;", "      for (let oh = 0; oh < Ho; oh++) {\n        for (let ow = 0; ow < Wo; ow++) {\n          let acc = 0 * bias;", ["test/ops"]],
  ['tests II', "module: eval() does not reach children", 'src/nn/module.ts', "    for (const [, c] of this.children()) c.train(mode);", "", ["test/nn"]],
  ['tests II', "seed 2\u00b3\u00b2 accepted", 'src/tensor/check.ts', "v <= 0xffffffff\n", "v <= 0x100000000\n", ["test/tensor", "test/cli/args.test.ts", "test/io/hostile.test.ts"]],
  ['tests II', "count 0 accepted", 'src/tensor/check.ts', "Number.isSafeInteger(v) && v >= 1", "Number.isSafeInteger(v) && v >= 0", ["test/tensor", "test/cli/args.test.ts", "test/io/hostile.test.ts"]],
  ['tests II', "a fractional index accepted", 'src/tensor/check.ts', "kind === 'index' ? Number.isSafeInteger(v) && v >= 0", "kind === 'index' ? v >= 0", ["test/tensor", "test/cli/args.test.ts", "test/io/hostile.test.ts"]],
  ['tests II', "positive accepts 0", 'src/tensor/check.ts', "kind === 'positive' ? v > 0 : v >= 0", "kind === 'positive' ? v >= 0 : v >= 0", ["test/tensor", "test/cli/args.test.ts", "test/io/hostile.test.ts"]],
  ['tests II', "number flags take whatever Number() parses (0x10, ' 1_0')", 'src/cli/args.ts', ": !/^[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?$/.test(text)", ": Number.isNaN(Number(text))", ["test/tensor", "test/cli/args.test.ts", "test/io/hostile.test.ts"]],
  ['tests II', "right-to-left override passes to the terminal", 'src/tensor/untrusted.ts', "const UNSAFE = /[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e", "const UNSAFE = /[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202d", ["test/tensor", "test/cli/args.test.ts", "test/io/hostile.test.ts"]],
  ['tests II', "'..' with backslashes stays in the folder", 'src/tensor/untrusted.ts', "(^|[\\\\/])\\.\\.([\\\\/]|$)", "(^|\\/)\\.\\.(\\/|$)", ["test/tensor", "test/cli/args.test.ts", "test/io/hostile.test.ts"]],
  ['tests II', "a NUL in a path accepted", 'src/tensor/untrusted.ts', "([\\\\/]|$)|\\u0000/.test(path)", "([\\\\/]|$)/.test(path)", ["test/tensor", "test/cli/args.test.ts", "test/io/hostile.test.ts"]],
  ['house', 'an upward import (nn from reparam)', 'src/nn/dbb_layers.ts', "import { BatchNorm2d } from './layers.js';", "import { BatchNorm2d } from './layers.js';\nimport '../reparam/kernels.js';", ['test/layering.test.ts']],
  ['house', "'winograd' on a module runs where Winograd does not apply", 'src/ops/conv2d.ts', "  return requested === 'winograd' && !winogradApplies(g) ? 'im2col' : requested;", '  return requested;', ['test/nn/layers.test.ts', 'test/io/onnx_read.test.ts']],
  ['house', 'winogradApplies forgets padding', 'src/ops/conv2d.ts', ' && g.pt <= 2 && g.pb <= 2 && g.pl <= 2 && g.pr <= 2;', ';', ['test/ops/conv2d.test.ts', 'test/nn/layers.test.ts']],
  ['speed', "'auto' times training's candidates with filters prepared once (as eval)", 'src/ops/conv2d.ts', '  const U = new Map(weightsChange ? [] :', '  const U = new Map(false ? [] :', ['test/nn/plan.test.ts']],
  ['speed', "'auto' times at the first call of a shape", 'src/ops/conv2d.ts', '  return n <= AUTO_AFTER ? UNTIMED : undefined;', '  return undefined;', ['test/nn/plan.test.ts', 'test/backend/wasm.test.ts']],
  ['speed', "'auto' shares one choice between fixed and changing weights", 'src/ops/conv2d.ts', "weightsChange ? 'train' : 'eval', g.N", "'any', g.N", ['test/nn/plan.test.ts']],
  ['speed', "'auto' counts a module's calls with every other module's of the shape", 'src/nn/layers.ts', "autoAlgorithm(g, x.dtype, this.training, this.autoCalls)", "autoAlgorithm(g, x.dtype, this.training)", ['test/nn/plan.test.ts']],
  ['io', 'compare: rtol scales the output instead of the reference', 'src/io/compare.ts', 'd - (atol + rtol * Math.abs(r));', 'd - (atol + rtol * Math.abs(o));', ['test/io/compare.test.ts']],
  ['io', 'compare: a tolerance boundary counted as a failure', 'src/io/compare.ts', '    if (!(excess <= 0)) c.failures++;', '    if (!(excess < 0)) c.failures++;', ['test/io/compare.test.ts']],
  ['io', 'compare: NaN equal to NaN', 'src/io/compare.ts', '    if (o === r) continue;', '    if (o === r || (o !== o && r !== r)) continue;', ['test/io/compare.test.ts']],
  ['docs', 'an exported name the README uses is renamed', 'src/index.ts', "export { convert, fuseRepVGGBlock } from './reparam/repvgg.js';", "export { convert as convertModel, fuseRepVGGBlock } from './reparam/repvgg.js';", ['test/docs.test.ts'], 'build'],
  ['docs', "a command's usage text changes without the CLI reference", 'src/cli/commands/verify.ts', "tolerances 0 ask for equality (computed in float64)", "tolerances 0 ask for equality", ['test/cli/reference.test.ts']],
  ['house', "BNAndPad describes its BN without its border", 'src/nn/dbb_layers.ts', "return { kind: 'bn', bn: this.bn, pad: this.pad, statsAt: '.bn' };", "return { kind: 'bn', bn: this.bn, pad: 0, statsAt: '.bn' };", ['test/reparam', 'test/nn/families.test.ts']],
  ['house', 'SiLU describes itself as linear', 'src/nn/layers.ts', "  override fuseStage(): FuseStage {\n    return { kind: 'nonlinear' };\n  }\n\n  forward(x: Tensor): Tensor {\n    this.x = x;\n    return silu", "  override fuseStage(): FuseStage {\n    return { kind: 'conv', weight: new Tensor(new Float64Array(1), [1, 1, 1, 1]), bias: null, padding: 0, stride: 1, dilation: 1, groups: 1, what: '' };\n  }\n\n  forward(x: Tensor): Tensor {\n    this.x = x;\n    return silu", ['test/reparam']],
  ['io', 'pth: big-endian storages not swapped', 'src/io/pth.ts', '    s.bigEndian = bigEndian;\n  }\n  return value;', '    s.bigEndian = false;\n  }\n  return value;', ['test/io']],
  ['io', 'zip: CRC not checked', 'src/io/zip.ts', 'if (crc32(data) !== crc) throw', 'if (false) throw', ['test/io']],
  ['io', 'pickle: TUPLE2 reversed', 'src/io/pickle.ts', 'case 0x86: { const b = pop(), a = pop(); stack.push(tuple([a, b])); break; }', 'case 0x86: { const a = pop(), b = pop(); stack.push(tuple([a, b])); break; }', ['test/io']],
  ['io', 'pickle: BININT read unsigned', 'src/io/pickle.ts', 'case 0x4a: stack.push(dv.getInt32(take(4), true)); break; // BININT', 'case 0x4a: stack.push(dv.getUint32(take(4), true)); break; // BININT', ['test/io']],
  ['io', 'ONNX: Gemm without transB', 'src/io/onnx.ts', "'logits', [['transB', 1]]);", "'logits', [['transB', 0]]);", ['test/io/onnx.test.ts']],
  ['io', 'ONNX: groups dropped', 'src/io/onnx.ts', "['dilations', [1, 1]], ['group', c.groups]]);", "['dilations', [1, 1]], ['group', 1]]);", ['test/io/onnx.test.ts']],
  ['io', 'npy: Fortran order read as C order', 'src/io/npy.ts', "if (fortran === 'True') throw", "if (fortran === 'Maybe') throw", ['test/io']],
  ['io', 'float16: exponent bias 14', 'src/io/dtypes.ts', 'return s * (1 + f / 1024) * 2 ** (e - 15);', 'return s * (1 + f / 1024) * 2 ** (e - 14);', ['test/io']],
  ['io', 'IDX sizes read little-endian', 'src/train/idx.ts', 'shape.push(dv.getUint32(4 + 4 * i, false));', 'shape.push(dv.getUint32(4 + 4 * i, true));', ['test/train']],
  ['io', 'state dict: unexpected keys accepted', 'src/io/state_dict.ts', 'if (extra.length > 0) throw', 'if (extra.length > 1e9) throw', ['test/io', 'test/nn']],
  // ONNX in: reader, evaluator, fuse-onnx
  ['onnx', 'reader: nodes left in file order (no topological sort)', 'src/io/onnx_read.ts', '  return { graphName, nodes: topologicalOrder(nodes, initializers, inputs, outputs), initializers', '  topologicalOrder(nodes, initializers, inputs, outputs);\n  return { graphName, nodes, initializers', ['test/io/onnx_read.test.ts']],
  ['onnx', 'reader: external data through a link out accepted', 'src/cli/files.ts', "    if (!real.startsWith(folder + '/')) throw", '    if (false) throw', ['test/io/onnx_read.test.ts']],
  ['onnx', 'BatchNormalization ignores epsilon', 'src/onnx/ops_nn.ts', "const eps = attrFloat(node, 'epsilon', 1e-5);", 'const eps = 1e-5;', ['test/onnx/run.test.ts']],
  ['onnx', 'pooling: ceil_mode without PyTorch\'s last-window rule', 'src/onnx/ops_nn.ts', '  if (ceil && (out - 1) * s >= n + p0) out--;', '', ['test/onnx']],
  ['onnx', 'AveragePool divides by the padded window when count_include_pad = 0', 'src/onnx/ops_nn.ts', 's / (includePad ? padded : inside)', 's / padded', ['test/onnx/run.test.ts']],
  ['onnx', 'ConvTranspose kernel flipped', 'src/onnx/ops_nn.ts', 'acc[yo + oh * Wo + ow] += v * w.data[wo + i * KW + j];', 'acc[yo + oh * Wo + ow] += v * w.data[wo + (KH - 1 - i) * KW + (KW - 1 - j)];', ['test/onnx/run.test.ts']],
  ['onnx', 'Resize asymmetric as half-pixel', 'src/onnx/ops_nn.ts', "        case 'asymmetric': return o / scale;", "        case 'asymmetric': return (o + 0.5) / scale - 0.5;", ['test/onnx/run.test.ts']],
  ['onnx', 'Resize linear: the vertical weight unused', 'src/onnx/ops_nn.ts', ': top * (1 - th) + bottom * th;', ': top;', ['test/onnx/run.test.ts']],
  ['onnx', 'Softmax before opset 13 along one axis only', 'src/onnx/ops_math.ts', "const len = ctx.opset >= 13 ? x.shape[axis] : numel(x.shape.slice(axis));", 'const len = x.shape[axis];', ['test/onnx']],
  ['onnx', 'Gemm ignores transB', 'src/onnx/ops_math.ts', "const tA = attrInt(node, 'transA', 0) === 1, tB = attrInt(node, 'transB', 0) === 1;", "const tA = attrInt(node, 'transA', 0) === 1, tB = false;", ['test/onnx/run.test.ts']],
  ['onnx', 'Slice ignores steps', 'src/onnx/ops_shape.ts', "    const steps = xs[4] ? intsOf(node, xs[4], 'steps') : starts.map(() => 1);", '    const steps = starts.map(() => 1);', ['test/onnx/run.test.ts']],
  ['onnx', 'fuse-onnx drops the post-sum BN', 'src/onnx/fuse.ts', "after[0].opType === 'BatchNormalization' && linearStage(after[0])) { post = after[0]; out = post.outputs[0]; }", "after[0].opType === 'BatchNormalization' && linearStage(after[0]) && false) { post = after[0]; out = post.outputs[0]; }", ['test/onnx/fuse.test.ts']],
  ['onnx', 'fuse-onnx walks through a tensor another node also reads', 'src/onnx/fuse.ts', "      if (p === undefined || consumed.has(p) || !linearStage(p) || (cur !== term && !private1(cur))) break;", '      if (p === undefined || consumed.has(p) || !linearStage(p)) break;', ['test/onnx']],
  ['onnx', 'fuse-onnx error model as if float32 files were float64', 'src/onnx/check.ts', '  const u = float64 ? 2 ** -53 : 2 ** -24;', '  const u = 2 ** -53;', ['test/onnx/fuse.test.ts']],
  ['onnx', 'a padding run read one row too far into the interior', 'src/onnx/borders.ts', 'const inside = i >= ph && i < H + ph && j >= pw && j < W + pw;', 'const inside = i >= ph && i <= H + ph && j >= pw && j < W + pw;', ['test/onnx/fuse.test.ts']],
  ['onnx', "a padding run's input may be read by other data nodes", 'src/onnx/borders.ts', "(readers.get(t) ?? []).every((r) => r === run[i] ? r.inputs.indexOf(t, 1) < 0 : side.has(r))", '(readers.get(t) ?? []).every((r) => r === run[i] ? r.inputs.indexOf(t, 1) < 0 : true)', ['test/onnx/fuse.test.ts']],
  ['onnx', 'a per-channel Mul read as its first value', 'src/onnx/fuse.ts', 'bn.weight.data.data[c] = t.data[t.data.length === 1 ? 0 : c];', 'bn.weight.data.data[c] = t.data[0];', ['test/onnx/fuse.test.ts']],
  ['onnx', 'an AveragePool that leaves its padding out taken as a stage', 'src/onnx/fuse.ts', "(p[0] === 0 || attrInt(n, 'count_include_pad', 0) === 1)", 'true', ['test/onnx/fuse.test.ts']],
  ['onnx', "a chain's padding not summed over its stages", 'src/onnx/fuse.ts', "else if (border !== undefined && border.nodes.at(-1) === n) { ph += border.pad[0]; pw += border.pad[1]; }", '', ['test/onnx/fuse.test.ts']],
  ['onnx', 'adopted raw data moved even over the span before it', 'src/io/onnx_read.ts', '    if (at >= end) {', '    if (true) {', ['test/io/onnx_read.test.ts']],
  ['onnx', 'adopted raw data viewed where it lies, unaligned bytes ignored', 'src/io/onnx_read.ts', "      if (at !== src.byteOffset) new Uint8Array(src.buffer).copyWithin(at, src.byteOffset, src.byteOffset + src.length);\n", '', ['test/io/onnx_read.test.ts']],
  ['quant', 'round half away from zero, not to even', 'src/onnx/ops_quant.ts', '  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;', '  return Math.round(v);', ['test/onnx/quant.test.ts']],
  ['quant', 'requantization multiplier in float64, not float32 as onnxruntime', 'src/onnx/ops_quant.ts', 'const M = Float64Array.from(sb, (s) => fl(fl(sa * s) / sy));', 'const M = Float64Array.from(sb, (s) => (sa * s) / sy);', ['test/onnx/quant.test.ts']],
  ['quant', "QLinearConv drops its int32 bias", 'src/onnx/ops_quant.ts', '      for (let i = 0; i < acc.data.length; i++) acc.data[i] += B.data[Math.floor(i / HW) % F];\n', '', ['test/onnx/quant.test.ts']],
  ['quant', "integer conv ignores x's zero point (pads with 0, not x_zp)", 'src/onnx/ops_quant.ts', 'const xs = new Tensor(shifted(ctx, x, xzp, () => 0), x.shape);', 'const xs = new Tensor(new Float64Array(x.data), x.shape);', ['test/onnx/quant.test.ts']],
  ['quant', 'per-axis scales indexed along the last axis', 'src/onnx/ops_quant.ts', '  return { n, index: (i) => Math.floor(i / inner) % n };', '  return { n, index: (i) => i % n };', ['test/onnx/quant.test.ts']],
  ['families', "QARepVGG's BN eps back to PyTorch's 1e-5 (YOLOv6 sets 1e-3)", 'src/nn/families.ts', "parts(cin, cout, { eps: 1e-3, momentum: 0.03, ...o }); // YOLOv6's", "parts(cin, cout, { momentum: 0.03, ...o }); // YOLOv6's", ['test/nn/families.test.ts']],
  ['families', "RepConv's BN momentum back to PyTorch's 0.1 (the detectors set 0.03)", 'src/nn/families.ts', 'const p = parts(cin, cout, { eps: 1e-3, momentum: 0.03, ...o }); // each detector', 'const p = parts(cin, cout, { eps: 1e-3, ...o }); // each detector', ['test/nn/families.test.ts']],
  ['families', "RepConv's yolov7 naming defaults to ReLU", 'src/nn/families.ts', "activation: o.activation ?? (names === 'yolov6' ? 'relu' : 'silu')", "activation: o.activation ?? (names === 'ultralytics' ? 'silu' : 'relu')", ['test/nn/families.test.ts']],
  ['blocks', 'the identity BN ignored when inferring in and groups', 'src/reparam/state_dict_blocks.ts', '  if (!identity) return { in: Cg, groups: 1 };', '  return { in: Cg, groups: 1 };', ['test/reparam/state_dict_blocks.test.ts']],
  ['blocks', "YOLOv6's RepVGGBlock naming guessed as RepVGG's eps", 'src/reparam/state_dict_blocks.ts', "roots: ['rbr_dense.', 'rbr_1x1.', 'rbr_identity.', 'se.'], eps: null,", "roots: ['rbr_dense.', 'rbr_1x1.', 'rbr_identity.', 'se.'], eps: 1e-5,", ['test/reparam/state_dict_blocks.test.ts']],
  ['blocks', "QARepVGG's post-sum bn folded although YOLOv6's form was asked", 'src/reparam/state_dict_blocks.ts', "(opts.qarepvgg ?? 'yolov6') === 'yolov6'", "(opts.qarepvgg ?? 'yolov6') === 'folded'", ['test/reparam/state_dict_blocks.test.ts']],
  ['blocks', 'a block\'s keys outside its branches swallowed', 'src/reparam/state_dict_blocks.ts', '.filter((k) => p.roots.some((r) => k.slice(prefix.length).startsWith(r)));', ';', ['test/reparam/state_dict_blocks.test.ts']],
  ['pickle', "a module tree's non-persistent buffers kept", 'src/io/checkpoint.ts', "if (t === null || (kind === '_buffers' && transient.has(name))) continue;", 'if (t === null) continue;', ['test/io/checkpoint.test.ts']],
  ['pickle', 'a module tree walked children last first', 'src/io/checkpoint.ts', '    for (let i = kids.length - 1; i >= 0; i--) { // in order, depth first', '    for (let i = 0; i < kids.length; i++) { // in order, depth first', ['test/io/checkpoint.test.ts', 'test/io/pth.test.ts']],
  ['pickle', 'protocol 2 sets read as inert records', 'src/io/pickle.ts', '    return new Set(items);\n', '    return new PyObject(new PyGlobal(...(name.split(\'.\') as [string, string])), args);\n', ['test/io/checkpoint.test.ts']],
  ['quant', 'QDQ patterns run as the float graph by default', 'src/onnx/run.ts', "if ((opts.qdq ?? 'integer') === 'integer') {", "if ((opts.qdq ?? 'float') === 'integer') {", ['test/onnx/quant.test.ts']],
  ['quant', "a QDQ conv's bias dropped when fused", 'src/onnx/qdq.ts', '        bias = [b.inputs[0]];', '        bias = [];', ['test/onnx/quant.test.ts']],
  ['quant', 'zero point with the wrong sign of lo', 'src/onnx/quantize.ts', 'roundHalfEven(qmin - a / scale)', 'roundHalfEven(qmin + a / scale)', ['test/onnx/quantize.test.ts']],
  ['quant', 'bias quantized at the weight scale alone', 'src/onnx/quantize.ts', '(_, c) => fl(xq.params.scale * ws[c])', '(_, c) => ws[c]', ['test/onnx/quantize.test.ts']],
  ['quant', "a weight channel's scale misses its last element", 'src/onnx/quantize.ts', 'for (let i = c * per; i < (c + 1) * per; i++) out[c] = Math.max(out[c], Math.abs(v[i]));', 'for (let i = c * per; i < (c + 1) * per - 1; i++) out[c] = Math.max(out[c], Math.abs(v[i]));', ['test/onnx/quantize.test.ts', 'test/onnx/quant_report.test.ts']],
  ['quant', 'mse calibration tries no clipping', 'src/onnx/quantize.ts', '    for (let k = 100; k >= 20; k--) {', '    for (let k = 100; k >= 100; k--) {', ['test/onnx/quantize.test.ts']],
  ['quant', "quant-report's BN scale without eps", 'src/onnx/quant_report.ts', 'Math.sqrt(bn.runningVar.data[c] + bn.eps)', 'Math.sqrt(bn.runningVar.data[c])', ['test/onnx/quant_report.test.ts']],
  ['quant', 'quant-report sensitivity with every layer quantized', 'src/onnx/quant_report.ts', '{ only: [conv.name], ranges }', '{ ranges }', ['test/onnx/quant_report.test.ts']],
  ['families', "timm's MobileOne SE sized ⌊out/16⌋ like apple's", 'src/nn/families.ts', "names === 'timm' ? Math.max(8, Math.floor(Math.floor(channels / 16 + 4) / 8) * 8) : ", "names === 'timm' ? Math.max(1, Math.floor(channels * 0.0625)) : ", ['test/nn/families.test.ts']],
  ['families', "timm's MobileOne SE under apple's name 'se'", 'src/nn/families.ts', "seName: timm ? 'attn' : 'se',", "seName: 'se',", ['test/nn/families.test.ts']],
  ['families', "a family's BN momentum not passed to its BatchNorms", 'src/nn/families.ts', 'eps: o.eps, momentum: o.momentum }),', 'eps: o.eps }),', ['test/nn/families.test.ts']],
  ['families', 'a border that differs from the bias before it accepted', 'src/reparam/fuse.ts', '    if (c >= 0) throw new Error(`${at}: pads channel', '    if (c >= 0 && false) throw new Error(`${at}: pads channel', ['test/reparam/fuse.test.ts']],
  ['onnx', 'the run frees a value its later reader still needs', 'src/onnx/run.ts', "  model.nodes.forEach((n, i) => { for (const x of n.inputs) if (x !== '') lastUse.set(x, i); });", "  model.nodes.forEach((n, i) => { for (const x of n.inputs) if (x !== '' && !lastUse.has(x)) lastUse.set(x, i); });", ['test/onnx/run.test.ts']],
  // the paper's ablations
  ['nn', 'Residual Reorg: backward forgets the shortcut', 'src/nn/residual_reorg.ts', 'for (let i = 0; i < out.size; i++) out.data[i] += ds.data[i];', 'for (let i = 0; i < out.size; i++) out.data[i] += 0 * ds.data[i];', ['test/nn']],
  ['nn', 'Residual Reorg: no ReLU between the two convs', 'src/nn/residual_reorg.ts', 'const main = this.conv2.forward(this.act1.forward(this.conv1.forward(x)));', 'const main = this.conv2.forward(this.conv1.forward(x));', ['test/nn']],
  ['nn', 'variant block backward drops an element of a later branch', 'src/nn/branch_block.ts', '      else for (let i = 0; i < dx.size; i++) dx.data[i] += g.data[i];', '      else for (let i = 0; i < dx.size - 1; i++) dx.data[i] += g.data[i];', ['test/nn', 'test/reparam']],
  ['nn', 'DiracNet adds an identity to a stride-2 layer', 'src/nn/variants.ts', 'this.identity = inChannels === channels && this.stride === 1;', 'this.identity = inChannels === channels;', ['test/reparam/variants.test.ts']],
  ['cli', 'ablate: population instead of sample standard deviation', 'src/cli/commands/ablate.ts', 'Math.sqrt(ss / (v.length - 1))', 'Math.sqrt(ss / v.length)', ['test/cli/demo.test.ts']],
  // faults
  ['faults', 'an output may be an input', 'src/cli/files.ts', 'if (same !== undefined && !inout.has(idOf(st))) throw', 'if (same === "never") throw', ['test/cli/faults.test.ts']],
  // Faults III
  ['faults', 'a file inside an input folder may be an output', 'src/cli/files.ts', "        if (e !== null) inputs.set(idOf(e), `'${join(f.path, n)}' in ${f.flag} '${f.path}'`);", '', ['test/cli/faults.test.ts']],
  ['faults', 'an output folder with a user\'s file in it is replaced', 'src/cli/files.ts', '    if (!names.includes(n)) throw', '    if (!names.includes(n) && false) throw', ['test/cli/faults.test.ts']],
  ['faults', 'outputs not probed before work (/proc fails after training)', 'src/cli/files.ts', "    probeWritable(f.role === 'out-dir' ? f.path : dirname(resolve(f.path)), who);", '', ['test/cli/faults.test.ts']],
  ['faults', 'a live writer\'s temporary file removed', 'src/cli/files.ts', '    if (pid === process.pid || alive(pid)) continue;', '    if (pid === process.pid) continue;', ['test/cli/faults.test.ts']],
  ['faults', 'a lone .old folder (the only copy) removed, not put back', 'src/cli/files.ts', "    if (m[2] === 'old' && statOrNull(join(dir, name)) === null)", "    if (m[2] === 'never')", ['test/cli/faults.test.ts']],
  ['faults', 'no escaping where lines leave the process', 'src/cli/main.ts', 'const io: Io = { out: (l) => rawIo.out(terminalSafe(l, true)), err: (l) => rawIo.err(terminalSafe(l, false)),', 'const io: Io = { out: (l) => rawIo.out(l), err: (l) => rawIo.err(l),', ['test/cli/faults.test.ts']],
  ['faults', 'escaping forgets C1 controls (CSI 0x9b)', 'src/tensor/untrusted.ts', "const UNSAFE = /[\\u0000-\\u001f\\u007f-\\u009f", "const UNSAFE = /[\\u0000-\\u001f\\u007f", ['test/cli/faults.test.ts', 'test/io/hostile.test.ts']],
  ['faults', 'describeValue walks as deep as the value goes', 'src/tensor/untrusted.ts', '      if (depth >= 2 || budget <= 0) return', '      if (budget <= -1e9) return', ['test/io/hostile.test.ts']],
  ['faults', 'option names found on Object.prototype', 'src/cli/args.ts', 'const kind = Object.hasOwn(spec.flags, name) ? spec.flags[name] : undefined;', 'const kind = (spec.flags as Record<string, FlagKind | undefined>)[name];', ['test/cli/faults.test.ts']],
  ['faults', 'pickle LONG decoded by a shift per byte (quadratic)', 'src/io/pickle.ts', "  let v = BigInt(`0x${parts.join('')}`);", '  let v = 0n;\n  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);', ['test/io/hostile.test.ts']],
  ['faults', 'OrderedDict items not checked', 'src/io/pth.ts', '    if (!Array.isArray(kv) || kv.length !== 2) throw', '    if (kv === undefined) throw', ['test/io/hostile.test.ts']],
  ['faults', 'legacy .pth: protocol 4\'s FRAME not skipped', 'src/io/pth.ts', "  const at = bytes[1] >= 4 && bytes[2] === 0x95 ? 11 : 2;", '  const at = 2;', ['test/io/pth.test.ts']],
  ['faults', 'safetensors depth not checked before JSON.parse', 'src/io/safetensors.ts', '  if (deep >= 0) throw', '  if (deep >= 1e9) throw', ['test/io/hostile.test.ts']],
  ['faults', "paths with '..' accepted (zip names, ONNX external data)", 'src/tensor/untrusted.ts', '|(^|[\\\\/])\\.\\.([\\\\/]|$)|', '|', ['test/io/hostile.test.ts', 'test/io/onnx_read.test.ts']],
  ['faults', 'a non-tensor in a plain state dict not named', 'src/io/checkpoint.ts', '  if (found === undefined && tensors > 0) {', '  if (found === undefined && tensors < 0) {', ['test/cli/faults.test.ts']],
  ['faults', 'inspect more lenient than loading', 'src/cli/commands/inspect.ts', '    checkStateDictKeys(new RepVGG(plan, { deploy, init: false }), ck.entries);', '', ['test/cli/faults.test.ts']],
  ['faults', 'loading accepts NaN weights', 'src/io/state_dict.ts', 'if (!Number.isFinite(d[i])) throw', 'if (Number.isNaN(d[i] + 1) && false) throw', ['test/cli/faults.test.ts']],
  ['faults', 'verify: equal infinities fail', 'src/io/compare.ts', '    if (o === r) continue;', '', ['test/cli/faults.test.ts', 'test/cli/oracle.test.ts']],
  ['faults', 'batch of one silently allowed', 'src/train/fit.ts', 'if (Math.min(batchSize, N) !== 1 && last !== 1) return;', 'return;', ['test/cli/faults.test.ts']],
  // training
  // ('first ? d : mu·v + d' → 'mu·v + d' is equivalent: v starts at zero, so it is not listed)
  ['train', 'SGD velocity forgets weight decay', 'src/train/sgd.ts', '          v[i] = d;', '          v[i] = g[i];', ['test/train']],
  ['train', 'SGD weight decay with the wrong sign', 'src/train/sgd.ts', 'let d = g[i] + wd * th[i];', 'let d = g[i] - wd * th[i];', ['test/train']],
  ['train', 'SGD forgets to bump Parameter.version', 'src/train/sgd.ts', '        th[i] -= lr * d;\n      }\n      p.version++;', '        th[i] -= lr * d;\n      }', ['test/train', 'test/nn']],
  ['train', 'cosine schedule off by half a period', 'src/train/sgd.ts', '(1 + Math.cos((Math.PI * t) / Math.max(1, totalSteps)))', '(1 + Math.cos((Math.PI * t) / Math.max(1, 2 * totalSteps)))', ['test/train']],
  ['train', 'horizontal flip leaves the middle pair', 'src/train/augment.ts', 'for (let i = 0, j = W - 1; i < j; i++, j--) {', 'for (let i = 0, j = W - 1; i < j - 1; i++, j--) {', ['test/train']],
  // MobileOne networks (src/nn/mobileone.ts, its key inference, its ONNX export)
  ['mobileone', 'S4 SE in every unit of stage 3', 'src/nn/mobileone.ts', '(i === 2 ? Math.floor(n / 2) : i === 3 ? n : 0)', '(i === 2 ? n : i === 3 ? n : 0)', ['test/nn/mobileone.test.ts']],
  ['mobileone', 'each stage downsamples in its pointwise block, not its depthwise one', 'src/nn/mobileone.ts', "kernelSize: 3, stride: u === 0 ? 2 : 1, groups: planes", "kernelSize: 3, stride: 1, groups: planes", ['test/nn/mobileone.test.ts']],
  ['mobileone', 'stage0 takes the k conv branches', 'src/nn/mobileone.ts', "outChannels: planes, kernelSize: 3, stride: 2, groups: 1, branches: 1, se: false }];", "outChannels: planes, kernelSize: 3, stride: 2, groups: 1, branches: k, se: false }];", ['test/nn/mobileone.test.ts']],
  ['mobileone', 'stem width not capped at 64', 'src/nn/mobileone.ts', 'let planes = Math.min(64, Math.trunc(64 * cfg.width_multipliers[0]));', 'let planes = Math.trunc(64 * cfg.width_multipliers[0]);', ['test/nn/mobileone.test.ts']],
  ['mobileone', 'counts: every conv at the stage input\'s size (strides ignored)', 'src/nn/mobileone.ts', '    size = Math.floor((size + 2 * pad - k) / b.stride) + 1;', '    size = Math.floor((size + 2 * pad - k) / 1) + 1;', ['test/nn/mobileone.test.ts']],
  ['mobileone', 'key inference: a depthwise block taken as dense', 'src/io/state_dict.ts', "const groups = kind === 'dw' ? cin : 1;", 'const groups = 1;', ['test/nn/mobileone.test.ts']],
  ['mobileone', 'key inference: the SE looked up under the wrong name', 'src/io/state_dict.ts', "['conv_kxk', 'attn', 'fc1'] : ['rbr_conv', 'se', 'reduce']", "['conv_kxk', 'attn', 'fc1'] : ['rbr_conv', 'attn', 'reduce']", ['test/nn/mobileone.test.ts']],
  ['mobileone', 'a timm deploy RepVGG taken for a MobileOne', 'src/io/state_dict.ts', "src.get('stages.0.1.reparam_conv.weight')?.shape[2] === 1) return 'timm';", "src.has('stages.0.1.reparam_conv.weight')) return 'timm';", ['test/io', 'test/cli/interop.test.ts']],
  ['mobileone', 'ONNX export drops the SE', 'src/io/onnx.ts', '    if (b.se !== null) sum = this.squeezeExcite(`${prefix}.${b.seName}`, b.se, sum);\n', '', ['test/nn/mobileone.test.ts']],
  ['mobileone', 'convert leaves the head at its initial values', 'src/reparam/branches.ts', '  out.linear.weight.data.data.set(net.linear.weight.data.data);\n', '', ['test/nn/mobileone.test.ts']],
  ['mobileone', 'timm SE width: make_divisible rounds up', 'src/nn/families.ts', "Math.max(8, Math.floor(Math.floor(channels / 16 + 4) / 8) * 8)", "Math.max(8, Math.ceil(channels / 16 / 8) * 8)", ['test/nn/families.test.ts']],
  // fuse-onnx's memory (B3 under 2× its file): kernels written in place, the probe's scratch released
  ['onnx', 'reuseStorage overwrites a weight another conv still reads', 'src/onnx/fuse.ts', ' && readers.get(t.name)?.length === 1 && !graphOutputs.has(t.name));', ' && !graphOutputs.has(t.name));', ['test/onnx/fuse.test.ts']],
  ['onnx', 'the probe keeps the scratch it grew', 'src/onnx/check.ts', '  } finally {\n    releaseWorkspaces();\n  }', '  } finally {\n  }', ['test/onnx/fuse.test.ts']],
  ['reparam', 'the sum accumulates into a branch the fuser does not own (a module\'s weights)', 'src/reparam/fuse.ts', "sumBranches(parts.map((p) => p.kb), 'float64', parts[0].owned && trace === undefined)", "sumBranches(parts.map((p) => p.kb), 'float64', trace === undefined)", ['test/reparam']],
  ['reparam', 'a float64 conv\'s own weights taken as the fuser\'s to fold in place', 'src/reparam/fuse.ts', 'const owned = k.kernel !== st.weight && (st.bias === null || k.bias !== st.bias);', 'const owned = true;', ['test/reparam']],
  // convert --blocks: DBB and ACB (fixtures/blocks/resnet_dbb_acb.pth against DingXiaoH's fusions)
  ['blocks', 'DBB groups read from conv1 instead of conv2', 'src/reparam/state_dict_blocks.ts', "const perGroup = shape('dbb_1x1_kxk.conv2.weight')[1];", "const perGroup = shape('dbb_1x1_kxk.conv1.weight')[1];", ['test/reparam/state_dict_blocks.test.ts']],
  ['blocks', 'DBB with an idconv taken as groups 1', 'src/reparam/state_dict_blocks.ts', '[groups, internal] = [C / Cg, C];', '[groups, internal] = [1, C];', ['test/reparam/state_dict_blocks.test.ts']],
  ['families', 'ACB: the k×1 branch padded on the wrong axis', 'src/nn/families.ts', "[['ver_conv', conv(p.k, 1)], ['ver_bn', p.bn(cout)]],", "[['ver_conv', conv(1, p.k)], ['ver_bn', p.bn(cout)]],", ['test/reparam/state_dict_blocks.test.ts', 'test/reparam/fuse.test.ts']],
  ['quant', 'quant-report compares the fused kernel with every branch, not the k×k ones', 'src/onnx/quant_report.ts', 'branches: lb.branches.filter(full), post: null', 'branches: lb.branches, post: null', ['test/onnx/quant_report.test.ts']],
  ['quant', 'narrow grids: weight scales still max|w|/127', 'src/onnx/quantize.ts', '(m) => (m > 0 ? m / Q : 1)', '(m) => (m > 0 ? m / 127 : 1)', ['test/onnx/quantize.test.ts']],
  ['quant', 'narrow grids: int8 activations centred one code off', 'src/onnx/quantize.ts', "[-(2 ** (bits - 1)), 2 ** (bits - 1) - 1]", "[-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1]", ['test/onnx/quantize.test.ts']],
  ['quant', 'the classifier\'s weights quantized untransposed', 'src/onnx/quantize.ts', "const wt = transB ? Float64Array.from({ length: K * N }, (_, i) => Number(w.data[(i % N) * K + Math.floor(i / N)])) : w.data;", 'const wt = w.data;', ['test/onnx/quantize.test.ts']],
  ['quant', 'ablate int8 trains the ablation network, not the demo\'s', 'src/cli/commands/ablate.ts', '    config: DEMO_CONFIG,\n', '', ['test/cli/demo.test.ts']],
];

const args = process.argv.slice(2);
const full = args.includes('--full');
const only = args.filter((a) => /^\d+$/.test(a)).map(Number);
let restore = null;
process.on('SIGINT', () => { restore?.(); process.exit(130); });

const results = [];
const build = () => spawnSync('npm', ['run', 'build', '--silent'], { encoding: 'utf8' });
MUTANTS.forEach(([area, what, file, from, to, tests, rebuild], i) => {
  if (only.length > 0 && !only.includes(i + 1)) return;
  const src = readFileSync(file, 'utf8');
  const n = src.split(from).length - 1;
  if (n !== 1) { results.push([i + 1, area, what, `STALE (text found ${n} times)`]); return; }
  restore = () => { writeFileSync(file, src); if (rebuild) build(); };
  writeFileSync(file, src.replace(from, to));
  if (rebuild) build();
  const t0 = Date.now();
  const r = spawnSync('npx', ['vitest', 'run', ...(full ? [] : tests), '--reporter=dot'], { encoding: 'utf8', timeout: 600_000 });
  // a mutant that loops synchronously outlives the timeout in vitest's worker process: end it too
  if (r.error !== undefined) spawnSync('pkill', ['-9', '-f', 'vitest/dist/workers']);
  restore();
  restore = null;
  const verdict = r.status === 0 ? 'SURVIVED' : 'caught';
  results.push([i + 1, area, what, `${verdict} (${((Date.now() - t0) / 1000).toFixed(0)} s)`]);
  console.log(`${String(i + 1).padStart(2)} ${area.padEnd(5)} ${what.padEnd(48)} ${results.at(-1)[3]}`);
});
const caught = results.filter((r) => r[3].startsWith('caught')).length;
console.log(`\n${caught} of ${results.length} mutants caught`);
for (const r of results.filter((r) => !r[3].startsWith('caught'))) console.log(`  ${r[3].split(' ')[0]}: #${r[0]} ${r[1]} — ${r[2]}`);
process.exitCode = caught === results.length ? 0 : 1;
