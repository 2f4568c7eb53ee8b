import { createServer, type Server, type ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type Express, type Request, type Response, type NextFunction } from 'express';
import type { Logger } from '../shared/logger.js';
import { apiRouter, type ApiDeps } from './api/api-router.js';
import type { HubMetrics } from './metrics/hub-metrics.js';
import { metricsRoute } from './metrics/metrics-route.js';
import type { DashboardAssets } from './dashboard/dashboard-assets.js';
import { dashboardRoutes } from './dashboard/dashboard-routes.js';
import { webhookHandler, type WebhookDeps } from './webhook/route.js';

type HttpDeps = WebhookDeps & {
  webhookPath: string;
  /** Why the hub does not take pushes right now (for /readyz), or undefined when it does. */
  notReady(): string | undefined;
  /** The REST API under /api/v1; without it those paths are 404 like any other. */
  api?: Omit<ApiDeps, 'log'>;
  /** GET /metrics: behind the API's token check (any role), or open with metrics.allowAnonymous; without a token check it is not served. */
  metrics?: { registry: HubMetrics; allowAnonymous: boolean };
  /** The page at `/` and its files under /assets (dashboard-routes.ts). */
  dashboard?: DashboardAssets;
  log: Logger;
};

/**
 * The hub's HTTP surface: POST on the webhook path goes straight to the webhook handler, before
 * express (its routing cost more than verifying and publishing a push); express serves the
 * probes and the REST API and answers everything else with a JSON 404.
 */
export function createHttpServer(deps: HttpDeps): Server {
  const webhook = webhookHandler(deps);
  const app = createProbesApp(deps);
  const server = createServer(clientTimeouts(deps.bodyTimeoutMs), (req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (req.method === 'POST' && path === deps.webhookPath) webhook(req, res);
    else app(req, res);
  });
  // A socket with no traffic at all for this long is closed (a request awaiting its PUBACK waits at most 9 s).
  server.timeout = IDLE_SOCKET_MS;
  server.on('clientError', answerClientError);
  return server;
}

/** node:http's own refusals (malformed request, headers too slow or too large), as one-line JSON too. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const [status, reason, error] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'the request did not arrive in time (webhook.bodyTimeoutMs)']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'request headers too large']
        : [400, 'Bad Request', `malformed HTTP request (${err.code ?? err.message})`];
  const body = JSON.stringify({ error });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

const IDLE_SOCKET_MS = 30_000;

/**
 * node:http's own limits, so idle and slow clients cannot hold connections: headers must come
 * within the body deadline, a whole request shortly after it (the webhook answers 408 at the
 * deadline itself; this also covers the probes), an idle keep-alive connection closes after 5 s,
 * and the limits are checked every second rather than every 30.
 */
function clientTimeouts(bodyTimeoutMs: number): ServerOptions {
  return { headersTimeout: bodyTimeoutMs, requestTimeout: bodyTimeoutMs + 1000, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000 };
}

function createProbesApp(deps: HttpDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', (_req, res) => {
    const reason = deps.notReady();
    res.status(reason === undefined ? 200 : 503).json({ ok: reason === undefined, broker: deps.isConnected() ? 'connected' : 'disconnected', ...(reason !== undefined && { error: reason }) });
  });
  const scrapers = deps.metrics?.allowAnonymous ? 'anonymous' : deps.api?.auth.require('viewer');
  if (deps.metrics && scrapers) app.use(metricsRoute(deps.metrics.registry, scrapers));
  if (deps.api) app.use('/api/v1', apiRouter({ ...deps.api, log: deps.log }));
  if (deps.dashboard) app.use(dashboardRoutes(deps.dashboard));
  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });
  app.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    deps.log.error({ err, path: req.path }, 'unhandled error in request');
    res.status(500).json({ error: 'internal error; see the hub log' });
  });
  return app;
}
