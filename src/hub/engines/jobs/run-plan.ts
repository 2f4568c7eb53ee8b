import { randomBytes } from 'node:crypto';
import type { JobCompletion, JobRow, Run } from './model.js';

/** A message that matched a row's `mqtt_topic` (or `pushfleet jobs trigger`, with topic ''). */
export type Trigger = { topic: string; payload: Buffer };

export type PlanLimits = {
  /** engines.jobs.maxPayloadBytes */
  maxPayloadBytes: number;
  /** engines.jobs.maxActiveRuns, and how many runs of every job are under way now. */
  maxActiveRuns: number;
  activeRuns: number;
};

/**
 * What a trigger decides: the new run (pending, to be started; or failed at once, with the
 * reason, so chains hear of it on job_failed) and the runs it replaces (concurrency: replace),
 * each to be stopped and recorded as cancelled.
 */
export type TriggerPlan = { run: Run; replaced: { run: Run; reason: string }[] };

/** A run id: 10 lowercase hex, the suffix of the Job's name. */
export const newRunId = (): string => randomBytes(5).toString('hex');

export const RUN_ID = /^[0-9a-f]{10}$/;

/**
 * Plans one trigger of `row`, given the job's runs under way (`active`: pending or running).
 * Pure: the clock's `now` and the id are passed in.
 */
export function planTrigger(row: JobRow, trigger: Trigger, active: readonly Run[], limits: PlanLimits, now: number, id: string = newRunId()): TriggerPlan {
  const oversized = trigger.payload.length > limits.maxPayloadBytes;
  const run: Run = {
    id,
    job: row.jobName,
    name: `${row.jobName}-${id}`,
    executor: row.executor,
    topic: trigger.topic,
    // An oversized payload is not kept: the run fails, saying so, and carries nothing on.
    payload: oversized ? '' : trigger.payload.toString('utf8'),
    params: {},
    status: 'pending',
    createdAt: now,
  };
  const fail = (reason: string): TriggerPlan => ({ run: { ...run, status: 'failed', reason, endedAt: now }, replaced: [] });
  if (oversized) return fail(`payload of ${trigger.payload.length} bytes is over engines.jobs.maxPayloadBytes (${limits.maxPayloadBytes})`);
  const params = fillParams(row, run.payload);
  if (typeof params === 'string') return fail(params);
  run.params = params;
  if (active.length > 0 && row.concurrency === 'forbid') {
    // Recorded, not dropped as a CronJob would: the sender and the chain's failure branch see it.
    return fail(`skipped: run ${active.map((r) => r.id).join(', ')} still under way (concurrency: forbid)`);
  }
  const replaced = row.concurrency === 'replace' ? active.map((r) => ({ run: r, reason: `replaced by run ${id}` })) : [];
  if (limits.activeRuns - replaced.length >= limits.maxActiveRuns) return fail(`${limits.activeRuns} runs already under way: engines.jobs.maxActiveRuns (${limits.maxActiveRuns}) reached`);
  return { run, replaced };
}

/**
 * The row's parameters from the payload: a JSON object whose keys name declared parameters
 * (other keys are ignored; they are the payload's own business). Values are strings, numbers or
 * booleans, each checked against the parameter's anchored pattern. A row that declares no
 * parameters takes any payload as it is. Returns the reason when the payload does not fit.
 */
export function fillParams(row: JobRow, payload: string): Record<string, string> | string {
  const declared = Object.entries(row.params);
  if (declared.length === 0) return {};
  let given: Record<string, unknown> = {};
  if (payload.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch (err) {
      return `payload is not JSON (job ${row.jobName} declares parameters ${declared.map(([n]) => n).join(', ')}): ${(err as Error).message}`;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `payload is not a JSON object (job ${row.jobName} declares parameters ${declared.map(([n]) => n).join(', ')})`;
    given = parsed as Record<string, unknown>;
  }
  const params: Record<string, string> = {};
  for (const [name, param] of declared) {
    const raw = Object.hasOwn(given, name) ? given[name] : undefined;
    if (raw === undefined || raw === null) {
      if (param.default !== undefined) params[name] = param.default;
      else if (param.required) return `parameter ${name} is required (job ${row.jobName})`;
      continue;
    }
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') return `parameter ${name} must be a string, number or boolean (job ${row.jobName})`;
    const value = String(raw);
    if (!matches(param.pattern, value)) return `parameter ${name} does not match ${param.pattern} (job ${row.jobName}): ${JSON.stringify(value.slice(0, 80))}`;
    params[name] = value;
  }
  return params;
}

/** A pattern the table let through but that does not compile matches nothing, rather than throwing in the engine. */
function matches(pattern: string, value: string): boolean {
  try {
    return new RegExp(`^(?:${pattern})$`, 'u').test(value);
  } catch {
    return false;
  }
}

/** The message published for a finished run on job_complete (and job_failed when it failed). */
export function completionOf(run: Run): JobCompletion {
  if (run.status !== 'succeeded' && run.status !== 'failed' && run.status !== 'cancelled') throw new Error(`run ${run.id} has not ended (${run.status})`);
  const end = run.endedAt ?? run.createdAt;
  return {
    v: 1,
    run: run.id,
    job: run.job,
    name: run.name,
    status: run.status,
    reason: run.reason ?? run.status,
    topic: run.topic,
    payload: run.payload,
    start: run.startedAt === undefined ? null : new Date(run.startedAt).toISOString(),
    end: new Date(end).toISOString(),
    durationMs: run.startedAt === undefined ? null : end - run.startedAt,
  };
}
