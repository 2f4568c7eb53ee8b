import { Router } from 'express';
import { OrchestratorName } from '../../shared/contract/orchestrator-messages.js';
import type { ViewsEngine } from '../views/views-engine.js';
import { ApiError } from './api-error.js';
import { VIEWS_MISSING } from './agents-routes.js';
import { present } from './area-deps.js';
import { checked, pageOf, queryOf } from './request-parsing.js';

export type PlaybooksRoutesDeps = { views?: ViewsEngine };

/** `/api/v1/playbooks/runs…`: the orchestrator's newest playbook runs this hub process saw. */
export function playbooksRoutes(deps: PlaybooksRoutesDeps): Router {
  const router = Router();
  const playbooks = () => present(deps.views, VIEWS_MISSING).playbooks;
  router.get('/playbooks/runs', (req, res) => {
    res.json(playbooks().list(pageOf(queryOf(req, ['offset', 'limit']))));
  });
  router.get('/playbooks/runs/:id', (req, res) => {
    queryOf(req, []);
    const id = checked(OrchestratorName, req.params.id, 'run');
    const run = playbooks().get(id);
    if (!run) throw new ApiError(404, 'not-found', `no playbook run ${id} since the hub started (it keeps the newest ones): see GET /api/v1/playbooks/runs`);
    res.json(run);
  });
  return router;
}
