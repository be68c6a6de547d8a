import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'hono';
import { matchUiRoute } from './ui-routes.js';

/** The built web UI (`backend/dist/ui/`), found from both `src/api/` and `dist/api/`. */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../dist/ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Serves the UI's files; the UI's own pages (ui-routes.ts: `/`, `/identities/x`, ...) get
 * index.html, any other path a JSON 404. Undefined when the directory has no index.html.
 */
export function createUiHandler(dir: string): ((c: Context) => Response) | undefined {
  const root = resolve(dir);
  const indexPath = join(root, 'index.html');
  if (!existsSync(indexPath)) return undefined;

  const send = (c: Context, file: string, immutable: boolean) => {
    const body = readFileSync(file);
    const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    c.header('Content-Type', type);
    c.header('Cache-Control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (c.req.method === 'HEAD') return c.body(null, 200);
    return c.body(new Uint8Array(body), 200);
  };

  return (c) => {
    const raw = new URL(c.req.url).pathname;
    let path: string;
    try {
      path = decodeURIComponent(raw);
    } catch {
      return c.json({ error: 'malformed path' }, 400);
    }
    if (path.includes('\0')) return c.json({ error: 'malformed path' }, 400);
    const file = resolve(root, '.' + path);
    const inside = file === root || file.startsWith(root + sep);
    if (inside && file !== root && isFile(file)) return send(c, file, path.startsWith('/assets/'));
    // The UI's own pages get index.html (its router shows them); any other path is not found.
    if (matchUiRoute(raw).page === 'not-found') return c.json({ error: 'not found' }, 404);
    return send(c, indexPath, false);
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
