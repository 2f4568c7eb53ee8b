import express, { type Express, type Request, type Response, type NextFunction } from 'express';
import type { Logger } from '../shared/logger.js';
import { bodyErrorHandler, webhookHandlers, type WebhookDeps } from './webhook/route.js';

/** The hub's HTTP surface: the webhook and two probes. Everything else is a JSON 404. */
export function createHttpApp(deps: WebhookDeps & { webhookPath: string; isReady(): boolean; log: Logger }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', (_req, res) => {
    const ready = deps.isReady();
    res.status(ready ? 200 : 503).json({ ok: ready, broker: ready ? 'connected' : 'disconnected' });
  });
  app.post(deps.webhookPath, ...webhookHandlers(deps));
  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });
  app.use(bodyErrorHandler);
  app.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    deps.log.error({ err, path: req.path }, 'unhandled error in request');
    res.status(500).json({ error: 'internal error; see the hub log' });
  });
  return app;
}
