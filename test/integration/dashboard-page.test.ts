import { afterEach, describe, expect, it } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { request } from 'node:http';
import { readOperatorCredentials } from '../../src/hub/users/operator-credential.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub } from '../support/test-hub.js';

/** A GET with the headers given, the body as sent (still gzipped if it was). */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the dashboard page, as the hub serves it', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('serves the page and its modules with a strict CSP, gzipped when asked, revalidated by ETag, and nothing else', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const page = await get(hub.httpPort, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.body.toString()).toContain('<script type="module" src="/assets/main.js"></script>');

    const zipped = await get(hub.httpPort, '/assets/main.js', { 'accept-encoding': 'gzip, br' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const plain = await get(hub.httpPort, '/assets/main.js');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
    expect(Number(zipped.headers['content-length'])).toBeLessThan(plain.body.length);

    const again = await get(hub.httpPort, '/assets/dashboard.css', { 'if-none-match': (await get(hub.httpPort, '/assets/dashboard.css')).headers.etag as string });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);

    // Only the page's own names: no file system path, no source, no second copy of the page.
    for (const path of ['/assets/main.ts', '/assets/..%2F..%2Fpackage.json', '/assets/../package.json', '/assets/index.html', '/index.html', '/assets/tsconfig.json']) {
      const res = await get(hub.httpPort, path);
      expect(res.status, path).toBe(404);
      expect(JSON.parse(res.body.toString()), path).toMatchObject({ error: expect.any(String) });
    }
  });

  it('stops with a live stream open: the stream is ended, not waited for', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const op = readOperatorCredentials(hub.stateDir)!;
    const base = `http://127.0.0.1:${hub.httpPort}/api/v1`;
    const issued = await fetch(`${base}/events/tickets`, { method: 'POST', headers: { authorization: `Bearer ${op.username}:${op.password}` } });
    const { ticket } = (await issued.json()) as { ticket: string };
    const stream = await fetch(`${base}/events?ticket=${ticket}`);
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('retry: 3000\n: open\n\n');
    const started = Date.now();
    await hub.stop();
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await reader.read()).done).toBe(true);
  });
});
