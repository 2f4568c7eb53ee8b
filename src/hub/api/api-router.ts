import { Router } from 'express';
import type { Logger } from '../../shared/logger.js';
import type { HubEvents } from '../hub-events.js';
import { ApiError } from './api-error.js';
import type { ApiAuth } from './api-auth.js';
import type { EventStreams } from './event-streams.js';
import { eventsRoutes } from './events-routes.js';
import { errorAnswer } from './request-parsing.js';
import { servicesRoutes, type ServicesRoutesDeps } from './services-routes.js';
import { auditActions } from './audit-actions.js';
import { auditRoutes, type AuditRoutesDeps } from './audit-routes.js';
import { agentsRoutes, type AgentsRoutesDeps } from './agents-routes.js';
import { appsRoutes } from './apps-routes.js';
import { rolloutsRoutes, type RolloutsRoutesDeps } from './rollouts-routes.js';
import { deliveriesRoutes } from './deliveries-routes.js';
import { playbooksRoutes } from './playbooks-routes.js';
import { jobsRoutes, type JobsRoutesDeps } from './jobs-routes.js';

/** What the API's areas read and act on; each area adds its own field. */
export type ApiDeps = {
  auth: ApiAuth;
  log: Logger;
  /** Notices of what changed, for the live stream; areas that change read models call `changed`. */
  events: HubEvents;
  /** The open live streams (GET /events), which the hub ends when it stops; without it GET /events answers 503. */
  streams?: EventStreams;
  services: ServicesRoutesDeps['services'];
  /** The audit log: read by GET /audit, and every action answered through the API recorded in it (the hub always has one). */
  audit?: NonNullable<AuditRoutesDeps['audit']> & Parameters<typeof auditActions>[0];
} & AgentsRoutesDeps & RolloutsRoutesDeps & JobsRoutesDeps;

/** One area of the API: its routes, relative to /api/v1, behind the token check. */
type ApiArea = (deps: ApiDeps) => Router;

const AREAS: readonly ApiArea[] = [servicesRoutes, agentsRoutes, appsRoutes, rolloutsRoutes, deliveriesRoutes, playbooksRoutes, jobsRoutes, auditRoutes];

/**
 * `/api/v1`: every route needs a token (viewer or operator; actions check for operator
 * themselves), then each area's routes; what none of them serves is a JSON 404.
 */
export function apiRouter(deps: ApiDeps): Router {
  const router = Router();
  // The live stream checks a token or a stream ticket itself (a browser's EventSource sends no header).
  router.use(eventsRoutes(deps));
  // Then, before any other route, so a client without a token cannot make the hub read a body or learn which routes exist.
  router.use(deps.auth.require('viewer'));
  if (deps.audit) router.use(auditActions(deps.audit, deps.log));
  for (const area of AREAS) router.use(area(deps));
  router.use((req, _res) => {
    throw new ApiError(404, 'not-found', `no route for ${req.method} ${req.baseUrl}${req.path}`);
  });
  router.use(errorAnswer(deps.log));
  return router;
}
