import { Router } from 'express';
import type { Logger } from '../../shared/logger.js';
import type { HubEvents } from '../hub-events.js';
import { ApiError } from './api-error.js';
import type { ApiAuth } from './api-auth.js';
import { errorAnswer } from './request-parsing.js';
import { servicesRoutes, type ServicesRoutesDeps } from './services-routes.js';
import { auditActions } from './audit-actions.js';
import { auditRoutes, type AuditRoutesDeps } from './audit-routes.js';

/** What the API's areas read and act on; each area adds its own field. */
export type ApiDeps = {
  auth: ApiAuth;
  log: Logger;
  /** Notices of what changed, for the live stream; areas that change read models call `changed`. */
  events: HubEvents;
  services: ServicesRoutesDeps['services'];
  /** The audit log: read by GET /audit, and every action answered through the API recorded in it. */
  audit: AuditRoutesDeps['audit'] & Parameters<typeof auditActions>[0];
};

/** One area of the API: its routes, relative to /api/v1, behind the token check. */
type ApiArea = (deps: ApiDeps) => Router;

const AREAS: readonly ApiArea[] = [servicesRoutes, auditRoutes];

/**
 * `/api/v1`: every route needs a token (viewer or operator; actions check for operator
 * themselves), then each area's routes; what none of them serves is a JSON 404.
 */
export function apiRouter(deps: ApiDeps): Router {
  const router = Router();
  // First, so a client without a token cannot make the hub read a body or learn which routes exist.
  router.use(deps.auth.require('viewer'));
  router.use(auditActions(deps.audit, deps.log));
  for (const area of AREAS) router.use(area(deps));
  router.use((req, _res) => {
    throw new ApiError(404, 'not-found', `no route for ${req.method} ${req.baseUrl}${req.path}`);
  });
  router.use(errorAnswer(deps.log));
  return router;
}
