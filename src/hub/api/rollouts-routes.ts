import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { EnvName, RolloutHostState, RolloutId, type RolloutControl, type RolloutSnapshot } from '../../shared/contract/rollout-messages.js';
import { SCHEMA_VERSION } from '../../shared/messages.js';
import type { RolloutsEngine } from '../engines/rollouts/rollouts-engine.js';
import { environments } from '../views/environments-view.js';
import { paged } from '../views/paged.js';
import { rolloutDetail, rolloutSummary } from '../views/rollout-rows.js';
import type { ViewsEngine } from '../views/views-engine.js';
import { requireOperator } from './api-auth.js';
import { ApiError } from './api-error.js';
import { present, requestedBy, VIEWS_MISSING } from './area-deps.js';
import { checked, pageOf, queryOf } from './request-parsing.js';
import { newRequestId } from '../../shared/contract/request-envelope.js';

export type RolloutsRoutesDeps = {
  /** The rollouts engine, or undefined when engines.rollouts (or the semaphore) is off: then 503. */
  rollouts?(): RolloutsEngine | undefined;
  views?: ViewsEngine;
};

/** Hosts listed in one answer at most, when asked to bound them (`?hosts=`). */
const MaxHosts = z.coerce.number().int().min(0).max(1000);

/** A control request without the envelope (v, requestId, by) the route adds. */
type ControlOp = RolloutControl extends infer R ? (R extends unknown ? Omit<R, 'v' | 'requestId' | 'by'> : never) : never;

/**
 * `/api/v1/rollouts…` and `/api/v1/environments…`: the rollouts' history from the engine's store
 * (written before anything it allows is published), and pause, resume, abort, freeze and
 * unfreeze carried out by the engine as it does `pushfleet rollout …` (RolloutsEngine.control).
 */
export function rolloutsRoutes(deps: RolloutsRoutesDeps): Router {
  const router = Router();
  const engine = (): RolloutsEngine => present(deps.rollouts?.(), 'the rollouts engine is not enabled (engines.rollouts.enabled and engines.semaphore.enabled in the hub config)');
  const control = (req: Request, res: Response, op: ControlOp): void => {
    const reply = engine().control({ v: SCHEMA_VERSION, requestId: newRequestId(), by: requestedBy(req, res), ...op } as RolloutControl);
    if (!reply.ok) throw new ApiError(409, 'conflict', reply.error ?? 'the rollouts engine refused the request');
  };
  const idOf = (req: Request) => checked(RolloutId, req.params.id, 'rollout');
  const envParam = (req: Request) => checked(EnvName, req.params.env, 'environment');

  router.get('/rollouts', (req, res) => {
    const { offset, limit } = pageOf(queryOf(req, ['offset', 'limit']));
    const { items, total } = engine().history.recent(offset, limit);
    res.json({ items: items.map(rolloutSummary), total, offset, limit });
  });
  const known = (id: string): RolloutSnapshot => {
    const snap = engine().history.get(id);
    if (!snap) throw new ApiError(404, 'not-found', `no rollout ${id} in the history: see GET /api/v1/rollouts`);
    return snap;
  };
  router.get('/rollouts/:id', (req, res) => {
    const max = checked(MaxHosts.optional(), queryOf(req, ['hosts']).hosts, 'query hosts');
    const detail = rolloutDetail(known(idOf(req)));
    // As a snapshot past snapshotMaxBytes does: hosts left out are counted in counts, batches and hostsOmitted.
    if (max === undefined || detail.hosts.length <= max) return void res.json(detail);
    res.json({ ...detail, hosts: detail.hosts.slice(0, max), hostsOmitted: detail.hosts.length - max });
  });
  router.get('/rollouts/:id/hosts', (req, res) => {
    const query = queryOf(req, ['offset', 'limit', 'state']);
    const state = checked(RolloutHostState.optional(), query.state, 'query state');
    const { hosts } = known(idOf(req));
    res.json(paged(state === undefined ? hosts : hosts.filter((h) => h.state === state), pageOf(query)));
  });
  for (const op of ['pause', 'resume', 'abort'] as const) {
    router.post(`/rollouts/:id/${op}`, requireOperator, (req, res) => {
      queryOf(req, []);
      const id = idOf(req);
      known(id);
      control(req, res, { op, id });
      res.status(202).json({ requested: op, id, status: engine().history.get(id)!.status });
    });
  }
  router.get('/environments', (req, res) => {
    const page = pageOf(queryOf(req, ['offset', 'limit']));
    // Without the rollouts engine nothing can be frozen: the agents' environments are still listed.
    res.json(paged(environments(present(deps.views, VIEWS_MISSING).fleet.entries(), deps.rollouts?.()?.history.frozen() ?? []), page));
  });
  for (const op of ['freeze', 'unfreeze'] as const) {
    router.post(`/environments/:env/${op}`, requireOperator, (req, res) => {
      queryOf(req, []);
      const env = envParam(req);
      control(req, res, { op, env });
      res.status(202).json({ requested: op, environment: env, frozen: engine().history.frozen().includes(env) });
    });
  }
  return router;
}
