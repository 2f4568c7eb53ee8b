import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { waitHealthy } from '../../agent/health-check.js';
import { StepError } from '../../agent/step-error.js';
import { createLogger } from '../../src/shared/logger.js';
import { freePort } from '../support/ports.js';

const deps = { cwd: '/', env: {}, log: createLogger('test', 'silent'), sleep, now: Date.now };

/**
 * A URL health check against a real HTTP server: a 2xx is healthy; anything else, a redirect
 * (never followed), a refused connection or no answer is not, within the check's timeout; and a
 * probe leaves no connection open to the app behind it.
 */
describe('URL health check', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  /** Answers each GET with the next status of `statuses` (the last one repeats); never answers when it is 0. */
  async function app(...statuses: number[]): Promise<{ url: string; server: Server; paths: string[] }> {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url!);
      const status = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
      if (status === 0) return;
      res.writeHead(status, status === 302 ? { location: '/healthy' } : {}).end('body the agent does not need');
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`, server, paths };
  }

  const openConnections = (server: Server) => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  it('is healthy on a 2xx, after failing probes, and leaves no connection open', async () => {
    const { url, server, paths } = await app(503, 503, 204);
    await waitHealthy({ url, timeout: 5, interval: 0.05 }, deps);
    expect(paths).toEqual(['/health', '/health', '/health']);
    await expect.poll(() => openConnections(server)).toBe(0);
  });

  it('fails on a non-2xx answer, naming the status', async () => {
    const { url } = await app(500);
    // Each probe starts with at least an interval left, so under load the last one still gets its answer.
    const err = await waitHealthy({ url, timeout: 1, interval: 0.25 }, deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).message).toMatch(new RegExp(`^unhealthy after 1 s \\(\\d+ probes\\): ${url} answered 500$`));
  });

  it('does not follow a redirect', async () => {
    const { url, paths } = await app(302);
    await expect(waitHealthy({ url, timeout: 0.2, interval: 0.05 }, deps)).rejects.toThrow(`${url} answered 302`);
    expect(new Set(paths)).toEqual(new Set(['/health']));
  });

  it('fails when nothing listens', async () => {
    const url = `http://127.0.0.1:${await freePort()}/health`;
    await expect(waitHealthy({ url, timeout: 0.2, interval: 0.05 }, deps)).rejects.toThrow(new RegExp(`${url}: connect ECONNREFUSED`));
  });

  it('fails by its timeout when the app never answers', async () => {
    const { url } = await app(0);
    await expect(waitHealthy({ url, timeout: 0.3, interval: 0.05 }, deps)).rejects.toThrow(new RegExp(`^unhealthy after 0\\.3 s \\(1 probes\\): ${url}: no answer within \\d+ ms$`));
  });
});
