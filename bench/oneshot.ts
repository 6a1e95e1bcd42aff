// npm run bench:oneshot — what a single CLI call costs, whole process (Node's start, reading the files,
// the first forward, writing): `repvgg forward` of a deploy RepVGG-A0 on 4 images at 224 (issue
// target: ≤ 0.6 s), the same model exported to ONNX through `repvgg run`, and the peak RSS of a
// process that loads the checkpoint and runs 10 forwards at batch 1 (target: ≤ 250 MiB). Calls
// alternate, so that the machine's noise hits each alike; medians and ranges of the wall time, and
// peak RSS from GNU time where /usr/bin/time exists. Under glibc, the two CLI calls run a second time
// with malloc's large blocks on transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, read
// at a process's start, so only the caller can set it): on this VM a first touch of a 4 KiB page
// costs ~11 µs, and a one-shot call touches ~100 MB for the first time.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RepVGG } from '../src/nn/repvgg.js';
import { zooConfig } from '../src/nn/config.js';
import { convert } from '../src/reparam/repvgg.js';
import { stateDict } from '../src/io/state_dict.js';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { serializeNpy } from '../src/io/npy.js';
import { toOnnx } from '../src/io/onnx.js';
import { Rng, uniform } from '../src/tensor/rng.js';
import { benchDir, median, table } from './harness.js';

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dir = benchDir('oneshot');
const deploy = convert(RepVGG.fromConfig(zooConfig('A0'), { seed: 1 }).eval());
const ckpt = join(dir, 'a0_deploy.safetensors'), onnx = join(dir, 'a0_deploy.onnx'), input = join(dir, 'x.npy');
writeFileSync(ckpt, serializeSafetensors(stateDict(deploy)));
writeFileSync(onnx, toOnnx(deploy));
writeFileSync(input, serializeNpy(uniform([4, 3, 224, 224], new Rng(2), 0, 1)));

// the 10-forwards process: load, then 10 forwards of one image
const tenForwards = join(dir, 'ten.mjs');
const src = (p: string) => JSON.stringify(new URL(`../src/${p}`, import.meta.url).href);
writeFileSync(tenForwards, `
import { readCheckpointFile } from ${src('cli/files.js')};
import { classifierFromStateDict } from ${src('io/state_dict.js')};
import { Rng, uniform } from ${src('tensor/rng.js')};
const model = classifierFromStateDict(readCheckpointFile(${JSON.stringify(ckpt)}).entries, { share: true });
model.train(false);
const x = uniform([1, 3, 224, 224], new Rng(3), 0, 1);
for (let i = 0; i < 10; i++) model.forward(x);
process.exit(0);
`);

const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime !== undefined;
const HUGE = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' };
const forwardArgs = [cli, 'forward', ckpt, '--input', input, '--out', join(dir, 'y.npy')];
const runArgs = [cli, 'run', onnx, '--input', input, '--out', join(dir, 'y_onnx.npy')];
const CASES: [string, string[], Record<string, string>?][] = [
  ['repvgg forward (A0 deploy, 4 × 224²)', forwardArgs],
  ['repvgg run (the same model as ONNX)', runArgs],
  ['load A0 deploy, 10 forwards at batch 1', [tenForwards]],
  ...(glibc ? [['repvgg forward, malloc on huge pages', forwardArgs, HUGE], ['repvgg run, malloc on huge pages', runArgs, HUGE]] as [string, string[], Record<string, string>][] : []),
];

// one call: wall ms, and peak RSS in MiB (null without GNU time)
function call(args: string[], env?: Record<string, string>): { ms: number; rssMiB: number | null } {
  const [cmd, ...argv] = timeBin === null ? [process.execPath, ...args] : [timeBin, '-f', '%M', process.execPath, ...args];
  const t = performance.now();
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, ...env } });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr.slice(-500)}`);
  const kb = timeBin === null ? NaN : Number(r.stderr.trim().split('\n').pop());
  return { ms, rssMiB: Number.isFinite(kb) ? kb / 1024 : null };
}

for (const [, args, env] of CASES) call(args, env); // the files into the page cache, once
const runs = CASES.map(() => [] as { ms: number; rssMiB: number | null }[]);
for (let r = 0; r < ROUNDS; r++) CASES.forEach(([, args, env], i) => runs[i].push(call(args, env)));
console.log(table(CASES.map(([name], i) => {
  const ms = runs[i].map((x) => x.ms), rss = runs[i].map((x) => x.rssMiB).filter((x): x is number => x !== null);
  return [name, median(ms) / 1000, `${(Math.min(...ms) / 1000).toFixed(2)}–${(Math.max(...ms) / 1000).toFixed(2)}`, rss.length === 0 ? '—' : Math.max(...rss).toFixed(0)];
}), ['whole process', 'median s', 'range s', 'peak RSS MiB']));
console.log(`\n${ROUNDS} rounds, calls alternating; targets (issue Speed III): repvgg forward ≤ 0.6 s; 10 forwards ≤ 250 MiB`);
