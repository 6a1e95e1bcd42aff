#!/usr/bin/env node
// repvgg: the command-line interface. Errors print one line on stderr and exit non-zero.

import { UsageError, commandFiles, helpText, parseArgs } from './args.js';
import { checkCommandFiles } from './files.js';
import { describeValue, terminalSafe } from '../tensor/untrusted.js';
import type { Command, Io } from './command.js';
import { COMMANDS, loadCommands } from './commands/index.js';
import { VERSION } from '../version.js';
import { MAX_THREADS, setThreads } from '../backend/threads.js';
import { FUSED_MISSING, fusedMultiplyAddAvailable, setBackend, setFusedMultiplyAdd } from '../backend/backend.js';
import { allowRelaxedSimd } from './relaxed_simd.js';

async function usage(): Promise<string> {
  const commands = await loadCommands();
  const w = Math.max(...commands.map((c) => c.spec.name.length));
  return ['usage: repvgg <command> [options]   (repvgg <command> --help for details)', '', 'commands:',
    ...commands.map((c) => `  ${c.spec.name.padEnd(w)}  ${c.spec.summary}`)].join('\n');
}

export async function runCli(argv: string[], rawIo: Io): Promise<number> {
  // The one boundary where text leaves for a terminal: whatever a file put into a line (a key, a
  // class name, a metadata value) arrives escaped; stderr lines stay one line. The progress bar's
  // own escape sequences are ours and pass.
  const io: Io = { out: (l) => rawIo.out(terminalSafe(l, true)), err: (l) => rawIo.err(terminalSafe(l, false)), progress: (l) => rawIo.progress(l) };
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    io.out(`repvgg-ts ${VERSION}`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(await usage());
    return name === undefined ? 2 : 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  try {
    if (entry === undefined) throw new UsageError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
    const cmd: Command = await entry.load();
    const args = parseArgs(cmd.spec, rest);
    if (args.help) {
      io.out(helpText(cmd.spec));
      return 0;
    }
    const threads = args.flags.get('threads');
    if (typeof threads === 'number') {
      if (threads > MAX_THREADS) throw new UsageError(`${name}: --threads must be at most ${MAX_THREADS}, got ${threads}`);
      setThreads(threads);
    }
    const backend = args.flags.get('backend');
    if (typeof backend === 'string') {
      const kinds = ['js', 'wasm', 'wasm-fused', 'wasm-unfused'];
      if (!kinds.includes(backend)) throw new UsageError(`${name}: --backend must be one of ${kinds.join(', ')}, got '${backend}'`);
      if (backend === 'wasm-fused' && !fusedMultiplyAddAvailable()) throw new Error(`${name}: --backend wasm-fused: ${FUSED_MISSING}`);
      setBackend(backend === 'js' ? 'js' : 'wasm');
      // plain wasm: the default (fused where available), also after an earlier call pinned either
      if (backend !== 'js') setFusedMultiplyAdd(backend === 'wasm-fused' || (backend === 'wasm' && fusedMultiplyAddAvailable()));
    }
    checkCommandFiles(commandFiles(cmd.spec, args)); // every output against every input, before any work
    return await cmd.run(args, io);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : describeValue(e)).replace(/\s*\n\s*/g, ' ');
    io.err(`repvgg: ${msg}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

const isMain = process.argv[1] !== undefined && /[\\/](main\.js|repvgg)$/.test(process.argv[1]);
if (isMain) {
  // this process is ours: the fused kernel where the CPU fuses, on Node 20 too (--backend
  // wasm-unfused pins the other)
  allowRelaxedSimd();
  // A closed pipe (`repvgg explain | head`) ends the program quietly, not with a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); });
  const tty = process.stderr.isTTY === true;
  const io: Io = {
    out: (l) => process.stdout.write(l + '\n'),
    err: (l) => process.stderr.write(l + '\n'),
    progress: (l) => { if (tty) process.stderr.write(`\r\x1b[2K${l}`); },
  };
  runCli(process.argv.slice(2), io).then((code) => { process.exitCode = code; }, (e: unknown) => {
    process.stderr.write(`repvgg: ${terminalSafe(e instanceof Error ? e.message : describeValue(e), false)}\n`);
    process.exitCode = 1;
  });
}
