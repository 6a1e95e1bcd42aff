// The shape every CLI command has, and helpers several commands share.

import type { CommandSpec, ParsedArgs } from './args.js';
import { UsageError, str } from './args.js';
import { readBytes } from './files.js';
import { type RepVGGConfig, forwardBytes, validateConfig, zooConfig, zooName } from '../nn/config.js';
import { RepVGG } from '../nn/repvgg.js';
import { MOBILEONE_ZOO, MobileOne, type MobileOneConfig, mobileOneForwardBytes, mobileOneZooName, validateMobileOneConfig } from '../nn/mobileone.js';
import type { DType } from '../tensor/tensor.js';

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

/** A model's constructor arguments: RepVGG's (width_multiplier) or MobileOne's (width_multipliers). */
export type ModelConfig = RepVGGConfig | MobileOneConfig;

export function isMobileOneConfig(c: ModelConfig): c is MobileOneConfig {
  return 'width_multipliers' in c;
}

/** A fresh model of either kind, deterministic for a seed. */
export function modelFromConfig(cfg: ModelConfig, opts: { seed?: number; dtype?: DType } = {}): RepVGG | MobileOne {
  return isMobileOneConfig(cfg) ? MobileOne.fromConfig(cfg, opts) : RepVGG.fromConfig(cfg, opts);
}

/** --arch NAME (a RepVGG or MobileOne of the zoos) or --config FILE.json (either public constructor's arguments). */
export function configFromArgs(a: ParsedArgs, cmd: string): { name: string; config: ModelConfig } {
  const arch = str(a, 'arch');
  const file = str(a, 'config');
  if ((arch === undefined) === (file === undefined)) throw new UsageError(`${cmd}: give exactly one of --arch NAME or --config FILE.json`);
  if (arch !== undefined) {
    const m = mobileOneZooName(arch);
    if (m !== null) return { name: m, config: MOBILEONE_ZOO[m] };
    return { name: zooName(arch), config: zooConfig(arch) };
  }
  const text = new TextDecoder().decode(readBytes(file!, 'config'));
  let config: ModelConfig;
  try {
    config = JSON.parse(text) as ModelConfig;
  } catch (e) {
    throw new Error(`config '${file}' is not valid JSON: ${(e as Error).message}`);
  }
  // MobileOne's constructor takes width_multipliers, RepVGG's width_multiplier
  if (config !== null && typeof config === 'object' && !Array.isArray(config) && isMobileOneConfig(config)) validateMobileOneConfig(config);
  else validateConfig(config as RepVGGConfig);
  return { name: file!, config };
}

/** What one command may allocate for a forward pass before it refuses: more would exhaust a typical machine's memory (the refusal states the estimate). */
const FORWARD_LIMIT_BYTES = 8 * 2 ** 30;

/** Refuse, with the estimate, a forward pass that would not fit. */
export function refuseLargeForward(bytes: number, what: string): void {
  if (bytes > FORWARD_LIMIT_BYTES) throw new Error(`${what} would need about ${(bytes / 2 ** 30).toFixed(1)} GiB for one forward pass (limit ${FORWARD_LIMIT_BYTES / 2 ** 30} GiB); use a smaller input`);
}

/** What one forward pass of either kind of model needs (bytes), for refuseLargeForward. */
export function classifierForwardBytes(model: RepVGG | MobileOne, N: number, H: number, W: number): number {
  const bytes = model.dtype === 'float64' ? 8 : 4;
  return model instanceof MobileOne ? mobileOneForwardBytes(model.plan, N, H, W, bytes) : forwardBytes(model.plan, N, H, W, bytes);
}
