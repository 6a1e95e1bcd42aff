// Screenshots of the learners' page for the README: docs/web-block.png and docs/web-model.png.
// node scripts/screenshots.mjs (after npm run build; needs chromium, as the browser test does).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const chromium = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (chromium === undefined) throw new Error('no chromium (apt-get install chromium, or set CHROMIUM_PATH)');
const server = spawn(process.execPath, [`${root}dist/cli/main.js`, 'web', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve) => {
  let out = '';
  server.stdout.on('data', (d) => { out += d; const m = /serving (http:\/\/\S+)/.exec(out); if (m) resolve(m[1]); });
});
const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900, deviceScaleFactor: 1 });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelector('[data-testid="model-ready"]')?.textContent === 'ready', { timeout: 60000 });
  await page.click('#run-all');
  await page.waitForFunction(() => document.querySelector('[data-testid="model-agreement"]')?.textContent !== '–', { timeout: 60000 });
  mkdirSync(`${root}docs`, { recursive: true });
  await (await page.$('#block-section')).screenshot({ path: `${root}docs/web-block.png` });
  await (await page.$('#model-section')).screenshot({ path: `${root}docs/web-model.png` });
  console.log('wrote docs/web-block.png and docs/web-model.png');
} finally {
  await browser.close();
  server.kill('SIGINT');
}
