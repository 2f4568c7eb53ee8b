import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { ServiceCreate, ServiceStatusName } from '../../shared/contract/services-engine-messages.js';
import { ServiceName } from '../../shared/contract/services-messages.js';
import type { Logger } from '../../shared/logger.js';
import { ServicesError, type ServicesApi } from '../engines/services/services-api.js';
import { sendError, SERVICES_STATUS } from './api-error.js';
import { requireOperator } from './api-auth.js';
import { present, requestedBy } from './area-deps.js';
import { answerError, checked, jsonBody, pageOf, queryOf } from './request-parsing.js';

export type ServicesRoutesDeps = {
  /** The services engine's API, or undefined when engines.services is off (then every route answers 503). */
  services(): ServicesApi | undefined;
  log: Logger;
};

/**
 * `/api/v1/services…` and `/api/v1/servers` (mounted at /api/v1 behind the token check): viewers
 * read, operators add and remove, every input checked by the contract's schemas, every answer JSON, every refusal `{error, code}`
 * with the status its cause calls for.
 */
export function servicesRoutes(deps: ServicesRoutesDeps): Router {
  const router = Router();
  const api = (): ServicesApi => present(deps.services(), 'services engine is not enabled (engines.services.enabled in the hub config)');

  // The role is checked before the body, so a viewer cannot make the hub read one.
  router.post('/services', requireOperator, jsonBody('the service as JSON {name, action, arg?, selector?}'), async (req, res) => {
    const service = checked(ServiceCreate, req.body, 'body');
    res.status(201).json(await api().add(service, requestedBy(req, res)));
  });
  router.get('/services', async (req, res) => {
    const query = queryOf(req, ['offset', 'limit', 'status']);
    const status = checked(ServiceStatusName.optional(), query.status, 'query status');
    res.json(await api().list(pageOf(query), status));
  });
  router.get('/services/:name', async (req, res) => {
    queryOf(req, []);
    res.json(await api().show(nameOf(req)));
  });
  router.delete('/services/:name', requireOperator, async (req, res) => {
    queryOf(req, []);
    res.status(202).json(await api().remove(nameOf(req), requestedBy(req, res)));
  });
  router.get('/services/:name/logs', async (req, res) => {
    const { generation } = queryOf(req, ['generation']);
    const g = checked(Generation.optional(), generation, 'query generation');
    res.json(await api().logs(nameOf(req), g));
  });
  router.get('/servers', async (req, res) => {
    res.json(await api().servers(pageOf(queryOf(req, ['offset', 'limit']))));
  });
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => answerServicesError(err, req, res, deps.log));
  return router;
}

const Generation = z.string().regex(/^[0-9]{1,9}$/, 'expected a generation number').transform(Number).pipe(z.number().positive('expected a generation number'));

const nameOf = (req: Request): string => checked(ServiceName, req.params.name, 'name');

/** The services engine's refusals by their status; anything else as every route answers it. */
function answerServicesError(err: unknown, req: Request, res: Response, log: Logger): void {
  if (err instanceof ServicesError) return sendError(res, SERVICES_STATUS[err.code], err.code, err.message);
  answerError(err, req, res, log);
}
