import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** One file of the page, as served: its bytes, gzipped too, its type and an ETag. */
export type Asset = { body: Buffer; gzip: Buffer; type: string; etag: string };

/** Where the page's files are: the HTML and CSS as written, the browser modules as compiled. */
export type AssetDirs = { pageDir: string; scriptDir: string };

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/** The package's own directories: src/dashboard (HTML, CSS) and dist/dashboard (npm run build). */
export function packageAssetDirs(from = fileURLToPath(import.meta.url)): AssetDirs {
  let dir = dirname(from);
  while (!isPackageRoot(dir)) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no pushfleet package.json above ${from}`);
    dir = up;
  }
  return { pageDir: join(dir, 'src', 'dashboard'), scriptDir: join(dir, 'dist', 'dashboard') };
}

function isPackageRoot(dir: string): boolean {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) return false;
  return (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'pushfleet';
}

/** The page's files by name, or why there is no page (a source checkout not built yet). */
export type DashboardAssets = Map<string, Asset> | { unavailable: string };

/**
 * Every file of the page, read once into memory (some 40 kB): the hub serves only these names,
 * so no request path ever reaches the file system. Without the compiled modules the hub still
 * runs (its tests run from sources) and `/` says what is missing.
 */
export function loadDashboardAssets(dirs: AssetDirs = packageAssetDirs()): DashboardAssets {
  const files = [...listed(dirs.pageDir, ['.html', '.css']), ...listed(dirs.scriptDir, ['.js'])];
  if (!files.some((f) => f.endsWith('/main.js')) || !files.some((f) => f.endsWith('/index.html'))) return { unavailable: `the dashboard is not built: no main.js in ${dirs.scriptDir} (run npm run build)` };
  const assets = new Map<string, Asset>();
  for (const file of files) {
    const body = readFileSync(file);
    const type = TYPES[file.slice(file.lastIndexOf('.'))]!;
    assets.set(file.slice(file.lastIndexOf('/') + 1), { body, gzip: gzipSync(body, { level: 9 }), type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

function listed(dir: string, extensions: string[]): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => extensions.some((e) => name.endsWith(e)))
    .map((name) => join(dir, name));
}
