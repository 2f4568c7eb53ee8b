import { Router } from 'express';
import { z } from 'zod';
import { DELIVERY_RESULTS, type DeliveryResult } from '../views/delivery-view.js';
import type { ViewsEngine } from '../views/views-engine.js';
import { VIEWS_MISSING } from './agents-routes.js';
import { present } from './area-deps.js';
import { checked, pageOf, queryOf } from './request-parsing.js';

export type DeliveriesRoutesDeps = { views?: ViewsEngine };

const Result = z.enum(DELIVERY_RESULTS as [DeliveryResult, ...DeliveryResult[]]);

/** `/api/v1/deliveries`: the newest answers of the webhook path since the hub started, newest first. */
export function deliveriesRoutes(deps: DeliveriesRoutesDeps): Router {
  const router = Router();
  router.get('/deliveries', (req, res) => {
    const query = queryOf(req, ['offset', 'limit', 'result']);
    const result = checked(Result.optional(), query.result, 'query result');
    res.json(present(deps.views, VIEWS_MISSING).deliveries.list(pageOf(query), result));
  });
  return router;
}
