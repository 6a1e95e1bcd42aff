// The learners' page in a real browser: `repvgg web` on a free loopback port, Debian's Chromium
// driven headless through puppeteer-core. .ci/run installs chromium when it is missing; elsewhere,
// `apt-get install chromium` or CHROMIUM_PATH. Without a browser this test fails (it is not skipped).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { fuseRepVGGBlock } from '../../dist/index.js';
// the page's own block construction (web/lesson.js, plain JS over dist/), so the test checks the
// page's numbers against the library's model-level fuser on the same block
import { makeBlock, setBN, getBN } from '../../web/lesson.js';

import { BUNDLED_DATA, loadIdxDir } from '../../src/cli/data.js';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { modelFromStateDict } from '../../src/io/state_dict.js';
import { convert } from '../../src/reparam/repvgg.js';
import { predict } from '../../src/train/fit.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

let server: ChildProcess;
let url = '';
let browser: Browser;
let page: Page;
const problems: string[] = [];
const requests: string[] = [];

beforeAll(async () => {
  if (CHROMIUM === undefined) throw new Error('no Chromium found: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH');
  server = spawn(process.execPath, [bin, 'web', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`repvgg web exited with ${code}: ${out}`)));
  });
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page: ${(e as Error).message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.setViewport({ width: 375, height: 900 });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelector('[data-testid="model-ready"]')?.textContent === 'ready', { timeout: 60000 });
}, 120000);

afterAll(async () => {
  await browser?.close();
  if (server !== undefined && server.exitCode === null) {
    const exited = new Promise<number | null>((r) => server.once('exit', r));
    server.kill('SIGINT');
    expect(await exited).toBe(0); // Ctrl-C stops the server cleanly
  }
});

const text = (sel: string) => page.$eval(sel, (e) => e.textContent ?? '');
const attr = (sel: string, name: string) => page.$eval(sel, (e, n) => e.getAttribute(n) ?? '', name);
// a kernel table's values in the tensor's flat order (the table lays channels side by side)
const values = (sel: string) => page.$$eval(`${sel} td`, (tds) => {
  const out: string[] = [];
  for (const td of tds) out[Number(td.getAttribute('data-index'))] = td.getAttribute('data-value')!;
  return out;
});

describe('repvgg web, in Chromium', () => {
  it('section 1: the fused conv computes what the branched block does', async () => {
    // float64 with ≤ 3·3·2 + 3 terms per output of magnitude ≲ 10: a difference far above ~1e-14
    // would be a fusion bug, not rounding
    expect(Number(await attr('[data-testid="block-max-diff"]', 'data-value'))).toBeLessThan(1e-13);
  });

  it('a slider moved from the keyboard changes the fused weights to exactly what fuseRepVGGBlock gives', async () => {
    const before = await values('[data-testid="fused-kernel"]');
    await page.focus('#bn-dense-gamma');
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight'); // 5 steps of 0.01
    const gamma = Number(await page.$eval('#bn-dense-gamma', (e) => (e as HTMLInputElement).value));
    const after = await values('[data-testid="fused-kernel"]');
    expect(after).not.toEqual(before);
    const block = makeBlock(2, 1, 1);
    expect(gamma).toBeCloseTo(getBN(block, 0, 'gamma', 0) + 0.05, 10);
    setBN(block, 0, 'gamma', 0, gamma);
    const fused = fuseRepVGGBlock(block);
    expect(after).toEqual(Array.from(fused.kernel.data, String)); // every weight, bit for bit (as text)
    expect(JSON.parse(await attr('[data-testid="fused-bias"]', 'data-values'))).toEqual(Array.from(fused.bias.data));
    expect(Number(await attr('[data-testid="block-max-diff"]', 'data-value'))).toBeLessThan(1e-13);
  });

  it('4 channels in 2 groups fuse too; a ReLU inside the branches cannot be fused', async () => {
    await page.select('#channels', '4');
    await page.select('#groups', '2');
    expect((await values('[data-testid="fused-kernel"]')).length).toBe(4 * 2 * 9); // (4, 4/2, 3, 3)
    expect(Number(await attr('[data-testid="block-max-diff"]', 'data-value'))).toBeLessThan(1e-13);
    await page.click('#relu-inside');
    expect(Number(await attr('[data-testid="block-max-diff"]', 'data-value'))).toBeGreaterThan(1e-2);
    expect(await page.$eval('#relu-note', (e) => (e as HTMLElement).hidden)).toBe(false);
    await page.click('#relu-inside');
    expect(Number(await attr('[data-testid="block-max-diff"]', 'data-value'))).toBeLessThan(1e-13);
  });

  it('section 2: both models predict, and agree on every bundled test image', async () => {
    expect(await attr('[data-testid="pred-train"]', 'data-class')).toBe(await attr('[data-testid="pred-deploy"]', 'data-class'));
    expect(await page.$$eval('#features .stage', (s) => s.length)).toBe(5);
    await page.click('#next');
    await page.waitForFunction(() => document.querySelector('#picked p')?.textContent?.startsWith('image 1,'));
    await page.click('#run-all');
    await page.waitForFunction(() => document.querySelector('[data-testid="model-agreement"]')?.textContent !== '–', { timeout: 60000 });
    expect(await text('[data-testid="model-agreement"]')).toBe('1');
    expect(await attr('[data-testid="model-agreement"]', 'data-agree')).toBe('1000');
    // The page's accuracy against the same checkpoint run here through the CLI's data loader (its
    // own preprocessing). Within 2 of 1000: 'auto' may time a different algorithm in the browser,
    // and rounding differences of ~1e-6 can flip an argmax only at a near-tie.
    const { test } = await loadIdxDir(BUNDLED_DATA);
    const model = modelFromStateDict(parseCheckpoint(new Uint8Array(readFileSync(new URL('../../web/model/train.safetensors', import.meta.url)))).entries);
    const logits = predict(model, test.x);
    let correct = 0;
    for (let n = 0; n < test.y.length; n++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (logits.data[n * 10 + k] > logits.data[n * 10 + best]) best = k;
      correct += best === test.y[n] ? 1 : 0;
    }
    expect(correct).toBeGreaterThan(800); // the demo run that made the checkpoint measured 87.1%
    for (const which of ['data-correct-train', 'data-correct-deploy']) {
      expect(Math.abs(Number(await attr('[data-testid="model-agreement"]', which)) - correct)).toBeLessThanOrEqual(2);
    }
  });

  it('section 3: every layer\'s INT8 error, and one channel\'s values with its grid, from the same checkpoint', async () => {
    // the layer names and the grid step against the checkpoint read here: step = max|K_c|/127 of the fused kernel (convert's)
    const model = modelFromStateDict(parseCheckpoint(new Uint8Array(readFileSync(new URL('../../web/model/train.safetensors', import.meta.url)))).entries).eval();
    const names = model.children().map(([n]) => n).filter((n) => n !== 'linear');
    expect(await page.$$eval('[data-testid="int8-layers"] tbody tr td:first-child', (tds) => tds.map((t) => t.textContent))).toEqual(names);
    const sqnr = (await page.$$eval('[data-testid="int8-layers"] tbody tr', (trs) => trs.map((t) => Number(t.getAttribute('data-sqnr')))));
    for (const v of sqnr) expect(v).toBeGreaterThan(20); // 8-bit rounding: ~40 dB for spread weights, far above 20
    const K = convert(model).blocks()[2].rbrReparam!.weight.data;
    await page.select('#int8-layer', '2');
    await page.$eval('#int8-channel', (e) => { (e as HTMLInputElement).value = '1'; e.dispatchEvent(new Event('change')); });
    await page.waitForFunction(() => document.querySelector('[data-testid="int8-hist"]')?.getAttribute('aria-label')?.startsWith('layer 2, channel 1'));
    const per = K.size / K.shape[0];
    let m = 0;
    for (let i = per; i < 2 * per; i++) m = Math.max(m, Math.abs(K.data[i]));
    expect(Number(await attr('[data-testid="int8-hist"]', 'data-step'))).toBe(m / 127);
  });

  it('runs its convolutions on the worker pool (the server makes the page cross-origin isolated) and the SIMD GEMM', async () => {
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(Number(await text('#threads'))).toBeGreaterThan(1);
    expect(await text('#backend')).toBe('wasm'); // Chromium has WebAssembly SIMD: the page runs the SIMD GEMM
  });

  it('fits 375 px, no console errors, no request beyond the local server', async () => {
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    expect(problems).toEqual([]);
    const origin = new URL(url).origin;
    expect(requests.filter((r) => !r.startsWith(origin) && !r.startsWith('data:'))).toEqual([]);
  });
});
