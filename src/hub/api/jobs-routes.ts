import { Router } from 'express';
import { z } from 'zod';
import type { JobsEngine } from '../engines/jobs/jobs-engine.js';
import { JOB_NAME, type Run } from '../engines/jobs/model.js';
import { RUN_ID } from '../engines/jobs/run-plan.js';
import { ApiError } from './api-error.js';
import { present } from './area-deps.js';
import { checked, pageOf, queryOf } from './request-parsing.js';

export type JobsRoutesDeps = {
  /** The jobs engine, or undefined when it does not run (engines.jobs off, or no table): then 503. */
  jobs?(): JobsEngine | undefined;
};

const JobName = z.string().regex(JOB_NAME, 'expected a job name (lower-case letters, digits and "-")');
const RunId = z.string().regex(RUN_ID, 'expected a run id (10 hex digits)');

/** A run as the API shows it: times as ISO strings, the trigger's payload left out (only its size). */
export type JobRunRow = Omit<Run, 'payload' | 'createdAt' | 'startedAt' | 'endedAt' | 'reason' | 'agent' | 'logs'> & {
  payloadBytes: number;
  reason: string | null;
  agent: string | null;
  logs: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
};

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function jobRunRow({ payload, createdAt, startedAt, endedAt, reason, agent, logs, ...run }: Run): JobRunRow {
  return { ...run, payloadBytes: Buffer.byteLength(payload), reason: reason ?? null, agent: agent ?? null, logs: logs ?? null, createdAt: iso(createdAt)!, startedAt: iso(startedAt), endedAt: iso(endedAt) };
}

/** `/api/v1/jobs/runs…`: the jobs engine's runs from its store, newest first. */
export function jobsRoutes(deps: JobsRoutesDeps): Router {
  const router = Router();
  const engine = (): JobsEngine => present(deps.jobs?.(), 'the jobs engine is not running (engines.jobs.enabled and engines.jobs.table in the hub config)');
  router.get('/jobs/runs', (req, res) => {
    const query = queryOf(req, ['offset', 'limit', 'job']);
    const job = checked(JobName.optional(), query.job, 'query job');
    const { offset, limit } = pageOf(query);
    const { items, total } = engine().runs.recent(offset, limit, job);
    res.json({ items: items.map(jobRunRow), total, offset, limit });
  });
  router.get('/jobs/runs/:id', (req, res) => {
    queryOf(req, []);
    const id = checked(RunId, req.params.id, 'run');
    const run = engine().runs.get(id);
    if (!run) throw new ApiError(404, 'not-found', `no run ${id}: see GET /api/v1/jobs/runs`);
    res.json(jobRunRow(run));
  });
  return router;
}
