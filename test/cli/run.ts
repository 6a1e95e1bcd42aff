// Run the CLI in-process, capturing its output.
import { runCli } from '../../src/cli/main.js';

export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l), progress: () => {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
