import { Router } from 'express';
import { z } from 'zod';
import { EnvName } from '../../shared/contract/rollout-messages.js';
import { RepoName } from '../../shared/messages.js';
import { TOPIC_LEVEL } from '../../shared/topics.js';
import { appRows } from '../views/apps-view.js';
import { paged } from '../views/paged.js';
import type { ViewsEngine } from '../views/views-engine.js';
import { VIEWS_MISSING } from './agents-routes.js';
import { present } from './area-deps.js';
import { checked, pageOf, queryOf } from './request-parsing.js';

export type AppsRoutesDeps = { views?: ViewsEngine };

const AppName = z.string().regex(TOPIC_LEVEL, 'use 1-128 letters, digits, ".", "_" or "-"');

/**
 * `/api/v1/apps` (each app per environment: the SHA every host runs against the head of the
 * branch it follows) and `/api/v1/heads` (the newest push of each ref, as agents see it).
 */
export function appsRoutes(deps: AppsRoutesDeps): Router {
  const router = Router();
  const views = () => present(deps.views, VIEWS_MISSING);

  router.get('/apps', (req, res) => {
    const query = queryOf(req, ['offset', 'limit', 'app', 'environment']);
    const app = checked(AppName.optional(), query.app, 'query app');
    const environment = checked(EnvName.optional(), query.environment, 'query environment');
    const { fleet, heads } = views();
    const rows = appRows(fleet.entries(), (repo, ref) => heads.get(repo, ref), { ...(app && { app }), ...(environment && { environment }) });
    res.json(paged(rows, pageOf(query)));
  });
  router.get('/heads', (req, res) => {
    const query = queryOf(req, ['offset', 'limit', 'repo']);
    const repo = checked(RepoName.optional(), query.repo, 'query repo');
    res.json(views().heads.list(pageOf(query), repo));
  });
  return router;
}
