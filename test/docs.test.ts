// Docs that run: every ts/js/sh block of README.md and docs/*.md runs here against the built package
// (`import … from 'repvgg-ts'` resolves to dist/ through the package's own exports), and a ```text
// block right after one is its expected output, compared exactly. A block that cannot run says why on
// the line before it (<!-- not run: reason -->). Every relative link must point at a file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { SUPPORTED_OPS } from '../src/onnx/run.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const RUNNABLE = new Set(['ts', 'js', 'sh', 'bash']);

interface Block { file: string; line: number; lang: string; code: string; notRun: string | null; output: string | null }

/** The fenced blocks of a markdown file, each with the reason it is not run and the output block after it. */
export function blocksOf(file: string, text: string): Block[] {
  const lines = text.split('\n');
  const fences: { line: number; lang: string; code: string; before: string; end: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^```(\S*)\s*$/.exec(lines[i]);
    if (m === null) continue;
    let j = i + 1;
    while (j < lines.length && lines[j] !== '```') j++;
    let b = i - 1;
    while (b >= 0 && lines[b].trim() === '') b--;
    fences.push({ line: i + 1, lang: m[1], code: lines.slice(i + 1, j).join('\n'), before: b >= 0 ? lines[b] : '', end: j });
    i = j;
  }
  return fences.map((f, k) => {
    const next = fences[k + 1];
    const gap = next === undefined ? null : lines.slice(f.end + 1, next.line - 1).join('').trim();
    const notRun = /^<!-- not run: (.+) -->$/.exec(f.before.trim());
    return { file, line: f.line, lang: f.lang, code: f.code, notRun: notRun === null ? null : notRun[1], output: next !== undefined && next.lang === 'text' && gap === '' ? next.code : null };
  });
}

const all = DOCS.flatMap((file) => blocksOf(file, readFileSync(join(ROOT, file), 'utf8')));
const OUT = join(ROOT, 'build', 'doctest');

function run(b: Block): string {
  if (b.lang === 'ts' || b.lang === 'js') {
    const js = ts.transpileModule(b.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    mkdirSync(OUT, { recursive: true });
    const f = join(OUT, `${b.file.replace(/[/.]/g, '_')}_${b.line}.mjs`);
    writeFileSync(f, js);
    return execFileSync(process.execPath, [f], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  }
  // sh: each line a `repvgg …` command (a trailing # comment allowed), run through the built CLI
  let out = '';
  for (const raw of b.code.split('\n')) {
    const line = raw.replace(/\s+#.*$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const [cmd, ...args] = line.split(/\s+/);
    if (cmd !== 'repvgg') throw new Error(`${b.file}:${b.line}: '${line}' is not a repvgg command; mark the block <!-- not run: reason -->`);
    out += execFileSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  }
  return out;
}

describe('docs that run', () => {
  it('README.md and docs/ hold runnable blocks, and every block that is not run says why', () => {
    const runnable = all.filter((b) => RUNNABLE.has(b.lang));
    expect(runnable.filter((b) => b.notRun === null).length).toBeGreaterThanOrEqual(4);
    for (const b of all.filter((x) => x.lang === '')) expect(b.notRun, `${b.file}:${b.line}: a block without a language`).toBeNull();
  });

  for (const b of all.filter((x) => RUNNABLE.has(x.lang) && x.notRun === null)) {
    it(`${b.file}:${b.line} (${b.lang}) runs${b.output === null ? '' : ' and prints what the doc shows'}`, () => {
      const out = run(b);
      if (b.output !== null) expect(out.trimEnd()).toBe(b.output.trimEnd());
    });
  }

  it('every relative link in README.md and docs/ points at a file', () => {
    const broken: string[] = [];
    for (const file of DOCS) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const url = m[1].split('#')[0];
        if (url === '' || /^[a-z]+:/.test(url)) continue;
        if (!existsSync(join(ROOT, dirname(file), url))) broken.push(`${file}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('README.md counts the evaluator\'s ops as it has them, and docs/onnx.md names every one', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8'), guide = readFileSync(join(ROOT, 'docs', 'onnx.md'), 'utf8');
    expect(/an ONNX evaluator \((\d+) ops\)/.exec(readme)?.[1]).toBe(String(SUPPORTED_OPS.length));
    expect([...SUPPORTED_OPS].filter((op) => !new RegExp(`\\b${op}\\b`).test(guide))).toEqual([]);
  });

  it('the block reader sees a not-run reason and an output block', () => {
    const md = 'x\n\n<!-- not run: needs a GPU -->\n```sh\nrepvgg gpu\n```\n\n```ts\nconsole.log(1)\n```\n\n```text\n1\n```\n';
    const [a, b] = blocksOf('t.md', md);
    expect([a.notRun, a.output, b.notRun, b.output]).toEqual(['needs a GPU', null, null, '1']);
  });
});
