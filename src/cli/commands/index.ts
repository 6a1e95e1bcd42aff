// Every command, by name; a command's module is imported when it runs, so that one CLI call loads
// only its own code and what that needs, not all eighteen commands' (docs/performance.md: start-up).
import type { Command } from '../command.js';

export interface CommandEntry {
  name: string;
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'demo', load: async () => (await import('./demo.js')).demo },
  { name: 'train', load: async () => (await import('./train.js')).train },
  { name: 'ablate', load: async () => (await import('./ablate.js')).ablate },
  { name: 'info', load: async () => (await import('./info.js')).info },
  { name: 'init', load: async () => (await import('./init.js')).init },
  { name: 'inspect', load: async () => (await import('./inspect.js')).inspect },
  { name: 'forward', load: async () => (await import('./forward.js')).forward },
  { name: 'backward', load: async () => (await import('./backward.js')).backward },
  { name: 'convert', load: async () => (await import('./convert.js')).convert },
  { name: 'export', load: async () => (await import('./export.js')).exportOnnx },
  { name: 'run', load: async () => (await import('./run.js')).run },
  { name: 'fuse-onnx', load: async () => (await import('./fuse_onnx.js')).fuseOnnxCommand },
  { name: 'quantize', load: async () => (await import('./quantize.js')).quantize },
  { name: 'quant-report', load: async () => (await import('./quant_report.js')).quantReportCommand },
  { name: 'explain', load: async () => (await import('./explain.js')).explain },
  { name: 'verify', load: async () => (await import('./verify.js')).verify },
  { name: 'fixtures', load: async () => (await import('./fixtures.js')).fixtures },
  { name: 'web', load: async () => (await import('./web.js')).web },
];

/** Every command's module, in the listing's order (the top-level help, the reference, the tests). */
export function loadCommands(): Promise<Command[]> {
  return Promise.all(COMMANDS.map((c) => c.load()));
}
