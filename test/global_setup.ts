// One temporary folder per test run: every folder a test makes with tmpdir(), and every file the CLI
// processes it starts write there, go under it (TMPDIR, which workers and children inherit), and it
// is removed when the run ends. Without it the fault tests alone left ~160 MB a run behind, and a few
// hundred runs of scripts/mutate.mjs filled the disk.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'repvgg-test-run-'));
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
