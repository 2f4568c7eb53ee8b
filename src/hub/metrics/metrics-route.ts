import { Router, type RequestHandler } from 'express';
import type { HubMetrics } from './hub-metrics.js';

/**
 * GET /metrics in Prometheus' text format. `guard`: the API's login (any role), left out when
 * metrics.allowAnonymous is on. Each scrape reads the engines afresh (HubMetrics' gauges).
 */
export function metricsRoute(metrics: HubMetrics, guard: RequestHandler | undefined): Router {
  const router = Router();
  const scrape: RequestHandler = async (_req, res) => {
    const { body, contentType } = await metrics.scrape();
    res.set('content-type', contentType).set('cache-control', 'no-store').send(body);
  };
  router.get('/metrics', ...(guard ? [guard, scrape] : [scrape]));
  return router;
}
