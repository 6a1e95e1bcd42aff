// Minimal argument parser: positionals, --flag value, --flag=value, boolean --switches.
import { DIALECTS, type Dialect } from '../io/dialects.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

export type FlagKind = 'string' | 'number' | 'boolean';

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagKind>;
  /** number of positional arguments: exact or [min, max] */
  positionals: number | [number, number];
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
    const kind = spec.flags[name];
    if (kind === undefined) throw new UsageError(`${spec.name}: unknown option --${name} (see repvgg ${spec.name} --help)`);
    if (kind === 'boolean') {
      if (eq >= 0) throw new UsageError(`${spec.name}: --${name} takes no value`);
      flags.set(name, true);
      continue;
    }
    const raw = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UsageError(`${spec.name}: --${name} needs a value`);
    if (kind === 'number') {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${spec.name}: --${name} expects a number, got '${raw}'`);
      flags.set(name, v);
    } else flags.set(name, raw);
  }
  if (!help) {
    const [lo, hi] = typeof spec.positionals === 'number' ? [spec.positionals, spec.positionals] : spec.positionals;
    if (positionals.length < lo || positionals.length > hi) {
      throw new UsageError(`${spec.name}: expected ${lo === hi ? lo : `${lo} to ${hi}`} positional argument(s), got ${positionals.length} (usage: ${spec.usage})`);
    }
  }
  return { positionals, flags, help };
}

export function helpText(spec: CommandSpec): string {
  return `repvgg ${spec.name}: ${spec.summary}\n\nusage: ${spec.usage}\n`;
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
