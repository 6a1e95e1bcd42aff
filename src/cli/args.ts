// Minimal argument parser: positionals, --flag value, --flag=value, boolean --switches.
import { DIALECTS, type Dialect } from '../io/dialects.js';
import { type NumberKind, checkNumber } from '../tensor/check.js';
import type { CommandFile, FileRole } from './files.js';
import { showText } from '../tensor/untrusted.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** string, boolean switch, or a number checked by its kind (src/tensor/check.ts: checkNumber). */
export type FlagKind = 'string' | 'boolean' | NumberKind;

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagKind>;
  /** number of positional arguments: exact or [min, max] */
  positionals: number | [number, number];
  /**
   * The paths the command reads and writes (a flag's name or a positional's index), checked against
   * each other before it runs (files.ts: checkCommandFiles). `label` names a positional in messages;
   * `dflt` is the path used when the flag is absent; `names` are the files an out-dir receives.
   */
  files?: readonly { arg: string | number; role: FileRole; label?: string; dflt?: string; names?: readonly string[] }[];
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | number | boolean>;
  help: boolean;
}

export function parseArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | number | boolean>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { help = true; continue; }
    if (!a.startsWith('--')) { positionals.push(a); continue; }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    // own properties only: '--constructor' or '--__proto__' must not find Object.prototype's members
    const kind = Object.hasOwn(spec.flags, name) ? spec.flags[name] : undefined;
    if (kind === undefined) throw new UsageError(`${spec.name}: unknown option --${name} (see repvgg ${spec.name} --help)`);
    if (kind === 'boolean') {
      if (eq >= 0) throw new UsageError(`${spec.name}: --${name} takes no value`);
      flags.set(name, true);
      continue;
    }
    const raw = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UsageError(`${spec.name}: --${name} needs a value`);
    if (kind === 'string') flags.set(name, raw);
    else flags.set(name, parseNumberArg(raw, kind, `${spec.name}: --${name}`));
  }
  if (!help) {
    const [lo, hi] = typeof spec.positionals === 'number' ? [spec.positionals, spec.positionals] : spec.positionals;
    if (positionals.length < lo || positionals.length > hi) {
      throw new UsageError(`${spec.name}: expected ${lo === hi ? lo : `${lo} to ${hi}`} positional argument(s), got ${positionals.length} (usage: ${spec.usage})`);
    }
  }
  return { positionals, flags, help };
}

/** The command's declared files with the paths this call gives them. */
export function commandFiles(spec: CommandSpec, a: ParsedArgs): CommandFile[] {
  const out: CommandFile[] = [];
  for (const f of spec.files ?? []) {
    const path = typeof f.arg === 'number' ? a.positionals[f.arg] : (a.flags.get(f.arg) as string | undefined) ?? f.dflt;
    if (path !== undefined) out.push({ flag: typeof f.arg === 'number' ? f.label ?? `argument ${f.arg + 1}` : `--${f.arg}`, path, role: f.role, names: f.names });
  }
  return out;
}

/**
 * The one parser for numbers from outside (flags, checkpoint metadata): plain decimal text only
 * ('1e15' and '0x10' are refused for integer kinds), then the kind's rule.
 */
export function parseNumberArg(raw: string, kind: NumberKind, what: string): number {
  const text = raw.trim();
  const integer = kind === 'count' || kind === 'index' || kind === 'seed';
  if (text === '' || (integer ? !/^[+-]?\d+$/.test(text) : !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text))) {
    throw new UsageError(`${what} must be ${integer ? 'an integer' : 'a number'}, got '${showText(raw, 40)}'`);
  }
  try {
    return checkNumber(Number(text), kind, what);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function helpText(spec: CommandSpec): string {
  const threads = spec.flags.threads === undefined ? ''
    : '\n--threads N: threads for the convolutions and SGD\'s update (default: the cores, at most 8); results are the same bits for every N\n' +
      '--backend js|wasm|wasm-fused|wasm-unfused: the float32 GEMM kernels (default wasm: WebAssembly SIMD, its\n' +
      '  multiply-adds fused where the engine has relaxed SIMD, which repvgg turns on in Node 20, and the CPU\n' +
      '  fuses, else multiply then add; the two suffixes pin either, for the same bits across engines and the\n' +
      '  library, which keeps the engine\'s defaults; js: the TypeScript reference)\n';
  return `repvgg ${spec.name}: ${spec.summary}\n\nusage: ${spec.usage}\n${threads}`;
}

export function str(a: ParsedArgs, name: string): string | undefined;
export function str(a: ParsedArgs, name: string, dflt: string): string;
export function str(a: ParsedArgs, name: string, dflt?: string): string | undefined {
  const v = a.flags.get(name);
  return v === undefined ? dflt : String(v);
}

export function num(a: ParsedArgs, name: string): number | undefined;
export function num(a: ParsedArgs, name: string, dflt: number): number;
export function num(a: ParsedArgs, name: string, dflt?: number): number | undefined {
  const v = a.flags.get(name);
  return v === undefined ? dflt : (v as number);
}

export function required(a: ParsedArgs, name: string, cmd: string): string {
  const v = a.flags.get(name);
  if (v === undefined) throw new UsageError(`${cmd}: --${name} is required`);
  return String(v);
}

export function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${what} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

/** --names official|timm|mmpretrain: the key dialect of a checkpoint to write. */
export function dialectFlag(a: ParsedArgs): Dialect | undefined {
  const v = str(a, 'names');
  return v === undefined ? undefined : oneOf(v, DIALECTS, '--names');
}
