import { Router } from 'express';
import { z } from 'zod';
import { RetryRequest } from '../../shared/contract/rollout-messages.js';
import { SCHEMA_VERSION } from '../../shared/messages.js';
import { TOPIC_LEVEL } from '../../shared/topics.js';
import type { ViewsEngine } from '../views/views-engine.js';
import { requireOperator } from './api-auth.js';
import { ApiError } from './api-error.js';
import { present, requestedBy, VIEWS_MISSING } from './area-deps.js';
import { checked, pageOf, queryOf } from './request-parsing.js';
import { newRequestId } from '../../shared/contract/request-envelope.js';

export type AgentsRoutesDeps = {
  /** The read models (absent only in a hub built without them, e.g. a test's: then 503). */
  views?: ViewsEngine;
  /** Publishes an operator's retry request to the agent (QoS 1); resolves once the broker has it. */
  sendRetry?(agent: string, request: RetryRequest): Promise<void>;
};

const Name = z.string().regex(TOPIC_LEVEL, 'use 1-128 letters, digits, ".", "_" or "-"');
const Online = z.enum(['true', 'false']).transform((v) => v === 'true');
/** `label=env=production,zone=a`: every pair must match. */
const Labels = z
  .string()
  .max(1000)
  .transform((text, ctx) => {
    const labels: Record<string, string> = {};
    for (const pair of text.split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) {
        ctx.addIssue({ code: 'custom', message: `expected key=value pairs separated by ",", got "${pair.slice(0, 64)}"` });
        return z.NEVER;
      }
      labels[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    return labels;
  });

/**
 * `/api/v1/agents…` and `/api/v1/hub`: the fleet as its agents report it (views/fleet-view.ts),
 * and retrying an app's failed update on one host, which goes to the agent as `pushfleet retry`
 * sends it (the agent answers in the app's state, `retryRequest`).
 */
export function agentsRoutes(deps: AgentsRoutesDeps): Router {
  const router = Router();
  const views = () => present(deps.views, VIEWS_MISSING);
  const known = (id: string) => {
    const agent = views().fleet.get(id);
    if (!agent) throw new ApiError(404, 'not-found', `no agent ${id} has reported to this hub: see GET /api/v1/agents`);
    return agent;
  };

  router.get('/hub', (req, res) => {
    queryOf(req, []);
    const hub = views().hub;
    if (!hub) throw new ApiError(503, 'unavailable', 'the hub has not read its own status back from the broker yet: retry in a second');
    res.json(hub);
  });
  router.get('/agents', (req, res) => {
    const query = queryOf(req, ['offset', 'limit', 'online', 'label']);
    const online = checked(Online.optional(), query.online, 'query online');
    const labels = checked(Labels.optional(), query.label, 'query label');
    res.json(views().fleet.list({ ...(online !== undefined && { online }), ...(labels && { labels }) }, pageOf(query)));
  });
  router.get('/agents/:id', (req, res) => {
    queryOf(req, []);
    res.json(known(checked(Name, req.params.id, 'agent')));
  });
  router.post('/agents/:id/apps/:app/retry', requireOperator, async (req, res) => {
    queryOf(req, []);
    const id = checked(Name, req.params.id, 'agent');
    const app = checked(Name, req.params.app, 'app');
    const agent = known(id);
    if (!views().fleet.app(id, app)) throw new ApiError(404, 'not-found', `agent ${id} runs no app "${app}" (its apps: ${agent.apps.map((a) => a.app).join(', ') || 'none'})`);
    // Not retained: an offline agent would never see it.
    if (!agent.online) throw new ApiError(409, 'conflict', `agent ${id} is offline: a retry is not kept for it, ask again once it is back`);
    const request: RetryRequest = { v: SCHEMA_VERSION, app, requestId: newRequestId(), by: requestedBy(req, res), at: new Date().toISOString() };
    await present(deps.sendRetry, 'this hub cannot publish to agents')(id, request);
    res.status(202).json({ agent: id, app, requestId: request.requestId, by: request.by, at: request.at });
  });
  return router;
}
