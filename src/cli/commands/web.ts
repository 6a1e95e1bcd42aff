// repvgg web: serve the learners' page (web/) with the built library (dist/) and the bundled test
// images, read-only, from the package's own folder. The page uses relative URLs only, so any static
// host serving the package folder works too; this server adds the two headers that make the page
// cross-origin isolated, so that the library's worker pool can share memory in the browser.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { realpathSync, readFileSync, statSync } from 'node:fs';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, str } from '../args.js';
import type { Command, Io } from '../command.js';

/** The package folder: three levels above dist/cli/commands (or src/cli/commands). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** What the page needs; nothing else in the package folder is served. */
const SERVED = ['web', 'dist', join('fixtures', 'fashion-mnist')];
let servedRoots: string[] | null = null; // SERVED under the package folder's real path, found once

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.map': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.gz': 'application/gzip', '.safetensors': 'application/octet-stream', '.ts': 'text/plain; charset=utf-8',
};

// The file a URL path names, or null when it is outside what is served (or not a regular file).
function resolvePath(urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  if (rel.includes('\0') || rel.split('/').some((s) => s === '..')) return null;
  let file: string;
  try {
    file = realpathSync(join(ROOT, rel));
  } catch {
    return null;
  }
  servedRoots ??= SERVED.map((d) => join(realpathSync(ROOT), d) + sep);
  const inside = servedRoots.some((r) => file.startsWith(r));
  return inside && statSync(file).isFile() ? file : null;
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const headers = {
    // cross-origin isolation: SharedArrayBuffer (and so threads) in the page
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-cache',
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end();
    return;
  }
  const path = req.url ?? '/';
  if (path === '/' || path === '/web') {
    res.writeHead(302, { ...headers, Location: '/web/' }).end();
    return;
  }
  const file = resolvePath(path.endsWith('/') ? path + 'index.html' : path);
  if (file === null) {
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  const body = readFileSync(file);
  res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export const web: Command = {
  spec: {
    name: 'web',
    summary: 'serve the page that shows re-parameterization step by step (Ctrl-C stops it)',
    usage: 'repvgg web [--port 8080 (0: any free port)] [--host 127.0.0.1]',
    flags: { port: 'index', host: 'string' },
    positionals: 0,
  },
  run(a, io: Io): Promise<number> {
    const port = (a.flags.get('port') as number | undefined) ?? 8080;
    if (port > 65535) throw new UsageError(`web: --port must be at most 65535, got ${port}`);
    const host = str(a, 'host', '127.0.0.1');
    if (resolvePath('/web/index.html') === null || resolvePath('/dist/index.js') === null) {
      throw new Error(`web: the page or the built library is missing under ${ROOT} (run npm run build)`);
    }
    return new Promise((done) => {
      const server = createServer(handle);
      const stop = (sig: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        io.err(`repvgg: ${sig}: stopped serving`);
        server.closeAllConnections();
        server.close(() => done(0));
      };
      server.once('error', (e: NodeJS.ErrnoException) => {
        io.err(`repvgg: web: cannot listen on ${host}:${port}: ${e.code ?? e.message}${e.code === 'EADDRINUSE' ? ' (the port is taken; try --port 0)' : ''}`);
        done(1);
      });
      server.listen(port, host, () => {
        const addr = server.address();
        const actual = typeof addr === 'object' && addr !== null ? addr.port : port;
        const shown = host.includes(':') ? `[${host}]` : host;
        io.out(`serving http://${shown}:${actual}/web/ (Ctrl-C stops)`);
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
  },
};
