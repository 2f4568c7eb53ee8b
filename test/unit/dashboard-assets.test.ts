import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDashboardAssets, packageAssetDirs } from '../../src/hub/dashboard/dashboard-assets.js';
import { Cleanup } from '../support/cleanup.js';

describe('dashboard assets', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const dirs = () => {
    const root = cleanup.tempDir('pushfleet-assets-');
    const d = { pageDir: join(root, 'page'), scriptDir: join(root, 'dist') };
    mkdirSync(d.pageDir);
    mkdirSync(d.scriptDir);
    return d;
  };

  it('reads the page, its styles and its compiled modules, and nothing else', () => {
    const d = dirs();
    writeFileSync(join(d.pageDir, 'index.html'), '<!doctype html><title>x</title>');
    writeFileSync(join(d.pageDir, 'dashboard.css'), 'body{}');
    writeFileSync(join(d.pageDir, 'main.ts'), 'source');
    writeFileSync(join(d.pageDir, 'tsconfig.json'), '{}');
    writeFileSync(join(d.scriptDir, 'main.js'), 'export {};');
    writeFileSync(join(d.scriptDir, 'main.js.map'), '{}');
    const assets = loadDashboardAssets(d);
    if (!(assets instanceof Map)) throw new Error(assets.unavailable);
    expect([...assets.keys()].sort()).toEqual(['dashboard.css', 'index.html', 'main.js']);
    const main = assets.get('main.js')!;
    expect(main.type).toBe('text/javascript; charset=utf-8');
    expect(gunzipSync(main.gzip).toString()).toBe('export {};');
    expect(main.etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
  });

  it('says what is missing when the page was not built', () => {
    const d = dirs();
    writeFileSync(join(d.pageDir, 'index.html'), '<!doctype html>');
    expect(loadDashboardAssets(d)).toEqual({ unavailable: `the dashboard is not built: no main.js in ${d.scriptDir} (run npm run build)` });
  });

  it("the package's page has no inline script, style or handler for the Content-Security-Policy to block", () => {
    const html = readFileSync(join(packageAssetDirs().pageDir, 'index.html'), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style/);
    expect(html).not.toMatch(/\s(style|on[a-z]+)=/);
    // Every stylesheet and script it names is served from /assets (no other host).
    for (const [, url] of html.matchAll(/(?:href|src)="([^"]+)"/g)) expect(url).toMatch(/^(\/assets\/[a-z-]+\.(js|css)|data:,|#[a-z-]+)$/);
  });
});
