import { Router } from 'express';
import { z } from 'zod';
import type { AuditPage, AuditQuery } from '../audit/audit-reader.js';
import { present } from './area-deps.js';
import { checked, pageOf, queryOf } from './request-parsing.js';

export type AuditRoutesDeps = {
  /** The hub's audit log (viewers may read it); without it (an API built without one) 503. */
  audit?: { list(query: AuditQuery): AuditPage };
};

/** `since`: an ISO 8601 time with its zone, or a date. */
const Since = z.union([z.iso.datetime({ offset: true }), z.iso.date()], { error: 'expected an ISO time with its zone (2026-12-01T10:00:00Z) or a date (2026-12-01)' }).transform((s) => Date.parse(s));

const Order = z.enum(['oldest', 'newest']).default('oldest');

/** `GET /api/v1/audit?since&order&offset&limit`: the audit log, oldest first unless `order=newest`, entries whose last repeat is at or after `since`. */
export function auditRoutes(deps: AuditRoutesDeps): Router {
  const router = Router();
  router.get('/audit', (req, res) => {
    const query = queryOf(req, ['since', 'order', 'offset', 'limit']);
    const since = query.since === undefined ? undefined : checked(Since, query.since, 'query since');
    const order = checked(Order, query.order, 'query order');
    res.json(present(deps.audit, 'this API has no audit log').list({ since, order, ...pageOf(query) }));
  });
  return router;
}
