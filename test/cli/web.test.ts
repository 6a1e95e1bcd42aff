// repvgg web as a server: what it serves, what it refuses, its headers, and a clean stop.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cli } from './run.js';

const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

describe('repvgg web', () => {
  it('serves the page, the library and the test images, nothing else, and stops on SIGINT', async () => {
    const server = spawn(process.execPath, [bin, 'web', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (d: Buffer) => { out += d.toString(); const m = /serving (http:\/\/127\.0\.0\.1:\d+)\/web\//.exec(out); if (m) resolve(m[1]); });
      server.once('exit', (c) => reject(new Error(`exited ${c}`)));
    });
    const get = (p: string) => fetch(url + p, { redirect: 'manual' });
    const page = await get('/web/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    // cross-origin isolation, so that the page gets SharedArrayBuffer and the worker pool
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect((await get('/')).headers.get('location')).toBe('/web/');
    expect((await get('/dist/index.js')).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await get('/dist/backend/worker.js')).status).toBe(200);
    expect((await get('/fixtures/fashion-mnist/t10k-labels-idx1-ubyte.gz')).status).toBe(200);
    for (const p of ['/package.json', '/src/index.ts', '/web/../package.json', '/web/%2e%2e/package.json', '/fixtures/pth/expected.safetensors', '/web/nope.js', '/dist']) {
      expect((await get(p)).status, p).toBe(404);
    }
    expect((await fetch(url + '/web/', { method: 'POST' })).status).toBe(405);
    const exited = new Promise<number | null>((r) => server.once('exit', r));
    server.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('refuses a bad port with one line, and a taken port without a stack trace', async () => {
    expect((await cli('web', '--port', '70000')).err).toBe('repvgg: web: --port must be at most 65535, got 70000');
    expect((await cli('web', '--port', '-1')).code).toBe(2);
    const blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = (blocker.address() as { port: number }).port;
    const r = await cli('web', '--port', String(port));
    blocker.close();
    expect(r.code).toBe(1);
    expect(r.err).toBe(`repvgg: web: cannot listen on 127.0.0.1:${port}: EADDRINUSE (the port is taken; try --port 0)`);
  });
});
