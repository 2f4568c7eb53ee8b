import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hubApiFromFlags } from '../../src/cli/hub-api.js';
import { Cleanup } from '../support/cleanup.js';
import { freePort } from '../support/ports.js';

/** A local HTTP server answering each request with `answer`; it records what it was asked. */
async function fakeHub(cleanup: Cleanup, answer: (req: IncomingMessage, url: URL) => [number, string]): Promise<{ url: string; seen: { path: string; auth?: string }[] }> {
  const seen: { path: string; auth?: string }[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push({ path: `${url.pathname}${url.search}`, ...(req.headers.authorization && { auth: req.headers.authorization }) });
    const [status, body] = answer(req, url);
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.defer(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('the CLI client of the hub API', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('sends the token file\'s token as Bearer and walks every page of a list', async () => {
    const items = Array.from({ length: 7 }, (_, i) => ({ n: i }));
    const hub = await fakeHub(cleanup, (_req, url) => {
      const offset = Number(url.searchParams.get('offset'));
      const limit = Number(url.searchParams.get('limit'));
      return [200, JSON.stringify({ items: items.slice(offset, offset + limit), total: items.length, offset, limit })];
    });
    const tokenFile = join(cleanup.tempDir('pushfleet-token-'), 'token');
    writeFileSync(tokenFile, 'vera:pa:ss\n');
    const api = hubApiFromFlags({ hub: hub.url, tokenFile });
    const got: unknown[] = [];
    for await (const item of api.all('/things', { kind: 'x' }, 3)) got.push(item);
    expect(got).toEqual(items);
    expect(hub.seen).toEqual([0, 3, 6].map((o) => ({ path: `/api/v1/things?kind=x&offset=${o}&limit=3`, auth: 'Bearer vera:pa:ss' })));
  });

  it('turns each failure into one line: the hub\'s refusal with its status, an answer that is not JSON, no hub at all, a bad token or URL', async () => {
    const hub = await fakeHub(cleanup, (req) => (req.url!.startsWith('/api/v1/denied') ? [403, JSON.stringify({ error: 'user "vera" is a viewer: this takes an operator', code: 'forbidden' })] : [200, '<html>']));
    process.env.PUSHFLEET_TOKEN = 'vera:secret';
    cleanup.defer(() => void delete process.env.PUSHFLEET_TOKEN);
    const api = hubApiFromFlags({ hub: hub.url });
    await expect(api.post('/denied', {})).rejects.toThrow('the hub refused POST /api/v1/denied (403): user "vera" is a viewer: this takes an operator');
    await expect(api.get('/page')).rejects.toThrow(/answered GET \/api\/v1\/page with 200 and no JSON: is --hub the hub's HTTP address\?/);
    const nobody = hubApiFromFlags({ hub: `http://127.0.0.1:${await freePort()}` });
    await expect(nobody.get('/agents')).rejects.toThrow(/^cannot reach the hub at http:\/\/127\.0\.0\.1:\d+ \(GET \/api\/v1\/agents\): ECONNREFUSED$/);
    process.env.PUSHFLEET_TOKEN = 'no-colon';
    expect(() => hubApiFromFlags({ hub: hub.url })).toThrow('PUSHFLEET_TOKEN: not an API token; expected name:password');
    expect(() => hubApiFromFlags({ hub: 'ftp://x' })).toThrow('--hub: ftp: is not taken');
  });
});
