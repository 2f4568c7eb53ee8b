import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { EnvName, RolloutId, type RolloutControl } from '../../shared/contract/rollout-messages.js';
import { SCHEMA_VERSION } from '../../shared/messages.js';
import { envOf } from '../engines/rollouts/plan.js';
import type { RolloutsEngine } from '../engines/rollouts/rollouts-engine.js';
import { paged } from '../views/paged.js';
import { rolloutDetail, rolloutSummary } from '../views/rollout-rows.js';
import type { ViewsEngine } from '../views/views-engine.js';
import { requireOperator } from './api-auth.js';
import { ApiError } from './api-error.js';
import { VIEWS_MISSING } from './agents-routes.js';
import { present, requestedBy } from './area-deps.js';
import { checked, pageOf, queryOf } from './request-parsing.js';

export type RolloutsRoutesDeps = {
  /** The rollouts engine, or undefined when engines.rollouts (or the semaphore) is off: then 503. */
  rollouts?(): RolloutsEngine | undefined;
  views?: ViewsEngine;
};

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
    const reply = engine().control({ v: SCHEMA_VERSION, requestId: randomUUID().replaceAll('-', ''), by: requestedBy(req, res), ...op } as RolloutControl);
    if (!reply.ok) throw new ApiError(409, 'conflict', reply.error ?? 'the rollouts engine refused the request');
  };
  const idOf = (req: Request) => checked(RolloutId, req.params.id, 'rollout');
  const envParam = (req: Request) => checked(EnvName, req.params.env, 'environment');

  router.get('/rollouts', (req, res) => {
    const { offset, limit } = pageOf(queryOf(req, ['offset', 'limit']));
    const { items, total } = engine().history.recent(offset, limit);
    res.json({ items: items.map(rolloutSummary), total, offset, limit });
  });
  router.get('/rollouts/:id', (req, res) => {
    queryOf(req, []);
    const id = idOf(req);
    const snap = engine().history.get(id);
    if (!snap) throw new ApiError(404, 'not-found', `no rollout ${id} in the history: see GET /api/v1/rollouts`);
    res.json(rolloutDetail(snap));
  });
  for (const op of ['pause', 'resume', 'abort'] as const) {
    router.post(`/rollouts/:id/${op}`, requireOperator, (req, res) => {
      queryOf(req, []);
      const id = idOf(req);
      if (!engine().history.get(id)) throw new ApiError(404, 'not-found', `no rollout ${id} in the history: see GET /api/v1/rollouts`);
      control(req, res, { op, id });
      res.status(202).json({ requested: op, id, status: engine().history.get(id)!.status });
    });
  }
  router.get('/environments', (req, res) => {
    const page = pageOf(queryOf(req, ['offset', 'limit']));
    const frozen = new Set(engine().history.frozen());
    const envs = new Map<string, { name: string; frozen: boolean; agents: number; online: number }>();
    const env = (name: string) => envs.get(name) ?? envs.set(name, { name, frozen: frozen.has(name), agents: 0, online: 0 }).get(name)!;
    for (const name of frozen) env(name);
    for (const [, entry] of present(deps.views, VIEWS_MISSING).fleet.entries()) {
      const e = env(envOf(entry));
      e.agents++;
      if (entry.status?.state === 'online') e.online++;
    }
    res.json(paged([...envs.values()].sort((a, b) => (a.name < b.name ? -1 : 1)), page));
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
