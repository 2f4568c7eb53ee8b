import { z } from 'zod';
import { decode, SCHEMA_VERSION, Timestamp } from '../messages.js';
import { TOPIC_LEVEL } from '../topics.js';
import { TopicPattern } from './topic-pattern.js';
import type { TopicSpec } from './topic-table.js';

// ─── Jobs engine, agent executor (issue 12) ─────────────────────────────────────────────────────
// The hub asks a chosen agent to run one of its own configured actions for a run, or to stop it;
// the agent reports the run's state, retained, on a topic of its own.

/** A run id: 10 lowercase hex (src/hub/engines/jobs/model.ts), also a topic level. */
export const RunId = z.string().regex(/^[0-9a-f]{10}$/, 'expected 10 lowercase hex digits');
/** An action name: a key of the agent's `actions:`, also a log field and an env value. */
export const ActionName = z.string().regex(TOPIC_LEVEL, 'use 1-128 letters, digits, ".", "_" or "-"');
/**
 * A parameter's name as it reaches the process (PUSHFLEET_JOB_PARAM_<NAME>), and bounds that keep
 * the environment within what execve takes (one string at most 128 KiB on Linux).
 */
export const PARAM_NAME = /^[A-Z0-9_]{1,64}$/;
export const MAX_PARAMS = 64;
export const MAX_PARAM_CHARS = 4096;
export const MAX_JOB_PAYLOAD_CHARS = 100_000;
/** The tail of a run's stdout+stderr kept in its status (characters). */
export const OUTPUT_TAIL_CHARS = 65_536;

/**
 * Hub → agent: run `action` for run `run`. Params are checked by the agent (AgentJobs), so a bad
 * one is answered with a failed status that names it rather than dropped as malformed.
 */
/**
 * What a job's process gets, the same from the Kubernetes and the agent executor: the run's facts
 * and its parameters (names upper-cased), as environment only.
 */
export function jobEnvironment(run: { run: string; job: string; topic: string; payload: string; params: Record<string, string> }): Record<string, string> {
  const env: Record<string, string> = {
    PUSHFLEET_JOB_RUN: run.run,
    PUSHFLEET_JOB_NAME: run.job,
    PUSHFLEET_JOB_TOPIC: run.topic,
    PUSHFLEET_JOB_PAYLOAD: run.payload,
  };
  for (const [name, value] of Object.entries(run.params).sort(([a], [b]) => a.localeCompare(b))) env[`PUSHFLEET_JOB_PARAM_${name.toUpperCase()}`] = value;
  return env;
}

export const JobStart = z.object({
  v: z.literal(SCHEMA_VERSION),
  run: RunId,
  job: z.string().min(1).max(64),
  name: z.string().min(1).max(80),
  action: z.string().min(1).max(128),
  /** The trigger's topic ('' for `pushfleet jobs trigger`) and payload (utf-8). */
  topic: z.string().max(65_535),
  payload: z.string(),
  params: z.record(z.string(), z.string()),
  /** The row's timeout; the agent takes the smaller of it and the action's own. */
  timeoutSeconds: z.number().positive(),
});
export type JobStart = z.infer<typeof JobStart>;

/** Hub → agent: stop run `run` (SIGTERM to its process group, SIGKILL after the action's stopTimeout). */
export const JobStop = z.object({ v: z.literal(SCHEMA_VERSION), run: RunId });
export type JobStop = z.infer<typeof JobStop>;

/** Agent → anyone who reads it, retained per run until the hub clears it (an empty payload). */
export const AgentJobStatus = z.object({
  v: z.literal(SCHEMA_VERSION),
  run: RunId,
  state: z.enum(['running', 'succeeded', 'failed']),
  at: Timestamp,
  exitCode: z.number().int().optional(),
  signal: z.string().max(32).optional(),
  /** Why it failed (or was refused), in words. */
  reason: z.string().max(4096).optional(),
  /** The bounded tail of the process's stdout and stderr. */
  output: z.string().max(OUTPUT_TAIL_CHARS).optional(),
});
export type AgentJobStatus = z.infer<typeof AgentJobStatus>;

/**
 * The agent executor's topics, for the topic table: the start and stop make an agent act, so
 * only the hub sends them, signed, and only the agent they name reads them; the status is the
 * agent's own, which the hub clears (an empty retained message) once it has recorded the end.
 */
export function agentJobTopicSpecs(): TopicSpec[] {
  const own = [{ role: 'agent', own: 'agent' }] as const;
  const at = (leaf: string) => new TopicPattern(`pushfleet/agents/{agent}/jobs/{run}/${leaf}`);
  return [
    { name: 'agent.job-start', pattern: at('start'), about: "run one of the agent's configured actions for a run", payload: (raw) => decode(JobStart, raw), publish: [], subscribe: own, signed: true, retained: false },
    { name: 'agent.job-stop', pattern: at('stop'), about: 'stop a run under way', payload: (raw) => decode(JobStop, raw), publish: [], subscribe: own, signed: true, retained: false },
    {
      name: 'agent.job-status',
      pattern: at('status'),
      about: "a run's state on the agent running it (cleared by the hub once recorded)",
      payload: (raw) => (raw.length === 0 ? { ok: true, value: null } : decode(AgentJobStatus, raw)),
      publish: own,
      subscribe: [{ role: 'operator' }],
      signed: false,
      retained: true,
    },
  ];
}
