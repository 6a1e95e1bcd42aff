// The shape every CLI command has, and helpers several commands share.

import type { CommandSpec, ParsedArgs } from './args.js';
import { UsageError, str } from './args.js';
import { readBytes } from './files.js';
import { type RepVGGConfig, validateConfig, zooConfig, zooName } from '../nn/config.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** progress output (a terminal line rewritten in place); no-op when not a TTY */
  progress(line: string): void;
}

export interface Command {
  spec: CommandSpec;
  run(args: ParsedArgs, io: Io): Promise<number> | number;
}

/** --arch NAME or --config FILE.json (the public constructor's arguments). */
export function configFromArgs(a: ParsedArgs, cmd: string): { name: string; config: RepVGGConfig } {
  const arch = str(a, 'arch');
  const file = str(a, 'config');
  if ((arch === undefined) === (file === undefined)) throw new UsageError(`${cmd}: give exactly one of --arch NAME or --config FILE.json`);
  if (arch !== undefined) return { name: zooName(arch), config: zooConfig(arch) };
  const text = new TextDecoder().decode(readBytes(file!, 'config'));
  let config: RepVGGConfig;
  try {
    config = JSON.parse(text) as RepVGGConfig;
  } catch (e) {
    throw new Error(`config '${file}' is not valid JSON: ${(e as Error).message}`);
  }
  validateConfig(config);
  return { name: file!, config };
}

/** What one command may allocate for a forward pass before it refuses (the machines here have 24 GiB). */
export const FORWARD_LIMIT_BYTES = 8 * 2 ** 30;

/** Refuse, with the estimate, a forward pass that would not fit. */
export function refuseLargeForward(bytes: number, what: string): void {
  if (bytes > FORWARD_LIMIT_BYTES) throw new Error(`${what} would need about ${(bytes / 2 ** 30).toFixed(1)} GiB for one forward pass (limit ${FORWARD_LIMIT_BYTES / 2 ** 30} GiB); use a smaller input`);
}
