import { Router, type RequestHandler } from 'express';
import type { HubMetrics } from './hub-metrics.js';

/**
 * GET /metrics in Prometheus' text format. `access`: the API's token check (any role), or
 * 'anonymous' (metrics.allowAnonymous) to let any scrape in. Each scrape reads the engines afresh.
 */
export function metricsRoute(metrics: HubMetrics, access: RequestHandler | 'anonymous'): Router {
  const router = Router();
  const scrape: RequestHandler = async (_req, res) => {
    const { body, contentType } = await metrics.scrape();
    res.set('content-type', contentType).set('cache-control', 'no-store').send(body);
  };
  router.get('/metrics', ...(access === 'anonymous' ? [scrape] : [access, scrape]));
  return router;
}
